"""Cost of an MSL training step against the plain classifier's.

``python tools/analysis/benchmark_train.py CONFIG [options]`` or
``python tools/analysis/benchmark_train.py --preset r50-csra --batch-size 8
--iters 20 --device cpu``.

What is built
    The config's ``model`` is taken as the MSL model (a plain
    ``ImageClassifier`` config becomes one by switching its type) and its
    twin, the same config as ``type='ImageClassifier'`` without the MSL-only
    keys. Three models share one set of weights (the MSL state dict is loaded
    strictly into the others, which also checks that the keys match):
    ``baseline`` (ImageClassifier), ``msl-two_pass`` and ``msl-concat``
    (MaskedSupervisedClassifier with that ``forward_mode``). Pretrained
    weights are never loaded (``init_cfg``/``pretrained`` removed, no
    ``init_weights()``), so nothing is downloaded; the weights are PyTorch's
    default initialisation, which does not change the cost of a step.
    Each model gets its own optimizer wrapper from the config's
    ``optim_wrapper`` (SGD if there is none; ``AmpOptimWrapper`` with
    ``--amp`` on CUDA, as ``tools/train.py --amp`` does).

The data
    A few synthetic batches, made before any timing and reused in turn:
    random uint8 images (3 x S x S), random multi-label targets (1-3 of the
    head's ``num_classes``) and one keep mask per image sampled from a small
    procedural :class:`mmmsl.masks.MaskBank`, packed as
    ``PackInputs(algorithm_keys=('msl_mask', ))`` packs them (``inputs``: a
    list of CHW uint8 tensors; ``data_samples``: DataSamples with
    ``gt_label``, the ``msl_mask`` field as an (S, S) uint8 array and
    ``img_shape``). A step is ``model.train_step(batch, optim_wrapper)``, so
    it includes the model's own ``data_preprocessor`` (cast, normalise,
    stack, one-hot and, on CUDA, the host-to-device copy) as in the runner's
    loop; the dataloader's work (decode, augment, mask sampling) is not in
    it (see ``benchmark_masks.py`` for that).

Timing
    ``--warmup`` steps of each model, then ``--iters`` rounds of one step of
    each model in turn (baseline, msl-two_pass, msl-concat, baseline, ...)
    in this one process, so a change of machine load hits the three alike.
    CUDA is synchronised before and after each timed step. Reported: the
    median step time, its 25th/75th percentiles, and images/s =
    batch size / median step (dataset images: an MSL step sees each image
    twice but consumes one). Inference is timed the same way (interleaved,
    ``model.val_step`` in eval mode under ``torch.no_grad``: preprocessor +
    ``predict``) for the baseline and the MSL model; its ratio should be
    1.00, since MSL's ``predict`` is ImageClassifier's.

    Two MSL / baseline ratios are given: ``ratio``, the ratio of the
    medians, and ``paired``, the median over rounds of the MSL step divided
    by the baseline step of the same round. On a quiet machine they agree;
    on a shared one (step times that jump between levels as other work
    comes and goes) the paired one is the robust estimate, because the two
    steps it compares ran back to back.

    Host memory: with ``--malloc reuse`` (default) the process first calls
    :func:`mmmsl.engine.reuse_freed_memory`, as ``ReuseFreedMemoryHook``
    (in every mmmsl config) does in training, so a step reuses the memory
    the previous one freed; ``--malloc default`` keeps glibc's settings,
    under which each CPU step page-faults its activations afresh, a cost
    that grows faster than the memory a step holds at once.

Memory
    Each variant's memory is measured in its own fresh child process (forked
    on CPU before this process runs any model, spawned on CUDA), which builds
    only that model, its optimizer and the batch, records the memory in use,
    then runs ``--mem-steps`` training steps and records the peak. So no
    variant's allocations or allocator caches are seen by another.

    * CPU: the kernel's resident-set high-water mark. After the model and
      batch are built the child writes ``5`` to ``/proc/self/clear_refs``,
      which resets ``VmHWM`` to the current RSS, reads ``VmRSS`` (the base),
      runs the steps and reads ``VmHWM`` (the peak). ``growth`` = peak - base
      is the step's working memory: gradients, optimizer state, activations
      kept for backward, temporaries, and whatever glibc's allocator keeps
      mapped. Where ``clear_refs`` cannot be written, ``VmHWM`` is not reset;
      since the child is fresh and building a model peaks far lower than
      training it, the figure is then still the training peak (the JSON
      says which was used).
    * CUDA: ``torch.cuda.memory_allocated()`` after building (base), then
      ``reset_peak_memory_stats()`` and ``max_memory_allocated()`` over the
      steps (peak); ``growth`` = peak - base.

    On CPU each variant is measured a second time with glibc told to map
    every block over 128 KiB on its own and to give freed memory back at
    once (``mallopt`` M_MMAP_THRESHOLD / M_TRIM_THRESHOLD = 128 KiB): the
    ``live`` growth, which follows the tensors alive at the peak instead of
    the heap glibc keeps mapped after freeing them.

    The memory ratio of the targets is that of ``growth`` (the stricter one:
    the weights, the interpreter and the libraries, the same for both, are
    left out); the absolute peaks are reported too.

``--json OUT`` writes every figure (and the raw step times) as JSON.
"""
import argparse
import copy
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import warnings
from contextlib import nullcontext

