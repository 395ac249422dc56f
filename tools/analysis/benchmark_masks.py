"""Speed of ``IrregularMask`` per mask source and per mask family on one
core, and its share of a training pipeline.

``python tools/analysis/benchmark_masks.py [--sizes 224 448] [--n 500]
[--families strokes perlin ...] [--image photo.jpg] [--json OUT]``

The sources, the pipeline and how they are timed: "How benchmark_masks
measures" in ``docs/benchmarks.md``.
"""
import os

for _var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
             'NUMEXPR_NUM_THREADS'):
    os.environ[_var] = '1'

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

warnings.filterwarnings('ignore', message='Fail to import')  # mmcv-lite
import mmmsl  # noqa: F401, E402  (registers IrregularMask)
from mmmsl.masks import (MaskBank, hole_ratio, irregular_masks,  # noqa
                         known_families)
from mmmsl.masks.ratio import parse_ratio  # noqa: E402
from mmmsl.utils.timing import (busy_note, describe, environment,  # noqa
                                load_span, report)

SOURCES = ('procedural', 'folder', 'bank', 'bank-full')
STEPS = ('LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip',
         'IrregularMask', 'PackInputs')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time IrregularMask per source on one core')
    parser.add_argument('--sizes', type=int, nargs='+', default=[224, 448],
                        help='image sides')
    parser.add_argument('--n', type=int, default=500,
                        help='masks per rate and samples per pipeline run')
    parser.add_argument('--sources', nargs='+', default=list(SOURCES),
                        choices=SOURCES)
    parser.add_argument('--families', nargs='*',
                        default=list(known_families()),
                        choices=known_families(),
                        help='mask families timed on the fly and from a '
                        'bank (objects: on the fly only); none to skip')
    parser.add_argument('--bank-size', type=int, default=1000,
                        help='masks of the cached procedural bank')
    parser.add_argument('--bank-res', type=int, default=256,
                        help='side of the bank\'s (and the folder bank\'s) '
                        'masks')
    parser.add_argument('--folder-count', type=int, default=200,
                        help='PNG masks written to the temporary folder')
    parser.add_argument('--folder-res', type=int, default=512,
                        help='side of the folder\'s PNG masks')
    parser.add_argument('--image', help='a real photo to use as the JPEG')
    parser.add_argument('--jpeg-size', type=int, nargs=2,
                        default=[500, 375], metavar=('W', 'H'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', metavar='OUT',
                        help='write the figures to this JSON file')
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error('--n must be >= 1')
    return args


def write_mask_folder(folder: str, count: int, res: int, seed: int) -> None:
    """``count`` procedural 50-60% hole masks as PNGs, white = hole."""
    os.makedirs(folder, exist_ok=True)
    for i, hole in enumerate(irregular_masks(count, res, res, 'high', seed)):
        cv2.imwrite(os.path.join(folder, f'{i:05d}.png'), hole * 255)


def write_jpeg(path: str, size, seed: int, image=None) -> int:
    """A ``W x H`` JPEG (quality 90) of a photo or a synthetic scene."""
    w, h = size
    if image is not None:
        img = cv2.imread(image, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'cannot read {image}')
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    else:
        rng = np.random.default_rng(seed)
        # Smooth colour fields (a photo's low frequencies) ...
        img = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8),
                         (w, h), interpolation=cv2.INTER_CUBIC)
        # ... objects with edges ...
        for _ in range(12):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            x, y = int(rng.integers(w)), int(rng.integers(h))
            if rng.random() < 0.5:
                cv2.circle(img, (x, y), int(rng.integers(10, 80)), colour,
                           -1, cv2.LINE_AA)
            else:
                cv2.rectangle(img, (x, y), (x + int(rng.integers(20, 150)),
                                            y + int(rng.integers(20, 150))),
                              colour, -1)
        # ... and texture.
        noise = rng.normal(0, 10, img.shape)
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
    cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return os.path.getsize(path)


def build_mask_transform(source: str, args, folder: str,
                         family: str = 'strokes'):
    from mmpretrain.registry import TRANSFORMS
    cfg = dict(type='IrregularMask', ratio='high', source=source,
               bank_size=args.bank_size, bank_res=args.bank_res,
               family=family)
    if source == 'bank-full':
        cfg.update(source='bank', full_size=True)
    if source == 'folder':
        cfg['path'] = folder
    return TRANSFORMS.build(cfg)


def cached_bank_exists(args) -> bool:
    from mmmsl.masks import default_cache_dir
    lo, hi = parse_ratio('high')
    return os.path.isfile(os.path.join(
        default_cache_dir(), f'irregular_{lo:g}-{hi:g}_{args.bank_size}x'
        f'{args.bank_res}_seed0.npz'))


def object_boxes(size: int) -> np.ndarray:
    """Two synthetic object boxes covering 40% of a ``size`` px image, for
    the ``objects`` family (a VOC image has 2.4 objects on average)."""
    return np.array([[0.1, 0.1, 0.55, 0.6], [0.4, 0.35, 0.9, 0.85]],
                    np.float32) * size


