"""Multi-label predictions of a trained model on your own images.

    python tools/infer.py CONFIG CKPT INPUT [INPUT ...] \
        [--thr 0.5 | --thr-file thresholds.json] [--topk K] \
        [--out results.json] [--batch-size 8] [--device cpu|cuda] \
        [--show-dir DIR] [--mask high|low|LO,HI] [--cfg-options ...]

INPUT: image files, folders (searched recursively; other files are reported
and skipped) or quoted glob patterns. Every class whose score reaches its
threshold is a label (``--thr`` for all classes, or one per class from
``--thr-file``, as written by ``tools/analysis/tune_thresholds.py``);
``--topk K`` keeps at most the K best of those. Prints a table, writes the
records as JSON with ``--out``, and with ``--show-dir`` one PNG per image
with its labels drawn under it. ``--mask`` also predicts on the image with
a fixed held-out irregular mask, put where ``tools/test.py --mask`` puts it
(after the test pipeline's resize and crop, right before packing; holes of
the pixel the preprocessor maps to the model's ``fill``, see
``mmmsl.apis.robustness.hole_fill_pixels``), so image ``i`` of the inputs
gets the masked model input of test sample ``i`` with the same
``--mask-seed``; the picture shows the masked model input beside the clean
one.
"""
import argparse
import os.path as osp
import sys
import warnings
from typing import List, Sequence

import mmcv
import mmengine
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.utils import track_iter_progress
from mmengine.visualization import Visualizer

import mmmsl  # noqa: F401  (registers the MSL components)
from mmmsl.apis import MultiLabelInferencer, expand_inputs, load_thresholds
from mmmsl.apis.robustness import EVAL_MASK_SEED
from mmmsl.masks import parse_ratio

LINE_H, MARGIN, FONT_SIZE = 24, 8, 12  # the text band: px per line, points
CHAR_W = 0.61 * FONT_SIZE * 100 / 72  # px per monospace char (100 dpi)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('inputs', nargs='+', help='images, folders or globs')
    thr = p.add_mutually_exclusive_group()
    thr.add_argument('--thr', type=float, default=0.5,
                     help='score threshold of every class (default 0.5)')
    thr.add_argument('--thr-file',
                     help='JSON {"thresholds": {class: thr}} for every class')
    p.add_argument('--topk', type=int,
                   help='at most K labels per image (the best above thr)')
    p.add_argument('--out', help='write the records to this JSON file')
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--device',
                   default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--show-dir',
                   help='write each image with its labels as PNG here')
    p.add_argument('--mask', type=parse_ratio,
                   help='also predict on masked images: high, low or LO,HI')
    p.add_argument('--mask-seed', type=int, default=EVAL_MASK_SEED)
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    args = p.parse_args(argv)
    if args.topk is not None and args.topk < 1:
        p.error('--topk must be >= 1')
    return args


def format_labels(labels: List[dict]) -> str:
    """``'dog 0.93, cat 0.71'`` (``'-'`` for none)."""
    return ', '.join(f"{x['label']} {x['score']:.2f}" for x in labels) or '-'


def print_table(records: Sequence[dict], file=sys.stdout) -> None:
    """One row per image: its labels (and masked labels) with scores."""
    masked = any('masked' in r for r in records)
    head = ['image', 'labels'] + (['labels (masked input)'] if masked else [])
    rows = [[r['image'], format_labels(r['labels'])] +
            ([format_labels(r['masked']['labels'])] if masked else [])
            for r in records]
    widths = [max(len(row[i]) for row in rows + [head])
              for i in range(len(head))]
    for row in [head, ['-' * w for w in widths]] + rows:
        print('  '.join(v.ljust(w) for v, w in zip(row, widths)).rstrip(),
              file=file)


