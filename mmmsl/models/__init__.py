from .classifier import MaskedSupervisedClassifier
from .losses import LabelConsistencyLoss

__all__ = ['MaskedSupervisedClassifier', 'LabelConsistencyLoss']