def mask_rate(transform, size: int, n: int) -> dict:
    """Masks/s of ``transform`` on a ``size`` x ``size`` image."""
    results = dict(img=np.zeros((size, size, 3), np.uint8),
                   gt_bboxes=object_boxes(size))
    for _ in range(min(20, n)):  # warm-up
        transform(results)
    ratios = [hole_ratio(1 - transform(results)['msl_mask'])
              for _ in range(50)]
    t0 = time.perf_counter()
    for _ in range(n):
        transform(results)
    elapsed = time.perf_counter() - t0
    removed = describe(float(r) for r in ratios)
    return dict(masks_per_s=n / elapsed, us_per_mask=elapsed / n * 1e6,
                mask_shape=list(transform.mask_size(size, size)),
                mean_removed=removed['mean'], min_removed=removed['min'],
                max_removed=removed['max'])


def family_rate(transform, size: int, n: int) -> dict:
    """:func:`mask_rate`, or ``{'error': message}`` for a family that has
    no mask of this size in the bin (e.g. 16 px patches at 32 px)."""
    try:
        return mask_rate(transform, size, n)
    except ValueError as e:
        return dict(error=str(e))


def pipeline_share(mask_transforms: dict, size: int, n: int, jpeg: str,
                   seed: int) -> dict:
    """Per-step mean time of the pipeline for every source, interleaved."""
    from mmpretrain.registry import TRANSFORMS
    common = [
        TRANSFORMS.build(dict(type='LoadImageFromFile')),
        TRANSFORMS.build(dict(type='RandomResizedCrop', scale=size,
                              crop_ratio_range=(0.7, 1.0))),
        TRANSFORMS.build(dict(type='RandomFlip', prob=0.5,
                              direction='horizontal')),
    ]
    pack = TRANSFORMS.build(dict(type='PackInputs',
                                 algorithm_keys=('msl_mask', )))
    pipelines = {s: common + [m, pack] for s, m in mask_transforms.items()}
    times = {s: {step: [] for step in STEPS} for s in pipelines}
    rng = np.random.default_rng(seed)
    for i in range(-5, n):  # 5 warm-up samples
        for source, pipeline in pipelines.items():
            results = dict(img_path=jpeg, sample_idx=i,
                           gt_label=np.sort(rng.choice(20, 2, False)))
            for step, transform in zip(STEPS, pipeline):
                if step == 'IrregularMask':  # boxes of the crop (objects)
                    results['gt_bboxes'] = object_boxes(size)
                t0 = time.perf_counter()
                results = transform(results)
                dt = time.perf_counter() - t0
                if i >= 0:
                    times[source][step].append(dt)
            assert results['data_samples'].msl_mask.shape == \
                pipeline[3].mask_size(size, size)
    out = {}
    for source, steps in times.items():
        us = {step: describe(t)['mean'] * 1e6 for step, t in steps.items()}
        total = sum(us.values())
        out[source] = dict(step_us=us, total_us=total,
                           mask_share_pct=100.0 * us['IrregularMask'] / total,
                           samples_per_s=1e6 / total)
    return out


def run(args) -> dict:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    np.random.seed(args.seed)  # IrregularMask's ProcessRNG draws from it
    env = environment(cv2=cv2.__version__, numpy=np.__version__,
                      cv2_threads=cv2.getNumThreads())
    tmp = tempfile.mkdtemp(prefix='mmmsl_bench_masks_')
    try:
        folder = os.path.join(tmp, 'masks')
        t0 = time.perf_counter()
        if 'folder' in args.sources:
            write_mask_folder(folder, args.folder_count, args.folder_res,
                              args.seed)
        folder_write_s = time.perf_counter() - t0
        jpeg = os.path.join(tmp, 'image.jpg')
        jpeg_bytes = write_jpeg(jpeg, args.jpeg_size, args.seed, args.image)

        transforms, build = {}, {}
        for source in args.sources:
            was_cached = source.startswith('bank') and cached_bank_exists(
                args)
            t0 = time.perf_counter()
            transforms[source] = build_mask_transform(source, args, folder)
            build[source] = dict(build_s=time.perf_counter() - t0)
            src = transforms[source].source
            if isinstance(src, MaskBank):
                build[source].update(bank_masks=len(src),
                                     bank_res=src.size)
            if source.startswith('bank'):
                build[source]['was_cached'] = was_cached
            if source == 'folder':
                build[source].update(files=args.folder_count,
                                     file_res=args.folder_res,
                                     write_s=folder_write_s)

        rates = {
            str(size): {s: mask_rate(t, size, args.n)
                        for s, t in transforms.items()}
            for size in args.sizes
        }
        pipeline = {
            str(size): pipeline_share(transforms, size, args.n, jpeg,
                                      args.seed)
            for size in args.sizes
        }
        families, family_build = {}, {}
        for fam in args.families:
            for source in ('procedural', 'bank'):
                t0 = time.perf_counter()
                families[(fam, source)] = build_mask_transform(
                    source, args, folder, family=fam)
                family_build[f'{fam}/{source}'] = time.perf_counter() - t0
        family_rates = {
            str(size): {
                fam: {
                    source: family_rate(t, size, args.n)
                    for (f, source), t in families.items() if f == fam
                }
                for fam in args.families
            }
            for size in args.sizes
        }
        banked = {f: t for (f, source), t in families.items()
                  if source == 'bank'}
        family_pipeline = {
            str(size): pipeline_share(banked, size, args.n, jpeg, args.seed)
            for size in args.sizes
        } if banked else {}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    env['loadavg_end'] = list(os.getloadavg())
    return dict(env=env,
                settings=dict(sizes=args.sizes, n=args.n,
                              sources=args.sources,
                              bank_size=args.bank_size,
                              bank_res=args.bank_res,
                              folder_count=args.folder_count,
                              folder_res=args.folder_res,
                              jpeg_size=args.jpeg_size,
                              jpeg_bytes=jpeg_bytes,
                              image=args.image or 'synthetic'),
                build=build, rates=rates, pipeline=pipeline,
                family_build_s=family_build, family_rates=family_rates,
                family_pipeline=family_pipeline)


