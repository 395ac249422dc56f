"""Show the masks an MSL training pipeline draws.

    python tools/visualize_masks.py CONFIG [--num 8] [--out masks.png] \
        [--split train] [--seed 0] [--tile 128] [--family F [F ...]] \
        [--ratio high] [--cfg-options ...]

Builds the dataset of ``{split}_dataloader`` with its own pipeline up to
``PackInputs`` (so crops and flips happen as in training), takes the first
``--num`` samples and writes one PNG grid with a column per sample and three
rows: the clean image, the keep mask (white = kept, black = hole) and the
masked image (holes filled with the pixel value the model's preprocessor
maps to the MSL ``fill``, ``mmmsl.apis.robustness.hole_fill_pixels``, the
same value ``tools/test.py --mask`` and ``tools/infer.py --mask`` fill holes
with: the dataset mean by default; ``fill`` itself, black by default,
without normalisation). A mask recorded at a reduced size is upsampled as
the model does it. A pipeline without ``IrregularMask`` gets
``IrregularMask(ratio='high')`` before packing (with a note); one with
``apply=True`` is shown with ``apply=False`` (to get the mask).

``--family F`` draws the masks of family ``F`` (``IrregularMask``'s
``family``: strokes, perlin, fourier, grid, boxes, patches, objects,
mixture) instead of the config's. Several families (or ``all``) give one
comparison grid instead: the clean images, then one row of masked images
per family, all at the same ratio (``--ratio``, default the config's) on
the same images and crops; the ``objects`` row needs a dataset with
``gt_bboxes``.

Layout (pixels): ``pad`` = 4 around every tile, a 96 px column of row names
on the left, tiles ``--tile`` x ``--tile`` (each sample fitted inside,
aspect kept, on white): the grid is ``3 * tile + 4 * pad`` high and
``96 + num * tile + (num + 1) * pad`` wide.
"""
import argparse
import os
import os.path as osp
from typing import Sequence

import cv2
import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope
from mmengine.runner import set_random_seed

import mmmsl  # noqa: F401  (registers the MSL components)
from mmmsl.apis.robustness import hole_fill_pixels, pack_index
from mmmsl.masks import (known_families, parse_ratio, round_pixel,
                         upsample_nearest)

PAD, LABEL_W = 4, 96
ROWS = ('clean', 'keep mask', 'masked')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--num', type=int, default=8, help='samples (columns)')
    p.add_argument('--out', default='masks.png')
    p.add_argument('--split', default='train',
                   help='which {split}_dataloader to sample (default train)')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the random transforms and masks')
    p.add_argument('--tile', type=int, default=128, help='tile side in px')
    p.add_argument('--family', nargs='+', metavar='F',
                   help='mask family (several or "all": one row each)')
    p.add_argument('--ratio', type=parse_ratio,
                   help="hole-ratio bin: high, low or 'LO,HI'")
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    args = p.parse_args(argv)
    if args.num < 1 or args.tile < 8:
        p.error('--num must be >= 1 and --tile >= 8')
    if args.family == ['all']:
        args.family = list(known_families())
    for f in args.family or []:
        if f not in known_families() + ('mixture', ):
            p.error(f'--family {f}: expected one of '
                    f'{", ".join(known_families())}, mixture or all')
    return args


def _type(step: dict) -> str:
    return str(step['type']).split('.')[-1]


def mask_pipeline(pipeline: Sequence[dict], **mask_args):
    """The pipeline up to (without) ``PackInputs``, with an
    ``IrregularMask`` that records its mask (with ``mask_args`` set on it,
    e.g. ``family``, ``ratio``).

    Returns:
        tuple[list[dict], str, list[str]]: The steps, the mask's result key
        and notes on what was changed.
    """
    steps, notes = [dict(s) for s in pipeline], []
    steps = steps[:pack_index(steps)]
    masks = [s for s in steps if _type(s) == 'IrregularMask']
    if not masks:
        steps.append(dict(type='IrregularMask', ratio='high'))
        notes.append("the pipeline has no IrregularMask: added "
                     "IrregularMask(ratio='high') before packing")
        masks = steps[-1:]
    mask = masks[-1]
    if mask.get('apply'):
        mask['apply'] = False
        notes.append('IrregularMask(apply=True) shown with apply=False')
    mask.update({k: v for k, v in mask_args.items() if v is not None})
    return steps, mask.get('key', 'msl_mask'), notes


def fit_tile(img: np.ndarray, tile: int) -> np.ndarray:
    """``img`` fitted in a white ``tile`` x ``tile`` square (aspect kept;
    nearest neighbour, so masks stay binary and small images sharp)."""
    h, w = img.shape[:2]
    scale = tile / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_NEAREST
                       if scale >= 1 else cv2.INTER_AREA)
    out = np.full((tile, tile, 3), 255, np.uint8)
    y, x = (tile - nh) // 2, (tile - nw) // 2
    out[y:y + nh, x:x + nw] = small.reshape(nh, nw, -1)
    return out


