from .crop_person_box import CropPersonBox
from .irregular_mask import IrregularMask

__all__ = ['CropPersonBox', 'IrregularMask']
