"""A web demo: every label of an image with its score, clean and occluded,
from an MSL model and a compared model side by side (Gradio).

    pip install -e ".[app]"
    python tools/app.py CONFIG CKPT [--compare CONFIG2 CKPT2] \
        [--thr 0.5 | --thr-file FILE] [--compare-thr-file FILE2] \
        [--names MSL baseline] [--examples IMG ...] [--device cpu] \
        [--host 127.0.0.1] [--port 7860] [--share]

Drop or pick an image; occlude it by drawing on it with the brush (brushed
pixels become holes) and / or by a mask family of :mod:`mmmsl.masks` that
removes the slider's fraction (a seeded mask, :func:`family_keep`), then
press Predict. Holes get the pixel that the first model's preprocessor maps
to its ``fill`` (:func:`mmmsl.apis.robustness.hole_fill_pixels`, as
``tools/test.py --mask``), and both models see the same pixels.
Predictions, thresholds and top-k are
:class:`mmmsl.apis.MultiLabelInferencer`'s; ``--thr-file`` is read as
``tools/infer.py`` reads it. Without
``--examples`` the first config's test images are offered when its
``data_root`` exists (the digits canvases after ``bash tools/demo.sh``).

Everything but :func:`build_ui` and :func:`main` is pure and importable
without Gradio (``tests/test_app.py``).
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

import mmmsl  # noqa: F401  (registers the MSL components)
import mmmsl.masks as masks
from mmmsl.apis import MultiLabelInferencer, expand_inputs, load_thresholds
from mmmsl.apis.robustness import hole_fill_pixels
from mmmsl.apis.thresholds import resolve_thresholds

RATIO_TOL = 0.02  #: a family mask removes the slider's fraction +- this
MAX_MASK_SIDE = 256  #: family masks are drawn at most this big, upsampled
DEFAULT_FAMILY = 'strokes'  #: the free-form strokes of IrregularMask


class DemoModel(NamedTuple):
    """A model of the demo: its column name, inferencer and ``(C, )``
    thresholds."""
    name: str
    inferencer: MultiLabelInferencer
    thresholds: np.ndarray

    @property
    def classes(self) -> List[str]:
        return list(self.inferencer.classes)


def load_model(config: str, checkpoint: str, name: str, thr=0.5,
               thr_file: Optional[str] = None,
               device: str = 'cpu') -> DemoModel:
    """A :class:`DemoModel`; ``thr_file`` (per-class thresholds, see
    :func:`mmmsl.apis.load_thresholds`) wins over ``thr``."""
    inferencer = MultiLabelInferencer(config, checkpoint, device)
    classes = inferencer.classes
    thr = (load_thresholds(thr_file, classes) if thr_file else
           resolve_thresholds(thr, classes))
    return DemoModel(name, inferencer, thr)


def default_names(configs: Sequence[str]) -> List[str]:
    """Column names: the configs' file stems, with their folder when two
    stems are equal (``msl/demo_digits``, ``baseline/demo_digits``)."""
    stems = [osp.splitext(osp.basename(c))[0] for c in configs]
    if len(set(stems)) == len(stems):
        return stems
    return [osp.join(osp.basename(osp.dirname(osp.abspath(c))), s)
            for c, s in zip(configs, stems)]


def mask_families() -> Tuple[str, ...]:
    """The image-independent mask families of :mod:`mmmsl.masks`
    (``FAMILIES``: ``'strokes'``, the default of ``IrregularMask``, first;
    ``'objects'`` needs boxes and is left out)."""
    return tuple(getattr(masks, 'FAMILIES', None) or (DEFAULT_FAMILY, ))


def _source(family: str, bounds: Tuple[float, float]):
    """The fresh-mask-per-call sampler of ``family`` in ``bounds``."""
    kwargs = dict(family=family) if hasattr(masks, 'FAMILIES') else {}
    return masks.build_mask_source('procedural', bounds, **kwargs)


def family_keep(shape: Tuple[int, int], family: str = DEFAULT_FAMILY,
                removed: float = 0.5, seed: int = 0,
                max_side: int = MAX_MASK_SIDE) -> np.ndarray:
    """A keep mask of ``family`` that removes ``removed`` of the pixels.

    Args:
        shape (tuple[int, int]): ``(H, W)`` of the image.
        family (str): One of :func:`mask_families`.
        removed (float): Fraction of pixels removed, 0..1; the mask's own
            lands in ``(removed - RATIO_TOL, removed + RATIO_TOL]`` (clipped
            to 0..1). 0: nothing removed.
        seed (int): Same seed, shape and arguments: same mask.
        max_side (int): Drawn at most this big, then upsampled to
            ``shape`` with the ratio kept at ``shape``.

    Returns:
        np.ndarray: ``(H, W)`` uint8, 1 keep / 0 hole.
    """
    h, w = int(shape[0]), int(shape[1])
    if not 0.0 <= removed <= 1.0:
        raise ValueError(f'removed={removed}: expected a fraction in 0..1')
    if family not in mask_families():
        raise ValueError(f'family={family!r}: expected one of '
                         f'{mask_families()}')
    if removed == 0:
        return np.ones((h, w), np.uint8)
    bounds = (max(0.0, removed - RATIO_TOL), min(1.0, removed + RATIO_TOL))
    scale = min(1.0, max_side / max(h, w))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    hole = _source(family, bounds).sample(sh, sw, np.random.default_rng(seed),
                                          size=(h, w))
    return (masks.upsample_nearest(hole, h, w) == 0).astype(np.uint8)


def brush_keep(layers: Optional[Sequence[np.ndarray]],
               shape: Tuple[int, int]) -> np.ndarray:
    """The keep mask of brush layers: every pixel drawn on (alpha > 0) in
    any ``(h, w, 4)`` RGBA layer is a hole; a layer of another size is
    resized (nearest) to ``shape`` ``(H, W)``. Returns ``(H, W)`` uint8."""
    h, w = int(shape[0]), int(shape[1])
    keep = np.ones((h, w), np.uint8)
    for i, layer in enumerate(layers or []):
        layer = np.asarray(layer)
        if layer.ndim != 3 or layer.shape[2] != 4:
            raise ValueError(f'brush layer {i}: expected an (h, w, 4) RGBA '
                             f'array, got shape {layer.shape}')
        drawn = (layer[..., 3] > 0).astype(np.uint8)
        if drawn.shape != (h, w):
            drawn = cv2.resize(drawn, (w, h), interpolation=cv2.INTER_NEAREST)
        keep[drawn > 0] = 0
    return keep


def hole_rgb(model: DemoModel) -> np.ndarray:
    """The ``(3, )`` uint8 RGB hole pixel of ``model`` (its config's
    :func:`hole_fill_pixels`, which is BGR)."""
    pix = np.asarray(hole_fill_pixels(model.inferencer.config), np.uint8)
    return np.broadcast_to(pix[::-1] if pix.size == 3 else pix, (3, )).copy()


def occlude(image: np.ndarray, keep: np.ndarray,
            pixel: Sequence[int]) -> np.ndarray:
    """A copy of ``(H, W, 3)`` ``image`` with the holes of ``keep`` (0)
    set to ``pixel``."""
    if keep.shape != image.shape[:2]:
        raise ValueError(f'keep mask {keep.shape} does not match the image '
                         f'{image.shape[:2]}')
    out = image.copy()
    out[keep == 0] = np.asarray(pixel, image.dtype)
    return out


def to_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of a gray, RGB or RGBA array (alpha
    dropped)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f'expected a gray, RGB or RGBA image, got shape '
                         f'{image.shape}')
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def display(image: np.ndarray, min_side: int = 320) -> np.ndarray:
    """``image`` upscaled (nearest: pixels stay sharp) to at least
    ``min_side`` px for the page; larger images as they are."""
    k = int(np.ceil(min_side / min(image.shape[:2])))
    return np.repeat(np.repeat(image, k, 0), k, 1) if k > 1 else image


def predict(model: DemoModel, images: Sequence[np.ndarray],
            topk: Optional[int] = None) -> List[dict]:
    """The records (``{'labels', 'scores', ...}``, see
    :meth:`MultiLabelInferencer.postprocess`) of RGB ``images``."""
    bgr = [np.ascontiguousarray(to_rgb(img)[..., ::-1]) for img in images]
    return model.inferencer(bgr, thr=model.thresholds, topk=topk,
                            batch_size=len(bgr))


def run_demo(models: Sequence[DemoModel], image: np.ndarray,
             layers: Optional[Sequence[np.ndarray]] = None,
             family: str = DEFAULT_FAMILY, removed: float = 0.0,
             seed: int = 0) -> dict:
    """One press of Predict: the image occluded by the brush ``layers`` and
    by ``family`` at ``removed``, every model on the clean and the occluded
    image.

    Returns:
        dict: ``occluded`` (RGB image), ``keep`` (``(H, W)`` uint8),
        ``removed`` (the fraction removed in all), ``records``
        (``{name: (clean record, occluded record)}``).
    """
    image = to_rgb(image)
    keep = brush_keep(layers, image.shape[:2]) & family_keep(
        image.shape[:2], family, float(removed), int(seed))
    occluded = occlude(image, keep, hole_rgb(models[0]))
    records = {m.name: tuple(predict(m, [image, occluded])) for m in models}
    return dict(occluded=occluded, keep=keep,
                removed=float(1 - keep.mean()), records=records)


def format_results(models: Sequence[DemoModel],
                   records: Dict[str, Tuple[dict, dict]]):
    """What the page shows of :func:`run_demo`'s ``records``.

    Returns:
        tuple: ``labels``, per model ``(clean, occluded)`` dicts
        ``{class: score}`` of the labels (score >= threshold; ``{}`` if
        none); ``headers`` and ``rows`` of a table of every class, best
        first (by its highest score): the class, its threshold(s) and each
        model's clean and occluded score, ``'0.93 ✓'`` for a label.
    """
    classes = models[0].classes
    for m in models[1:]:
        if m.classes != classes:
            raise ValueError(f'{m.name} has classes {m.classes}, '
                             f'{models[0].name} has {classes}')
    labels, cols, thrs = [], [], []
    for m in models:
        labels.append(tuple({x['label']: round(x['score'], 4)
                             for x in r['labels']} for r in records[m.name]))
        for r in records[m.name]:
            cols.append((np.asarray(r['scores']), m.thresholds))
        thrs.append(m.thresholds)
    same_thr = all(np.array_equal(t, thrs[0]) for t in thrs)
    headers = ['class', 'threshold'] + [
        f'{m.name} {view}' for m in models for view in ('clean', 'occluded')]
    best = np.max([s for s, _ in cols], axis=0)
    rows = []
    for c in np.argsort(-best, kind='stable'):
        thr = (f'{thrs[0][c]:.2f}' if same_thr else
               ' / '.join(f'{t[c]:.2f}' for t in thrs))
        rows.append([classes[c], thr] + [
            f'{s[c]:.2f}' + (' ✓' if s[c] >= t[c] else '') for s, t in cols])
    return labels, headers, rows


def default_examples(config: str, num: int = 4) -> List[str]:
    """Up to ``num`` images of ``config``'s test dataset, spread over it,
    when its ``data_root`` exists (none else, or if it fails to build)."""
    from mmengine.config import Config
    from mmpretrain.registry import DATASETS
    cfg = Config.fromfile(config)
    ds_cfg = cfg.get('test_dataloader', {}).get('dataset', {})
    root = ds_cfg.get('data_root')
    if not root or not osp.isdir(root):
        return []
    try:
        dataset = DATASETS.build(dict(ds_cfg, pipeline=[]))
        idx = np.unique(np.linspace(0, len(dataset) - 1, num).astype(int))
        paths = [dataset.get_data_info(int(i))['img_path'] for i in idx]
    except Exception as e:  # examples are a convenience: never fatal
        print(f'No example images ({type(e).__name__}: {e})',
              file=sys.stderr)
        return []
    return [p for p in paths if osp.isfile(p)]


def brush_radius(examples: Sequence[str], auto: int = 25) -> int:
    """The brush's radius in image pixels: 1/16 of the first example's
    shorter side (4 px on the 64 px digits), else ``auto`` (Gradio's)."""
    import mmcv
    img = mmcv.imread(examples[0]) if examples else None
    return max(2, round(min(img.shape[:2]) / 16)) if img is not None else auto


def build_ui(models: Sequence[DemoModel], examples: Sequence[str] = ()):
    """The Gradio page (a ``gr.Blocks``, not launched)."""
    import gradio as gr

    families = mask_families()
    with gr.Blocks(title='mmmsl demo') as page:
        gr.Markdown('## mmmsl: labels of an image, clean and occluded\n'
                    'Drop or pick an image, draw on it to remove parts '
                    'and / or remove a fraction with a mask family, then '
                    'press **Predict**. Labels: score >= threshold.')
        with gr.Row():
            editor = gr.ImageEditor(
                label='image (draw to remove)', type='numpy',
                image_mode='RGBA', sources=('upload', 'clipboard'),
                layers=False, transforms=(), format='png', height=380,
                elem_id='image',
                brush=gr.Brush(colors=['rgb(255, 0, 255)'],
                               color_mode='fixed',
                               default_size=brush_radius(examples)))
            shown = gr.Image(label='occluded (what the models see)',
                             type='numpy', interactive=False, height=380,
                             elem_id='occluded')
        with gr.Row():
            family = gr.Dropdown(list(families), value=families[0],
                                 label='mask family', elem_id='family')
            removed = gr.Slider(0, 0.95, value=0, step=0.05,
                                label='removed fraction (mask family)',
                                elem_id='removed')
            seed = gr.Number(0, precision=0, label='mask seed')
            button = gr.Button('Predict', variant='primary',
                               elem_id='predict')
        outputs = [shown]
        with gr.Row():
            for i, m in enumerate(models):
                with gr.Column():
                    gr.Markdown(f'### {m.name}')
                    outputs += [gr.Label(label=f'{m.name}: {view}',
                                         elem_id=f'labels-{i}-{view}')
                                for view in ('clean', 'occluded')]
        status = gr.Markdown(elem_id='status')
        table = gr.Dataframe(label='every class (✓: a label)',
                             interactive=False, elem_id='table')
        outputs += [status, table]
        if examples:
            gr.Examples([[p] for p in examples], inputs=[editor],
                        label='test images')

        def on_predict(value, family_name, fraction, mask_seed):
            if not value or value.get('background') is None:
                raise gr.Error('Drop or pick an image first.')
            out = run_demo(models, value['background'], value.get('layers'),
                           family_name, float(fraction), int(mask_seed or 0))
            labels, headers, rows = format_results(models, out['records'])
            note = (f"{out['removed']:.1%} of the pixels removed (brush + "
                    f'{family_name} mask at {float(fraction):.0%}); holes in '
                    f'RGB {tuple(hole_rgb(models[0]).tolist())}')
            shown = [v or {'(no label)': 0.0} for pair in labels for v in pair]
            return [display(out['occluded']), *shown, note,
                    gr.Dataframe(value=rows, headers=headers)]

        button.click(on_predict, [editor, family, removed, seed], outputs)
    return page


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='config of the (MSL) model')
    p.add_argument('checkpoint', help='its checkpoint')
    p.add_argument('--compare', nargs=2, metavar=('CONFIG2', 'CKPT2'),
                   help='a second model shown beside the first')
    thr = p.add_mutually_exclusive_group()
    thr.add_argument('--thr', type=float, default=0.5,
                     help='score threshold of every class (default 0.5)')
    thr.add_argument('--thr-file', help='per-class thresholds (JSON, as '
                     'tools/infer.py --thr-file)')
    p.add_argument('--compare-thr-file', help='the second model\'s '
                   'thresholds (default: --thr-file / --thr)')
    p.add_argument('--names', nargs='+', help='column names of the models')
    p.add_argument('--examples', nargs='+', help='example images, folders '
                   'or globs (default: a few of the config\'s test images)')
    p.add_argument('--device',
                   default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--host', default='127.0.0.1', help='0.0.0.0: the LAN')
    p.add_argument('--port', type=int, default=7860)
    p.add_argument('--share', action='store_true',
                   help='also a public gradio.live link')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    specs = [(args.config, args.checkpoint, args.thr_file)]
    if args.compare:
        specs.append((*args.compare, args.compare_thr_file or args.thr_file))
    names = args.names or default_names([s[0] for s in specs])
    if len(names) != len(specs):
        sys.exit(f'--names: {len(names)} names for {len(specs)} models')
    try:
        models = [load_model(cfg, ckpt, name, args.thr, thr_file,
                             args.device)
                  for (cfg, ckpt, thr_file), name in zip(specs, names)]
        examples = (expand_inputs(args.examples) if args.examples else
                    default_examples(args.config))
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'{type(e).__name__}: {e}')
    if any(m.classes != models[0].classes for m in models):
        sys.exit('--compare: the models must have the same classes, got ' +
                 '; '.join(f'{m.name}: {m.classes}' for m in models))
    try:
        page = build_ui(models, examples)
    except ImportError as e:
        sys.exit(f'{e}: the web demo needs Gradio, pip install -e ".[app]"')
    page.launch(server_name=args.host, server_port=args.port,
                share=args.share)


if __name__ == '__main__':
    main()
