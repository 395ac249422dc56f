from .transforms import IrregularMask

__all__ = ['IrregularMask']