def format_report(res: dict) -> str:
    env, s = res['env'], res['settings']
    lines = [
        f"torch {env['torch']}  cv2 {env['cv2']}  cpu: {env['cpu']} "
        f"x{env['cpu_count']}  threads torch {env['torch_threads']} / cv2 "
        f"{env['cv2_threads']}  {load_span(env)}",
        f"n={s['n']}  bank {s['bank_size']} x {s['bank_res']} px  folder "
        f"{s['folder_count']} PNG x {s['folder_res']} px  JPEG "
        f"{s['jpeg_size'][0]}x{s['jpeg_size'][1]} ({s['image']}, "
        f"{s['jpeg_bytes'] / 1024:.0f} KiB)",
        *busy_note(env, (env['cpu_count'] or 1) - 0.5, 'rates may be low'),
        '',
        'build: ' + ', '.join(
            f"{k} {v['build_s'] * 1e3:.0f} ms"
            + (f" ({v['bank_masks']} masks)" if 'bank_masks' in v else '')
            + (' (cached)' if v.get('was_cached') else '')
            for k, v in res['build'].items()), '',
        f"{'IrregularMask':<14}{'size':>6}{'masks/s':>10}{'us/mask':>10}"
        f"{'mask':>10}{'removed % (mean, min-max)':>30}",
    ]
    for size, per in res['rates'].items():
        for source, r in per.items():
            lines.append(
                f"{source:<14}{size:>6}{r['masks_per_s']:>10.0f}"
                f"{r['us_per_mask']:>10.1f}"
                f"{'x'.join(map(str, r['mask_shape'])):>10}"
                f"{100 * r['mean_removed']:>16.1f}  "
                f"({100 * r['min_removed']:.1f}-"
                f"{100 * r['max_removed']:.1f})")
    lines += ['', 'pipeline, mean us per sample and step:',
              f"{'source':<12}{'size':>5}"
              + ''.join(f'{step[:12]:>13}' for step in STEPS)
              + f"{'total':>9}{'mask %':>8}"]
    for size, per in res['pipeline'].items():
        for source, p in per.items():
            lines.append(
                f'{source:<12}{size:>5}'
                + ''.join(f"{p['step_us'][step]:>13.1f}" for step in STEPS)
                + f"{p['total_us']:>9.0f}{p['mask_share_pct']:>8.2f}")
    if res.get('family_rates'):
        lines += ['', 'families, masks/s (on the fly / from the bank; '
                  'objects: always on the fly, from the image\'s boxes):',
                  f"{'family':<10}{'size':>6}{'fly':>10}{'bank':>10}"
                  f"{'bank us':>10}{'mask':>10}{'removed % (bank)':>20}"]
        for size, per in res['family_rates'].items():
            for fam, r in per.items():
                fly, bank = r['procedural'], r['bank']
                if 'error' in fly or 'error' in bank:
                    lines.append(f'{fam:<10}{size:>6}  n/a: '
                                 f"{fly.get('error') or bank['error']}")
                    continue
                lines.append(
                    f"{fam:<10}{size:>6}{fly['masks_per_s']:>10.0f}"
                    f"{bank['masks_per_s']:>10.0f}"
                    f"{bank['us_per_mask']:>10.1f}"
                    f"{'x'.join(map(str, bank['mask_shape'])):>10}"
                    f"{100 * bank['mean_removed']:>8.1f} ("
                    f"{100 * bank['min_removed']:.1f}-"
                    f"{100 * bank['max_removed']:.1f})")
        lines += ['', 'families in the pipeline (bank; objects on the fly), '
                  'mean us per sample:',
                  f"{'family':<10}{'size':>5}{'mask us':>9}{'total':>9}"
                  f"{'mask %':>8}"]
        for size, per in res['family_pipeline'].items():
            for fam, p in per.items():
                lines.append(f"{fam:<10}{size:>5}"
                             f"{p['step_us']['IrregularMask']:>9.1f}"
                             f"{p['total_us']:>9.0f}"
                             f"{p['mask_share_pct']:>8.2f}")
    return '\n'.join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    return report(run(args), format_report, args.json)


if __name__ == '__main__':
    main()
