from .multi_label_paper import MultiLabelPaperMetric
from .object_size import ObjectSizeMetric

__all__ = ['MultiLabelPaperMetric', 'ObjectSizeMetric']