import numpy as np
import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

warnings.filterwarnings('ignore', message='Fail to import')  # mmcv-lite
import mmmsl  # noqa: F401, E402  (registers the MSL components)
from mmmsl.engine import reuse_freed_memory, to_channels_last  # noqa: E402
from mmmsl.engine.hooks.reuse_freed_memory_hook import (  # noqa: E402
    M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, mallopt)
from mmmsl.masks import MaskBank  # noqa: E402
from mmmsl.models import plain_classifier_cfg  # noqa: E402

MSL_TYPE = 'MaskedSupervisedClassifier'
TRAIN_VARIANTS = ('baseline', 'msl-two_pass', 'msl-concat')
INFER_VARIANTS = ('baseline', 'msl')


def _csra_preset(depth: int, img_size: int) -> dict:
    """ResNet-``depth`` + CSRA (1 head, lam 0.1) on 20 classes, as the
    paper's VOC model (mmpretrain's CSRA config with our MSL model type)."""
    channels = 512 if depth in (18, 34) else 2048
    return dict(
        default_scope='mmpretrain',
        model=dict(
            type=MSL_TYPE,
            backbone=dict(type='ResNet', depth=depth, num_stages=4,
                          out_indices=(3, ), style='pytorch'),
            neck=None,
            head=dict(type='CSRAClsHead', num_classes=20,
                      in_channels=channels, num_heads=1, lam=0.1,
                      loss=dict(type='CrossEntropyLoss', use_sigmoid=True,
                                loss_weight=1.0)),
            alpha=(0.3, 0.2, 0.5)),
        data_preprocessor=dict(num_classes=20, mean=[0, 0, 0],
                               std=[255, 255, 255], to_rgb=True,
                               to_onehot=True),
        train_pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='RandomResizedCrop', scale=img_size,
                 crop_ratio_range=(0.7, 1.0)),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='IrregularMask', ratio='high'),
            dict(type='PackInputs', algorithm_keys=('msl_mask', )),
        ],
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                           weight_decay=1e-4),
            paramwise_cfg=dict(custom_keys=dict(head=dict(lr_mult=10)))))


