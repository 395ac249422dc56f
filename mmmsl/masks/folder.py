"""Masks from a folder of images, in the Irregular Mask dataset layout."""
import os.path as osp
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .ratio import RatioSpec, in_range, parse_ratio

#: File endings read as images, by the mask folders and ``tools/infer.py``
#: alike: mmpretrain's dataset default (``CustomDataset``'s) with ``.tiff``
#: and ``.webp``, which cv2 reads too. Case-insensitive.
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')


def read_hole_mask(path: str, invert: bool = False) -> np.ndarray:
    """Read one mask image as a binary ``(H, W)`` uint8 hole mask.

    White (> 127) is a hole, as in the Irregular Mask dataset; ``invert``
    flips that for datasets that draw holes in black. Grey or anti-aliased
    masks are binarised, never kept soft (soft masks cost 2.3 mAP in the
    paper's ablation).
    """
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f'Mask file {path} cannot be read as an image '
                         '(missing, unreadable, truncated or not an image): '
                         'remove or replace it')
    hole = img > 127
    return (~hole if invert else hole).astype(np.uint8)


def list_mask_files(folder: str) -> List[str]:
    """Sorted image files directly under (or below) ``folder``."""
    if osp.isfile(folder):
        raise NotADirectoryError(
            f'Mask folder {folder} is a file; source=\'folder\' needs a '
            "folder of mask images (a bank .npz file is source='bank')")
    if not osp.isdir(folder):
        raise FileNotFoundError(f'Mask folder {folder} does not exist')
    files = sorted(
        str(p) for p in Path(folder).rglob('*')
        if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f'Mask folder {folder} holds no image file '
                         f'({", ".join(IMG_EXTENSIONS)})')
    return files


def load_mask_folder(
        folder: str,
        ratio: Optional[RatioSpec] = None,
        size: Optional[int] = None,
        invert: bool = False
) -> Tuple[List[np.ndarray], np.ndarray, List[str]]:
    """Load the binary hole masks of a folder and their hole ratios.

    Args:
        folder (str): Folder of mask images (searched recursively).
        ratio (str | Sequence[float], optional): Keep only masks whose hole
            ratio is in this bin, e.g. ``'high'`` (> 50% removed) or
            ``'low'`` (<= 50%), as the paper splits them. None keeps all.
        size (int, optional): Resize (nearest) every mask to
            ``size x size`` before measuring; None keeps native sizes.
        invert (bool): Black = hole instead of white = hole.

    Returns:
        tuple: ``(holes, ratios, files)``: the kept ``(H, W)`` uint8 hole
        masks, their hole ratios as a float array, and their file paths.
    """
    bounds = None if ratio is None else parse_ratio(ratio)
    holes, ratios, kept = [], [], []
    all_ratios = []
    for f in list_mask_files(folder):
        hole = read_hole_mask(f, invert)
        if size is not None:
            hole = cv2.resize(hole, (size, size),
                              interpolation=cv2.INTER_NEAREST)
        r = float(hole.mean())
        all_ratios.append(r)
        if bounds is None or in_range(r, *bounds):
            holes.append(hole)
            ratios.append(r)
            kept.append(f)
    if not holes:
        raise ValueError(
            f'Mask folder {folder} holds no mask with a hole ratio in '
            f'(lo, hi] = {bounds} (ratio={ratio!r}); its {len(all_ratios)} '
            f'masks range from {min(all_ratios):.3f} to '
            f'{max(all_ratios):.3f}' +
            (f' (measured at {size}x{size})' if size is not None else ''))
    return holes, np.asarray(ratios), kept
