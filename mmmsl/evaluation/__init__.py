from .metrics import MultiLabelPaperMetric, ObjectSizeMetric

__all__ = ['MultiLabelPaperMetric', 'ObjectSizeMetric']
