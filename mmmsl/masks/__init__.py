"""Pure mask generators (numpy / cv2): no registry, reused by the transform,
the model's in-batch masking and the tools."""
from .bank import MaskBank, default_cache_dir
from .boxes import random_box_mask
from .families import (FAMILIES, IMAGE_FAMILIES, family_masks,
                       known_families, parse_family)
from .fill import hole_pixel, round_pixel
from .folder import list_mask_files, load_mask_folder, read_hole_mask
from .fourier import fourier_noise, random_fourier_mask
from .grid import random_grid_mask
from .objects import random_object_mask
from .patches import random_patch_mask
from .perlin import fractal_noise, random_perlin_mask
from .ratio import (RATIO_BINS, bin_counts, fit_ratio, hole_count, hole_ratio,
                    nearest_index, parse_ratio, upsample_nearest,
                    upsample_weights)
from .source import (MixtureMasks, ObjectMasks, ProceduralMasks,
                     build_mask_source)
from .strokes import draw_stroke, irregular_masks, random_irregular_mask

__all__ = [
    'RATIO_BINS', 'parse_ratio', 'hole_ratio', 'bin_counts', 'hole_count',
    'fit_ratio', 'nearest_index', 'upsample_nearest', 'upsample_weights',
    'draw_stroke', 'random_irregular_mask', 'irregular_masks',
    'read_hole_mask', 'list_mask_files', 'load_mask_folder', 'MaskBank',
    'default_cache_dir', 'ProceduralMasks', 'build_mask_source',
    'hole_pixel', 'round_pixel', 'FAMILIES', 'IMAGE_FAMILIES',
    'known_families', 'parse_family', 'family_masks', 'random_perlin_mask',
    'fractal_noise', 'random_fourier_mask', 'fourier_noise',
    'random_grid_mask', 'random_box_mask', 'random_patch_mask',
    'random_object_mask', 'ObjectMasks', 'MixtureMasks'
]
