from .launch import setup_distributed
from .robustness import add_test_masks

__all__ = ['setup_distributed', 'add_test_masks']
