"""Crop a WIDER-Attribute person box out of its image."""
import math

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CropPersonBox(BaseTransform):
    """Crop ``results['img']`` to the person box ``results['bbox']``.

    The box ``[x, y, w, h]`` is optionally enlarged about its centre by
    ``expand``, rounded outwards to whole pixels, and clipped to the image;
    the crop keeps at least one pixel per side even for a box outside the
    image. The crop itself is ``mmcv.imcrop`` (whose boxes are inclusive
    and whose ``scale`` truncates to integers, hence the rounding here).

    Required keys: ``img``, ``bbox``. Modified keys: ``img``, ``img_shape``.

    Args:
        expand (float): Factor on the box width and height. Defaults to 1.0.
    """

    def __init__(self, expand: float = 1.0):
        if expand <= 0:
            raise ValueError(f'expand must be positive, got {expand}')
        self.expand = expand

    @staticmethod
    def _span(start: float, length: float, expand: float, size: int):
        """The clipped integer interval of one box side."""
        margin = (expand - 1) * length / 2
        low = min(max(math.floor(start - margin), 0), size - 1)
        high = min(max(math.ceil(start + length + margin), low + 1), size)
        return low, high

    def transform(self, results: dict) -> dict:
        """Crop the image to the box and update ``img_shape``."""
        img = results['img']
        x, y, w, h = results['bbox']
        x1, x2 = self._span(x, w, self.expand, img.shape[1])
        y1, y2 = self._span(y, h, self.expand, img.shape[0])
        results['img'] = mmcv.imcrop(img, np.array([x1, y1, x2 - 1, y2 - 1]))
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(expand={self.expand})'