def draw_panel(img: np.ndarray, lines: List[str], num_lines: int,
               min_side: int = 256) -> np.ndarray:
    """The image (BGR), upscaled (nearest, so small images stay sharp) to
    at least ``min_side`` px, above a white band of ``num_lines`` lines with
    ``lines`` (the first a title), drawn by mmengine's ``Visualizer``;
    mmpretrain's ``UniversalVisualizer.visualize_cls`` is not used: it
    writes over the image, which must show the model's input exactly."""
    img = np.clip(img, 0, 255).astype(np.uint8)
    img = mmcv.imrescale(img, max(1.0, min_side / min(img.shape[:2])),
                         interpolation='nearest')
    h, w = img.shape[:2]
    width = max(w, int(CHAR_W * max(map(len, lines))) + 2 * MARGIN)
    panel = np.full((h + LINE_H * num_lines + MARGIN, width, 3), 255,
                    np.uint8)
    panel[:h, :w] = img
    vis = Visualizer.get_instance('mmmsl_infer')
    vis.set_image(panel[..., ::-1])
    vis.draw_texts(lines, np.array([[MARGIN, h + 4 + LINE_H * i]
                                    for i in range(len(lines))]),
                   colors=[(0, 60, 160)] + ['black'] * (len(lines) - 1),
                   font_sizes=FONT_SIZE, vertical_alignments='top',
                   font_families='monospace')
    return vis.get_image()[..., ::-1]


def visualize(record: dict, images: dict) -> np.ndarray:
    """The picture of one record: the clean image with its labels, and with
    ``--mask`` the masked model input with its labels beside it.

    Without a mask the clean panel is the image as loaded. With one, both
    panels are the model's input (after the test pipeline's resize and
    crop), clean and masked, so they line up pixel for pixel and the
    masked one is exactly what the model (and ``tools/test.py --mask``)
    sees.
    """
    panels = [(images['clean'], 'clean input', record['labels'])]
    if 'masked' in record:
        removed = record['masked']['removed']
        panels = [(images['input'], 'clean input', record['labels']),
                  (images['masked'], f'masked, {removed:.0%} removed',
                   record['masked']['labels'])]
    texts = [[title] + ([f"{x['label']}: {x['score']:.2f}" for x in labels]
                        or ['(no label)']) for _, title, labels in panels]
    drawn = [draw_panel(img, lines, max(map(len, texts)))
             for (img, _, _), lines in zip(panels, texts)]
    gap = np.full((drawn[0].shape[0], MARGIN, 3), 255, np.uint8)
    return np.hstack([p for d in drawn for p in (gap, d)][1:])


def unique_png(out_dir: str, image: str, used: set) -> str:
    """``out_dir/<stem>.png``, suffixed ``_1``, ``_2``... if taken."""
    stem = osp.splitext(osp.basename(image))[0] or 'image'
    name, k = stem, 0
    while name in used:
        k += 1
        name = f'{stem}_{k}'
    used.add(name)
    return osp.join(out_dir, name + '.png')


def _short_warning(message, category, *args, **kwargs) -> str:
    return f'{category.__name__}: {message}\n'


def main(argv=None):
    args = parse_args(argv)
    warnings.formatwarning = _short_warning
    try:
        paths = expand_inputs(args.inputs)
        if not paths:
            raise FileNotFoundError('No image found in ' +
                                    ' '.join(args.inputs))
        inferencer = MultiLabelInferencer(args.config, args.checkpoint,
                                          args.device, args.cfg_options)
        thr = (load_thresholds(args.thr_file, inferencer.classes)
               if args.thr_file else args.thr)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'{type(e).__name__}: {e}')
    records, used = [], set()
    predictions = inferencer.iter_predictions(
        paths, thr=thr, topk=args.topk, batch_size=args.batch_size,
        mask=args.mask, mask_seed=args.mask_seed)
    if len(paths) > 1:
        predictions = track_iter_progress((predictions, len(paths)),
                                          file=sys.stderr)
    for record, images in predictions:
        records.append(record)
        if args.show_dir:
            mmcv.imwrite(visualize(record, images),
                         unique_png(args.show_dir, record['image'], used))
    print_table(records)
    if args.out:
        mmengine.dump(records, args.out, file_format='json', indent=2)
        print(f'Wrote {len(records)} records to {args.out}', file=sys.stderr)
    if args.show_dir:
        print(f'Wrote {len(records)} pictures to {args.show_dir}',
              file=sys.stderr)
    return records


if __name__ == '__main__':
    main()
