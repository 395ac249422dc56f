from .digits import DigitsMultiLabel
from .transforms import IrregularMask

__all__ = ['IrregularMask', 'DigitsMultiLabel']
