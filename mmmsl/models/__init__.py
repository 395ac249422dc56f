from .classifier import MaskedSupervisedClassifier
from .losses import IgnoreAwareBCELoss, LabelConsistencyLoss

__all__ = [
    'MaskedSupervisedClassifier', 'LabelConsistencyLoss', 'IgnoreAwareBCELoss'
]