PRESETS = {
    # The acceptance run's model.
    'r50-csra': lambda: _csra_preset(50, 224),
    # The paper's VOC / COCO model at its resolution.
    'r101-csra': lambda: _csra_preset(101, 448),
    # A small one for smoke tests.
    'r18-csra': lambda: _csra_preset(18, 224),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time MSL training steps against the plain classifier',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Example: python tools/analysis/benchmark_train.py '
        '--preset r50-csra --batch-size 8 --iters 20 --device cpu')
    parser.add_argument('config', nargs='?',
                        help='config file (optional with --preset)')
    parser.add_argument('--preset', choices=sorted(PRESETS),
                        help='a built-in model instead of a config file')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--iters', type=int, default=20,
                        help='timed steps of each model')
    parser.add_argument('--infer-iters', type=int, default=None,
                        help='timed inference steps of each model '
                        '(default: --iters)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed steps of each model first')
    parser.add_argument('--img-size', type=int, default=None,
                        help='image side (default: the train pipeline\'s '
                        'crop/resize scale, else 224)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: AmpOptimWrapper (fp16 '
                        'autocast + dynamic loss scale) on CUDA, bf16 '
                        'torch.autocast on CPU')
    parser.add_argument('--channels-last', action='store_true',
                        help='model and batches in channels_last layout')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--malloc', choices=['reuse', 'default'],
                        default='reuse',
                        help="glibc malloc settings: 'reuse' keeps freed "
                        'memory for the next step, as the configs\' '
                        "ReuseFreedMemoryHook does (default); 'default' "
                        "leaves glibc's own")
    parser.add_argument('--mem-steps', type=int, default=3,
                        help='training steps per memory measurement')
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the memory measurement')
    parser.add_argument('--no-inference', action='store_true',
                        help='skip the inference timing')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', metavar='OUT',
                        help='write the figures to this JSON file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if (args.config is None) == (args.preset is None):
        parser.error('give either CONFIG or --preset')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda but CUDA is not available')
    if args.iters < 1 or args.batch_size < 1 or args.warmup < 0:
        parser.error('--iters and --batch-size must be >= 1, --warmup >= 0')
    return args


# ----------------------------------------------------------------- config --
def load_cfg(args) -> Config:
    if args.preset is not None:
        cfg = Config(PRESETS[args.preset]())
    else:
        cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def _plain(obj):
    """ConfigDicts (and lists of them) as plain, deep-copied dicts."""
    if isinstance(obj, (dict, ConfigDict)):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return copy.deepcopy(obj)


def model_cfgs(cfg: Config):
    """``(msl_cfg, baseline_cfg)`` as plain dicts, with no pretrained
    weights anywhere."""
    model = _plain(cfg.model)
    # As mmengine's Runner: a top-level data_preprocessor fills the model's.
    if cfg.get('data_preprocessor') is not None:
        model.setdefault('data_preprocessor', _plain(cfg.data_preprocessor))
    model.pop('pretrained', None)
    if isinstance(model.get('init_cfg'), dict) and \
            model['init_cfg'].get('type') == 'Pretrained':
        model['init_cfg'] = None
    if isinstance(model.get('backbone'), dict):
        model['backbone']['init_cfg'] = None
    msl = dict(model)
    if msl.get('type', '').split('.')[-1] != MSL_TYPE:
        msl['type'] = MSL_TYPE
    return msl, plain_classifier_cfg(msl)


def default_img_size(cfg: Config) -> int:
    """The side of the train pipeline's crop or resize, else 224."""
    pipeline = cfg.get('train_pipeline')
    if pipeline is None:
        try:
            pipeline = cfg.train_dataloader.dataset.pipeline
        except AttributeError:
            pipeline = None
    for step in pipeline or []:
        t = str(step.get('type', '')).split('.')[-1]
        if t in ('RandomResizedCrop', 'Resize', 'CenterCrop', 'RandomCrop',
                 'ResizeEdge', 'EfficientNetRandomCrop'):
            for key in ('scale', 'crop_size', 'size'):
                v = step.get(key)
                if isinstance(v, int):
                    return v
                if isinstance(v, (list, tuple)) and len(v) == 2 and \
                        v[0] == v[1] and isinstance(v[0], int):
                    return v[0]
    return 224


def num_classes_of(msl_cfg: dict) -> int:
    head = msl_cfg.get('head') or {}
    n = head.get('num_classes')
    if n is None:
        n = (msl_cfg.get('data_preprocessor') or {}).get('num_classes')
    if n is None:
        raise ValueError('cannot find num_classes in model.head')
    return int(n)