def masked_image(img: np.ndarray, keep: np.ndarray, fill) -> np.ndarray:
    """Holes (``keep == 0``) of ``img`` set to ``fill`` (per channel;
    rounded and clipped to uint8 as ``IrregularMask(apply=True)`` does)."""
    fill = round_pixel(fill, np.uint8)
    return np.where(keep.astype(bool)[..., None], img, fill).astype(np.uint8)


def make_grid(images: Sequence[np.ndarray], keeps: Sequence[np.ndarray],
              fill, tile: int = 128) -> np.ndarray:
    """The ``clean | keep mask | masked`` grid (see the module doc).

    Args:
        images (Sequence[np.ndarray]): BGR images ``(H, W, 3)``.
        keeps (Sequence[np.ndarray]): Keep masks ``(H, W)``, 1 keep / 0 hole.
        fill (float | Sequence[float]): Hole pixel value (BGR).
        tile (int): Tile side.

    Returns:
        np.ndarray: ``(3 * tile + 4 * PAD, LABEL_W + N * tile + (N + 1) *
        PAD, 3)`` uint8.
    """
    n = len(images)
    grid = np.full((3 * tile + 4 * PAD, LABEL_W + n * tile + (n + 1) * PAD,
                    3), 255, np.uint8)
    for r, name in enumerate(ROWS):
        y = PAD + r * (tile + PAD)
        cv2.putText(grid, name, (6, y + tile // 2 + 5),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_8)
    for c, (img, keep) in enumerate(zip(images, keeps)):
        img = np.clip(img, 0, 255).astype(np.uint8)  # float pipelines
        img = img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        keep = np.asarray(keep, np.uint8)
        if keep.shape != img.shape[:2]:  # a reduced mask: as the model does
            keep = upsample_nearest(keep, *img.shape[:2])
        tiles = (img, cv2.cvtColor(keep * 255, cv2.COLOR_GRAY2BGR),
                 masked_image(img, keep, fill))
        x = LABEL_W + PAD + c * (tile + PAD)
        for r, t in enumerate(tiles):
            y = PAD + r * (tile + PAD)
            grid[y:y + tile, x:x + tile] = fit_tile(t, tile)
    return grid


def family_grid(images: Sequence[np.ndarray], rows: dict, fill,
                tile: int = 128) -> np.ndarray:
    """The clean images, then one row of masked images per family.

    Args:
        images (Sequence[np.ndarray]): BGR images ``(H, W, 3)``.
        rows (dict): Family name -> keep masks, one per image.
        fill (float | Sequence[float]): Hole pixel value (BGR).
        tile (int): Tile side.

    Returns:
        np.ndarray: ``((1 + F) * tile + (2 + F) * PAD, LABEL_W + N * tile
        + (N + 1) * PAD, 3)`` uint8.
    """
    n, names = len(images), ['clean'] + list(rows)
    grid = np.full((len(names) * tile + (len(names) + 1) * PAD,
                    LABEL_W + n * tile + (n + 1) * PAD, 3), 255, np.uint8)
    for r, name in enumerate(names):
        y = PAD + r * (tile + PAD)
        cv2.putText(grid, name, (6, y + tile // 2 + 5),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_8)
        for c, img in enumerate(images):
            img = np.clip(img, 0, 255).astype(np.uint8)
            if img.ndim == 2:
                img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
            if r:
                keep = np.asarray(rows[name][c], np.uint8)
                if keep.shape != img.shape[:2]:
                    keep = upsample_nearest(keep, *img.shape[:2])
                img = masked_image(img, keep, fill)
            x = LABEL_W + PAD + c * (tile + PAD)
            grid[y:y + tile, x:x + tile] = fit_tile(img, tile)
    return grid


def sample(cfg: Config, split: str, num: int, seed: int, **mask_args):
    """The first ``num`` samples' images and keep masks, and notes."""
    from mmpretrain.registry import DATASETS
    dataset_cfg = dict(cfg[f'{split}_dataloader'].dataset)
    steps, key, notes = mask_pipeline(dataset_cfg.get('pipeline', []),
                                      **mask_args)
    dataset_cfg['pipeline'] = steps
    set_random_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DATASETS.build(dataset_cfg)
        results = [dataset[i] for i in range(min(num, len(dataset)))]
    return [r['img'] for r in results], [r[key] for r in results], notes


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    families = args.family or [None]
    rows, notes = {}, []
    for family in families:
        images, keeps, notes = sample(cfg, args.split, args.num, args.seed,
                                      family=family, ratio=args.ratio)
        rows[family] = keeps
        removed = [1 - float(np.mean(k)) for k in keeps]
        print((f'{family}: ' if family else '') + 'removed: ' +
              ' '.join(f'{r:.0%}' for r in removed))
    for note in notes:
        print(f'Note: {note}')
    if len(families) == 1:
        grid = make_grid(images, rows[families[0]], hole_fill_pixels(cfg),
                         args.tile)
    else:
        grid = family_grid(images, rows, hole_fill_pixels(cfg), args.tile)
    if osp.dirname(args.out):
        os.makedirs(osp.dirname(args.out), exist_ok=True)
    cv2.imwrite(args.out, grid)
    print(f'Wrote {args.out} ({grid.shape[1]}x{grid.shape[0]}, '
          f'{len(images)} samples)')
    return grid


if __name__ == '__main__':
    main()
