from .metrics import MultiLabelPaperMetric

__all__ = ['MultiLabelPaperMetric']