# ----------------------------------------------------------------- models --
def build_model(model_cfg: dict, args):
    from mmpretrain.registry import MODELS
    model = MODELS.build(copy.deepcopy(model_cfg))
    if args.device == 'cuda':
        model = model.cuda()
    if args.channels_last:
        to_channels_last(model)  # what ChannelsLastHook does
    model.train()
    return model


def build_wrapper(model, cfg: Config, args):
    wrapper_cfg = _plain(cfg.get('optim_wrapper') or dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    if args.amp and args.device == 'cuda':
        wrapper_cfg['type'] = 'AmpOptimWrapper'
        wrapper_cfg.setdefault('loss_scale', 'dynamic')
    return build_optim_wrapper(model, wrapper_cfg)


def build_variant(name: str, cfg: Config, args):
    msl_cfg, base_cfg = model_cfgs(cfg)
    if name == 'baseline':
        model_cfg = base_cfg
    else:
        model_cfg = dict(msl_cfg, forward_mode=name.split('-', 1)[1])
    model = build_model(model_cfg, args)
    return model, build_wrapper(model, cfg, args)


def autocast(args):
    """bf16 autocast for ``--amp`` on CPU (on CUDA AmpOptimWrapper does
    it inside train_step; inference needs it explicitly)."""
    if not args.amp:
        return nullcontext()
    if args.device == 'cuda':
        return torch.autocast('cuda', dtype=torch.float16)
    return torch.autocast('cpu', dtype=torch.bfloat16)


def train_step(model, wrapper, batch, args):
    # AmpOptimWrapper autocasts within train_step on CUDA.
    ctx = autocast(args) if args.device == 'cpu' else nullcontext()
    with ctx:
        model.train_step(batch, wrapper)


def infer_step(model, batch, args):
    with torch.no_grad(), autocast(args):
        model.val_step(batch)


# ------------------------------------------------------------------- data --
def make_batches(num: int, batch_size: int, size: int, num_classes: int,
                 seed: int):
    """``num`` synthetic batches as ``PackInputs`` + ``pseudo_collate``
    produce them, with keep masks from a small procedural bank."""
    from mmpretrain.structures import DataSample
    rng = np.random.default_rng(seed)
    bank = MaskBank.procedural(num=32, size=128, ratio='high', seed=seed)
    batches = []
    for b in range(num):
        inputs, samples = [], []
        for i in range(batch_size):
            img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            inputs.append(torch.from_numpy(
                np.ascontiguousarray(img.transpose(2, 0, 1))))
            labels = rng.choice(num_classes, int(rng.integers(1, 4)),
                                replace=False)
            sample = DataSample().set_gt_label(sorted(labels.tolist()))
            sample.set_metainfo(dict(img_shape=(size, size),
                                     ori_shape=(size, size),
                                     sample_idx=b * batch_size + i))
            keep = 1 - bank.sample(size, size, rng)
            sample.set_field(keep, 'msl_mask')
            samples.append(sample)
        batches.append(dict(inputs=inputs, data_samples=samples))
    return batches


# ------------------------------------------------------------------ timing --
def _sync(args):
    if args.device == 'cuda':
        torch.cuda.synchronize()


def interleaved(fns: dict, iters: int, warmup: int, args) -> dict:
    """Run ``warmup`` then ``iters`` rounds of one call of each function in
    turn; return each one's step times in seconds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    _sync(args)
    times = {name: [] for name in fns}
    for _ in range(iters):
        for name, fn in fns.items():
            _sync(args)
            t0 = time.perf_counter()
            fn()
            _sync(args)
            times[name].append(time.perf_counter() - t0)
    return times


def summarise(times, batch_size: int) -> dict:
    ms = [t * 1e3 for t in times]
    q = np.percentile(ms, [25, 75]) if len(ms) > 1 else (ms[0], ms[0])
    median = statistics.median(ms)
    return dict(median_ms=median, p25_ms=float(q[0]), p75_ms=float(q[1]),
                mean_ms=statistics.fmean(ms), min_ms=min(ms),
                imgs_per_s=batch_size / (median / 1e3), times_ms=ms)


# ------------------------------------------------------------------ memory --
def _proc_status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_hwm() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _prompt_free() -> bool:
    """Make glibc map every block over 128 KiB on its own and give freed
    memory back at once, so RSS follows the live allocations."""
    return (mallopt(M_MMAP_THRESHOLD, 128 * 1024)
            and mallopt(M_TRIM_THRESHOLD, 128 * 1024))


def _set_malloc(args) -> None:
    """``--malloc reuse``: what the configs' ReuseFreedMemoryHook does."""
    if args.malloc == 'reuse' and not reuse_freed_memory():
        raise RuntimeError('--malloc reuse needs glibc (mallopt); use '
                           '--malloc default')


def measure_memory(name: str, args, prompt_free: bool = False) -> dict:
    """Build one variant and measure its training memory (in a child)."""
    if prompt_free:
        if not _prompt_free():
            raise RuntimeError('mallopt is not available (not glibc)')
    else:
        _set_malloc(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    init_default_scope('mmpretrain')
    cfg = load_cfg(args)
    size = args.img_size or default_img_size(cfg)
    model, wrapper = build_variant(name, cfg, args)
    batch = make_batches(1, args.batch_size, size,
                         num_classes_of(model_cfgs(cfg)[0]), args.seed)[0]
    if args.device == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(args.mem_steps):
            train_step(model, wrapper, batch, args)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        method = 'torch.cuda.max_memory_allocated'
    else:
        reset = _reset_hwm()
        base = _proc_status_kib('VmRSS') * 1024
        for _ in range(args.mem_steps):
            train_step(model, wrapper, batch, args)
        peak = _proc_status_kib('VmHWM') * 1024
        method = ('VmHWM after clear_refs=5' if reset else
                  'VmHWM (no reset: clear_refs not writable)')
    mib = 2.0**20
    return dict(base_mib=base / mib, peak_mib=peak / mib,
                growth_mib=(peak - base) / mib, method=method)


def _memory_child(name, args, prompt_free, conn):
    try:
        conn.send(measure_memory(name, args, prompt_free))
    except BaseException as e:  # report, never hang the parent
        conn.send(dict(error=f'{type(e).__name__}: {e}'))
    finally:
        conn.close()


def _memory_in_child(ctx, name, args, prompt_free) -> dict:
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_memory_child,
                       args=(name, args, prompt_free, send))
    proc.start()
    send.close()
    try:
        out = recv.recv()
    except EOFError:
        out = dict(error='child died')
    proc.join()
    if 'error' in out:
        raise RuntimeError(f'memory measurement of {name} failed: '
                           f"{out['error']}")
    return out


def memory_all(args) -> dict:
    """Each variant in a fresh child process, one after the other; on CPU
    once more with prompt-free malloc (the ``live`` figures)."""
    ctx = mp.get_context('fork' if args.device == 'cpu' else 'spawn')
    out = {name: _memory_in_child(ctx, name, args, False)
           for name in TRAIN_VARIANTS}
    if args.device == 'cpu':
        for name in TRAIN_VARIANTS:
            out[name]['live'] = _memory_in_child(ctx, name, args, True)
    return out


# --------------------------------------------------------------------- env --
def environment(args) -> dict:
    cpu = platform.processor() or ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    env = dict(torch=torch.__version__, python=platform.python_version(),
               cpu=cpu, cpu_count=os.cpu_count(),
               torch_threads=torch.get_num_threads(), device=args.device,
               loadavg_start=list(os.getloadavg()))
    if args.device == 'cuda':
        env['gpu'] = torch.cuda.get_device_name()
    return env


def _ratio(a, b):
    return a / b if b else float('nan')


def paired_ratio(times, base_times) -> float:
    """Median over rounds of (this step / the baseline step of the same
    round): the two ran back to back, so a load change between rounds
    cancels, which the ratio of the medians does not do on a shared
    machine whose step times are bimodal."""
    return statistics.median(a / b for a, b in zip(times, base_times))


# -------------------------------------------------------------------- main --
def run(args) -> dict:
    """Everything the tool measures, as a dict (what ``--json`` writes)."""
    # The optimizer builder logs every paramwise option of every model.
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    _set_malloc(args)
    init_default_scope('mmpretrain')
    cfg = load_cfg(args)
    msl_cfg, _ = model_cfgs(cfg)
    size = args.img_size or default_img_size(cfg)
    num_classes = num_classes_of(msl_cfg)
    env = environment(args)

    # Memory first: forked children must start before this process runs
    # any model (no threads or CUDA context to inherit).
    memory = None if args.no_memory else memory_all(args)

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    models, wrappers = {}, {}
    for name in TRAIN_VARIANTS:
        models[name], wrappers[name] = build_variant(name, cfg, args)
    # One set of weights; strict loading also checks the keys match.
    state = models['msl-two_pass'].state_dict()
    for name in ('baseline', 'msl-concat'):
        models[name].load_state_dict(state, strict=True)
    batches = make_batches(4, args.batch_size, size, num_classes, args.seed)

    def stepper(name):
        counter = iter(range(10**9))

        def fn():
            train_step(models[name], wrappers[name],
                       batches[next(counter) % len(batches)], args)
        return fn

    train_times = interleaved({n: stepper(n) for n in TRAIN_VARIANTS},
                              args.iters, args.warmup, args)
    train = {n: summarise(t, args.batch_size) for n, t in train_times.items()}
    if memory is not None:
        for name in TRAIN_VARIANTS:
            train[name]['memory'] = memory[name]

    inference = None
    if not args.no_inference:
        infer_models = dict(baseline=models['baseline'],
                            msl=models['msl-two_pass'])
        for m in infer_models.values():
            m.eval()

        def inferer(model):
            counter = iter(range(10**9))

            def fn():
                infer_step(model, batches[next(counter) % len(batches)],
                           args)
            return fn

        infer_times = interleaved(
            {n: inferer(m) for n, m in infer_models.items()},
            args.infer_iters or args.iters, args.warmup, args)
        inference = {n: summarise(t, args.batch_size)
                     for n, t in infer_times.items()}

    base = train['baseline']['median_ms']
    ratios = {}
    for mode in ('two_pass', 'concat'):
        v = train[f'msl-{mode}']
        ratios[f'train_{mode}'] = _ratio(v['median_ms'], base)
        ratios[f'train_{mode}_paired'] = paired_ratio(
            v['times_ms'], train['baseline']['times_ms'])
        if memory is not None:
            ratios[f'mem_growth_{mode}'] = _ratio(
                v['memory']['growth_mib'],
                train['baseline']['memory']['growth_mib'])
            ratios[f'mem_peak_{mode}'] = _ratio(
                v['memory']['peak_mib'],
                train['baseline']['memory']['peak_mib'])
            if 'live' in v['memory']:
                ratios[f'mem_live_growth_{mode}'] = _ratio(
                    v['memory']['live']['growth_mib'],
                    train['baseline']['memory']['live']['growth_mib'])
    if inference is not None:
        ratios['inference'] = _ratio(inference['msl']['median_ms'],
                                     inference['baseline']['median_ms'])
        ratios['inference_paired'] = paired_ratio(
            inference['msl']['times_ms'], inference['baseline']['times_ms'])
    env['loadavg_end'] = list(os.getloadavg())
    return dict(
        env=env,
        settings=dict(config=args.config, preset=args.preset,
                      batch_size=args.batch_size, img_size=size,
                      iters=args.iters, warmup=args.warmup,
                      infer_iters=None if args.no_inference else
                      args.infer_iters or args.iters,
                      mem_steps=None if args.no_memory else args.mem_steps,
                      amp=args.amp, channels_last=args.channels_last,
                      malloc=args.malloc, num_classes=num_classes,
                      cfg_options=None if not args.cfg_options else
                      {k: repr(v) for k, v in args.cfg_options.items()}),
        train=train, inference=inference, ratios=ratios)


def format_report(res: dict) -> str:
    s, env = res['settings'], res['env']
    lines = [
        f"model: {s['preset'] or s['config']}  batch {s['batch_size']}  "
        f"{s['img_size']} px  device {env['device']}"
        f"{' (' + env['gpu'] + ')' if 'gpu' in env else ''}  "
        f"amp {s['amp']}  channels_last {s['channels_last']}  "
        f"malloc {s['malloc']}",
        f"torch {env['torch']}  cpu: {env['cpu']} x{env['cpu_count']}  "
        f"torch threads {env['torch_threads']}  load avg "
        f"{env['loadavg_start'][0]:.2f} -> {env['loadavg_end'][0]:.2f}",
        f"{s['iters']} timed steps after {s['warmup']} warm-up, "
        'interleaved',
    ]
    # The end figure includes this process's own threads.
    load = max(env['loadavg_start'][0],
               env['loadavg_end'][0] - env['torch_threads'])
    if load > 0.5 * (env['cpu_count'] or 1):
        lines.append(f'NOTE: the machine was busy (load average {load:.2f} '
                     f"on {env['cpu_count']} CPUs): timings are unreliable")
    lines.append('')
    head = (f"{'train step':<14}{'median ms':>11}{'p25-p75 ms':>17}"
            f"{'img/s':>9}{'ratio':>8}{'paired':>8}")
    mem = res['train']['baseline'].get('memory')
    if mem:
        head += f"{'peak MiB':>10}{'growth MiB':>12}{'mem ratio':>11}"
    lines.append(head)
    base = res['train']['baseline']
    for name in TRAIN_VARIANTS:
        v = res['train'][name]
        row = (f"{name:<14}{v['median_ms']:>11.1f}"
               f"{v['p25_ms']:>8.1f}-{v['p75_ms']:<8.1f}"
               f"{v['imgs_per_s']:>9.1f}"
               f"{v['median_ms'] / base['median_ms']:>8.3f}"
               f"{paired_ratio(v['times_ms'], base['times_ms']):>8.3f}")
        if mem:
            m = v['memory']
            row += (f"{m['peak_mib']:>10.0f}{m['growth_mib']:>12.0f}"
                    f"{m['growth_mib'] / base['memory']['growth_mib']:>11.3f}")
        lines.append(row)
    if mem:
        lines.append(f"memory: {mem['method']}, {s['mem_steps']} steps per "
                     'variant in a fresh process; ratio = growth / '
                     "baseline's growth")
        if 'live' in mem:
            lines.append('live (prompt-free malloc) growth MiB: ' + ', '.join(
                f"{n} {res['train'][n]['memory']['live']['growth_mib']:.0f}"
                for n in TRAIN_VARIANTS))
    if res['inference']:
        lines += ['', f"{'inference':<14}{'median ms':>11}{'p25-p75 ms':>17}"
                  f"{'img/s':>9}{'ratio':>8}{'paired':>8}"]
        ib = res['inference']['baseline']['median_ms']
        ibt = res['inference']['baseline']['times_ms']
        for name in INFER_VARIANTS:
            v = res['inference'][name]
            lines.append(f"{name:<14}{v['median_ms']:>11.1f}"
                         f"{v['p25_ms']:>8.1f}-{v['p75_ms']:<8.1f}"
                         f"{v['imgs_per_s']:>9.1f}"
                         f"{v['median_ms'] / ib:>8.3f}"
                         f"{paired_ratio(v['times_ms'], ibt):>8.3f}")
    lines += ['', 'ratio = median / baseline median; paired = median over '
              'rounds of step / same round\'s baseline step',
              'MSL / baseline: ' + ', '.join(
        f'{k} {v:.3f}' for k, v in res['ratios'].items())]
    return '\n'.join(lines)


def _finite(obj):
    """NaN/inf as None so the JSON is standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def main(argv=None) -> dict:
    args = parse_args(argv)
    res = run(args)
    print(format_report(res))
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(folder, exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(_finite(res), f, indent=1)
    sys.stdout.flush()
    return res


if __name__ == '__main__':
    main()
