from .multi_label_paper import MultiLabelPaperMetric

__all__ = ['MultiLabelPaperMetric']
