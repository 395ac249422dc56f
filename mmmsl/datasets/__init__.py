from .checks import CorruptImageError
from .coco import COCOMultiLabel, compact_coco
from .digits import DigitsMultiLabel
from .transforms import CropPersonBox, IrregularMask
from .voc import VOCMultiLabel
from .wider import WIDERAttribute

__all__ = [
    'IrregularMask', 'DigitsMultiLabel', 'COCOMultiLabel', 'compact_coco',
    'WIDERAttribute', 'CropPersonBox', 'VOCMultiLabel', 'CorruptImageError'
]
