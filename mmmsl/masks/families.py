"""The mask families by name, and how a config names one.

A config names a family by its name (``'perlin'``) or by a dict with
parameters (``dict(type='perlin', octaves=2)``); :func:`parse_family`
checks both against the generator's signature, so an unknown family or
parameter, or a bad value, fails when the transform is built.
"""
import hashlib
import inspect
import json
from typing import Callable, Dict, Tuple, Union

import numpy as np

from .boxes import random_box_mask
from .fourier import random_fourier_mask
from .grid import random_grid_mask
from .objects import random_object_mask
from .patches import random_patch_mask
from .perlin import random_perlin_mask
from .strokes import random_irregular_mask

#: Image-independent families: ``fn(height, width, ratio, rng, **params)``.
FAMILIES: Dict[str, Callable] = dict(
    strokes=random_irregular_mask,
    perlin=random_perlin_mask,
    fourier=random_fourier_mask,
    grid=random_grid_mask,
    boxes=random_box_mask,
    patches=random_patch_mask)
#: Families drawn from the image's ``gt_bboxes``:
#: ``fn(height, width, boxes, ratio, rng, **params)``; never from a bank.
IMAGE_FAMILIES: Dict[str, Callable] = dict(objects=random_object_mask)
#: Families whose bank masks are turned, mirrored and resized but not
#: cropped: a crop would cut the grid's outer cells.
UNCROPPED = ('grid', 'patches')

FamilySpec = Union[str, dict]
_POSITIONAL = ('height', 'width', 'boxes', 'ratio', 'rng')


def known_families() -> Tuple[str, ...]:
    """Every family name a config can give."""
    return tuple(FAMILIES) + tuple(IMAGE_FAMILIES)


def family_defaults(name: str) -> dict:
    """The parameters of family ``name`` and their defaults."""
    fn = FAMILIES.get(name) or IMAGE_FAMILIES[name]
    return {
        k: p.default
        for k, p in inspect.signature(fn).parameters.items()
        if k not in _POSITIONAL
    }


def parse_family(family: FamilySpec) -> Tuple[str, dict]:
    """``'perlin'`` or ``dict(type='perlin', **params)`` -> ``(name,
    params)`` with every parameter (the defaults filled in), checked.

    Raises:
        ValueError: An unknown family or parameter (the message lists the
            known ones), or a bad value (one trial mask is drawn).
    """
    if isinstance(family, str):
        name, given = family, {}
    elif isinstance(family, dict) and 'type' in family:
        given = dict(family)
        name = given.pop('type')
    else:
        raise ValueError(f'mask family {family!r}: expected a name or '
                         "dict(type=<name>, ...), names: "
                         f'{", ".join(known_families())}')
    if name not in known_families():
        raise ValueError(f'unknown mask family {name!r}; known: '
                         f'{", ".join(known_families())}')
    params = family_defaults(name)
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise ValueError(f'mask family {name!r} has no parameter '
                         f'{", ".join(unknown)}; its parameters: '
                         f'{", ".join(params) or "none"}')
    params.update(given)
    draw_family(name, params, 64, 64, (0.0, 1.0), np.random.default_rng(0))
    return name, params


def draw_family(name: str,
                params: dict,
                height: int,
                width: int,
                ratio,
                rng: np.random.Generator,
                boxes=None) -> np.ndarray:
    """One ``(height, width)`` uint8 hole mask of family ``name``."""
    if name in IMAGE_FAMILIES:
        return IMAGE_FAMILIES[name](height, width, boxes, ratio, rng,
                                    **params)
    return FAMILIES[name](height, width, ratio, rng, **params)


def family_key(name: str, params: dict) -> str:
    """The family's part of a cached bank's file name: ``'irregular'`` for
    the default strokes (today's file name), else ``<name>-<digest of the
    parameters>``."""
    if name == 'strokes' and params == family_defaults('strokes'):
        return 'irregular'
    text = json.dumps(params, sort_keys=True, default=str)
    return f'{name}-{hashlib.sha1(text.encode()).hexdigest()[:10]}'


def family_masks(num: int,
                 size: int,
                 ratio,
                 seed=None,
                 family: FamilySpec = 'strokes') -> np.ndarray:
    """``num`` square masks of one image-independent family, ``(N, S,
    S)`` uint8, drawn from ``np.random.default_rng(seed)`` (for strokes
    the same masks as :func:`~mmmsl.masks.strokes.irregular_masks`)."""
    name, params = parse_family(family)
    if name not in FAMILIES:
        raise ValueError(f'mask family {name!r} depends on the image (its '
                         'boxes): it cannot be drawn into a bank')
    rng = np.random.default_rng(seed)
    if not num:
        return np.zeros((0, size, size), np.uint8)
    return np.stack([
        FAMILIES[name](size, size, ratio, rng, **params) for _ in range(num)
    ])
