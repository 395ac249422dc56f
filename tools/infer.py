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
import json
import os
import os.path as osp
import sys
import warnings
from typing import List, Sequence

import cv2
import numpy as np
import torch
from mmengine.config import DictAction

import mmmsl  # noqa: F401  (registers the MSL components)
from mmmsl.apis import MultiLabelInferencer, expand_inputs, load_thresholds
from mmmsl.apis.inference import parse_mask_ratio, to_bgr_uint8
from mmmsl.apis.robustness import EVAL_MASK_SEED

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE, LINE_H, MARGIN = 0.6, 24, 8


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
    p.add_argument('--mask', type=_mask_arg,
                   help='also predict on masked images: high, low or LO,HI')
    p.add_argument('--mask-seed', type=int, default=EVAL_MASK_SEED)
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    args = p.parse_args(argv)
    if args.topk is not None and args.topk < 1:
        p.error('--topk must be >= 1')
    return args


def _mask_arg(text: str):
    try:
        return parse_mask_ratio(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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


def draw_panel(img: np.ndarray, title: str, labels: List[dict],
               min_side: int = 256) -> np.ndarray:
    """The image, upscaled to at least ``min_side`` px (nearest neighbour,
    so small images stay sharp), above a white band listing ``title`` and
    the labels with their scores."""
    img = to_bgr_uint8(img)
    h, w = img.shape[:2]
    scale = max(1.0, min_side / min(h, w))
    if scale > 1:
        img = cv2.resize(img, (round(w * scale), round(h * scale)),
                         interpolation=cv2.INTER_NEAREST)
    lines = [title] + [f"{x['label']}: {x['score']:.2f}" for x in labels]
    if not labels:
        lines.append('(no label)')
    text_w = max(cv2.getTextSize(t, FONT, FONT_SCALE, 1 + (i == 0))[0][0]
                 for i, t in enumerate(lines)) + 2 * MARGIN
    width = max(img.shape[1], text_w)
    panel = np.full((img.shape[0] + LINE_H * len(lines) + MARGIN, width, 3),
                    255, np.uint8)
    panel[:img.shape[0], :img.shape[1]] = img
    for i, text in enumerate(lines):
        y = img.shape[0] + LINE_H * (i + 1)
        cv2.putText(panel, text, (MARGIN, y), FONT, FONT_SCALE,
                    (0, 0, 0) if i else (160, 60, 0), 1 + (i == 0),
                    cv2.LINE_AA)
    return panel


def hconcat(panels: Sequence[np.ndarray], gap: int = 8) -> np.ndarray:
    """Panels side by side on white, top-aligned."""
    height = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    out = np.full((height, width, 3), 255, np.uint8)
    x = 0
    for p in panels:
        out[:p.shape[0], x:x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out


def visualize(record: dict, images: dict) -> np.ndarray:
    """The picture of one record: the clean image, and with ``--mask`` the
    masked model input beside the clean one.

    Without a mask the clean panel is the image as loaded. With one, both
    panels are the model's input (after the test pipeline's resize and
    crop), clean and masked, so they line up pixel for pixel and the
    masked one is exactly what the model (and ``tools/test.py --mask``)
    sees.
    """
    if 'masked' not in images:
        return draw_panel(images['clean'], 'clean input', record['labels'])
    removed = record['masked']['removed']
    return hconcat([
        draw_panel(images.get('input', images['clean']), 'clean input',
                   record['labels']),
        draw_panel(images['masked'], f'masked, {removed:.0%} removed',
                   record['masked']['labels'])
    ])


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
    if args.show_dir:
        os.makedirs(args.show_dir, exist_ok=True)
    records, used = [], set()
    for record, images in inferencer.iter_predictions(
            paths, thr=thr, topk=args.topk, batch_size=args.batch_size,
            mask=args.mask, mask_seed=args.mask_seed,
            progress=len(paths) > 1):
        records.append(record)
        if args.show_dir:
            cv2.imwrite(unique_png(args.show_dir, record['image'], used),
                        visualize(record, images))
    print_table(records)
    if args.out:
        if osp.dirname(args.out):
            os.makedirs(osp.dirname(args.out), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(records, f, indent=2)
        print(f'Wrote {len(records)} records to {args.out}', file=sys.stderr)
    if args.show_dir:
        print(f'Wrote {len(records)} pictures to {args.show_dir}',
              file=sys.stderr)
    return records


if __name__ == '__main__':
    main()
