"""Pure mask generators (numpy / cv2): no registry, reused by the transform,
the model's in-batch masking and the tools."""
from .bank import MaskBank, default_cache_dir
from .fill import hole_pixel, round_pixel
from .folder import list_mask_files, load_mask_folder, read_hole_mask
from .ratio import (RATIO_BINS, bin_counts, fit_ratio, hole_count, hole_ratio,
                    nearest_index, parse_ratio, upsample_nearest,
                    upsample_weights)
from .source import ProceduralMasks, build_mask_source
from .strokes import draw_stroke, irregular_masks, random_irregular_mask

__all__ = [
    'RATIO_BINS', 'parse_ratio', 'hole_ratio', 'bin_counts', 'hole_count',
    'fit_ratio', 'nearest_index', 'upsample_nearest', 'upsample_weights',
    'draw_stroke', 'random_irregular_mask', 'irregular_masks',
    'read_hole_mask', 'list_mask_files', 'load_mask_folder', 'MaskBank',
    'default_cache_dir', 'ProceduralMasks', 'build_mask_source',
    'hole_pixel', 'round_pixel'
]
