from .classifier import MaskedSupervisedClassifier, plain_classifier_cfg
from .losses import IgnoreAwareBCELoss, LabelConsistencyLoss

__all__ = [
    'MaskedSupervisedClassifier', 'plain_classifier_cfg',
    'LabelConsistencyLoss', 'IgnoreAwareBCELoss'
]
