"""Cost of an MSL training step against the plain classifier's.

``python tools/analysis/benchmark_train.py CONFIG [options]`` or
``python tools/analysis/benchmark_train.py --preset r50-csra --batch-size 8
--iters 20 --device cpu``; ``--json OUT`` writes every figure.

What is built, how it is timed and measured and what each figure means:
"How benchmark_train measures" in ``docs/benchmarks.md``.
"""
import argparse
import copy
import logging
import multiprocessing as mp
import os
import os.path as osp
import warnings
from contextlib import nullcontext
from functools import partial

import numpy as np
import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

warnings.filterwarnings('ignore', message='Fail to import')  # mmcv-lite
import mmmsl  # noqa: F401, E402  (registers the MSL components)
from mmmsl.engine import reuse_freed_memory, to_channels_last  # noqa: E402
from mmmsl.masks import MaskBank  # noqa: E402
from mmmsl.models import plain_classifier_cfg  # noqa: E402
from mmmsl.utils.timing import (busy_note, compare, environment,  # noqa
                                in_child, load_span, prompt_free_malloc,
                                ratio, report, step_memory, step_table,
                                time_steps)

MSL_TYPE = 'MaskedSupervisedClassifier'
TRAIN_VARIANTS = ('baseline', 'msl-two_pass', 'msl-concat')
INFER_VARIANTS = ('baseline', 'msl')
# Presets: the paper's VOC config (ResNet-101 + CSRA, 1 head, 20 classes) at
# another depth and image side. r50: the acceptance run's; r18: smoke tests.
PRESET_CONFIG = osp.join(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))), 'configs', 'msl', 'resnet101_csra_voc.py')
PRESETS = {
    'r101-csra': (448, {}),
    'r50-csra': (224, {'model.backbone.depth': 50}),
    'r18-csra': (224, {'model.backbone.depth': 18,
                       'model.head.in_channels': 512}),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Time MSL training steps against the plain classifier',
        epilog='Example: python tools/analysis/benchmark_train.py '
        '--preset r50-csra --batch-size 8 --iters 20 --device cpu')
    add = p.add_argument
    add('config', nargs='?', help='config file (optional with --preset)')
    add('--preset', choices=sorted(PRESETS),
        help='the paper VOC config at another depth and side')
    add('--batch-size', type=int, default=8)
    add('--iters', type=int, default=20, help='timed steps of each model')
    add('--infer-iters', type=int, help='timed inference steps of each '
        'model (default: --iters)')
    add('--warmup', type=int, default=3, help='untimed steps of each first')
    add('--img-size', type=int, help="image side (default: the train "
        "pipeline's crop/resize scale, else 224)")
    add('--device', default='cpu', choices=['cpu', 'cuda'])
    add('--amp', action='store_true', help='AmpOptimWrapper (fp16) on '
        'CUDA, bf16 torch.autocast on CPU')
    add('--channels-last', action='store_true',
        help='model and batches in channels_last layout')
    add('--threads', type=int, help='torch CPU threads')
    add('--malloc', choices=['reuse', 'default'], default='reuse',
        help="glibc malloc: 'reuse' keeps freed memory for the next step, "
        "as ReuseFreedMemoryHook does (default); 'default': glibc's own")
    add('--mem-steps', type=int, default=3,
        help='training steps per memory measurement')
    add('--no-memory', action='store_true', help='skip the memory figures')
    add('--no-inference', action='store_true', help='skip the inference')
    add('--seed', type=int, default=0)
    add('--json', metavar='OUT', help='write the figures to this JSON file')
    add('--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value')
    args = p.parse_args(argv)
    if (args.config is None) == (args.preset is None):
        p.error('give either CONFIG or --preset')
    if args.device == 'cuda' and not torch.cuda.is_available():
        p.error('--device cuda but CUDA is not available')
    if args.iters < 1 or args.batch_size < 1 or args.warmup < 0:
        p.error('--iters and --batch-size must be >= 1, --warmup >= 0')
    return args


def _plain(obj) -> dict:
    return copy.deepcopy(ConfigDict(obj).to_dict())


def model_cfgs(cfg: Config):
    """``(msl_cfg, baseline_cfg)`` as plain dicts, with no pretrained
    weights anywhere."""
    model = _plain(cfg.model)
    # As mmengine's Runner: a top-level data_preprocessor fills the model's.
    if cfg.get('data_preprocessor') is not None:
        model.setdefault('data_preprocessor', _plain(cfg.data_preprocessor))
    model.pop('pretrained', None)
    if (model.get('init_cfg') or {}).get('type') == 'Pretrained':
        model['init_cfg'] = None
    if isinstance(model.get('backbone'), dict):
        model['backbone']['init_cfg'] = None
    model['type'] = MSL_TYPE
    return model, plain_classifier_cfg(model)


def default_img_size(cfg: Config) -> int:
    """The side of the train pipeline's crop or resize, else 224."""
    loader = cfg.get('train_dataloader') or {}
    for step in cfg.get('train_pipeline') or (
            loader.get('dataset') or {}).get('pipeline') or []:
        for v in (step.get(k) for k in ('scale', 'crop_size', 'size')):
            if isinstance(v, (list, tuple)) and len(v) == 2 and v[0] == v[1]:
                v = v[0]
            if isinstance(v, int):
                return v
    return 224


def num_classes_of(msl_cfg: dict) -> int:
    n = (msl_cfg.get('head') or {}).get('num_classes') or (
        msl_cfg.get('data_preprocessor') or {}).get('num_classes')
    if n is None:
        raise ValueError('cannot find num_classes in model.head')
    return int(n)


def setup(args, prompt_free: bool = False):
    """Malloc, threads, scope and config: ``(cfg, img_size, classes)``.
    ``--malloc reuse`` does what ReuseFreedMemoryHook does, ``prompt_free``
    what :func:`prompt_free_malloc` does."""
    if not (prompt_free_malloc() if prompt_free else
            args.malloc == 'default' or reuse_freed_memory()):
        raise RuntimeError('mallopt is not available (not glibc): use '
                           '--malloc default')
    if args.threads:
        torch.set_num_threads(args.threads)
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(args.config or PRESET_CONFIG)
    size, preset = PRESETS.get(args.preset, (None, {}))
    cfg.merge_from_dict(dict(preset, **(args.cfg_options or {})))
    return (cfg, args.img_size or size or default_img_size(cfg),
            num_classes_of(model_cfgs(cfg)[0]))


def build_variant(name: str, cfg: Config, args):
    """A ``TRAIN_VARIANTS`` model (no ``init_weights()``: nothing is
    downloaded) and its optimizer wrapper (SGD if the config has none)."""
    from mmpretrain.registry import MODELS
    msl_cfg, base_cfg = model_cfgs(cfg)
    model = MODELS.build(base_cfg if name == 'baseline' else dict(
        msl_cfg, forward_mode=name.split('-', 1)[1]))
    model = model.cuda() if args.device == 'cuda' else model
    if args.channels_last:
        to_channels_last(model)  # what ChannelsLastHook does
    wrapper_cfg = _plain(cfg.get('optim_wrapper') or dict(
        optimizer=dict(type='SGD', lr=0.01, momentum=0.9)))
    if args.amp and args.device == 'cuda':  # as tools/train.py --amp
        wrapper_cfg.update(type='AmpOptimWrapper', loss_scale='dynamic')
    return model.train(), build_optim_wrapper(model, wrapper_cfg)


def autocast(args, train: bool):
    """``--amp``: bf16 autocast on CPU, fp16 for inference on CUDA (where
    AmpOptimWrapper autocasts within ``train_step``)."""
    if not args.amp or train and args.device == 'cuda':
        return nullcontext()
    return torch.autocast(args.device, dtype=torch.float16 if
                          args.device == 'cuda' else torch.bfloat16)


def train_step(model, wrapper, batch, args):
    with autocast(args, train=True):
        model.train_step(batch, wrapper)


def infer_step(model, batch, args):
    with torch.no_grad(), autocast(args, train=False):
        model.val_step(batch)


def make_batches(num: int, batch_size: int, size: int, num_classes: int,
                 seed: int):
    """``num`` synthetic batches as ``PackInputs`` + ``pseudo_collate``
    produce them, with keep masks from a small procedural bank."""
    from mmpretrain.structures import DataSample
    rng = np.random.default_rng(seed)
    bank = MaskBank.procedural(num=32, size=128, ratio='high', seed=seed)
    batches = []
    for b in range(num):
        imgs = rng.integers(0, 256, (batch_size, 3, size, size), np.uint8)
        samples = []
        for i in range(batch_size):
            labels = rng.choice(num_classes, int(rng.integers(1, 4)), False)
            sample = DataSample().set_gt_label(sorted(labels.tolist()))
            sample.set_metainfo(dict(img_shape=(size, size),
                                     ori_shape=(size, size),
                                     sample_idx=b * batch_size + i))
            sample.set_field(1 - bank.sample(size, size, rng), 'msl_mask')
            samples.append(sample)
        batches.append(dict(inputs=list(torch.from_numpy(imgs)),
                            data_samples=samples))
    return batches


def measure_memory(name: str, args, prompt_free: bool = False) -> dict:
    """Build one variant and measure its training memory (in a child)."""
    cfg, size, num_classes = setup(args, prompt_free)
    model, wrapper = build_variant(name, cfg, args)
    batch = make_batches(1, args.batch_size, size, num_classes, args.seed)[0]
    return step_memory(lambda: train_step(model, wrapper, batch, args),
                       args.mem_steps, args.device)


def memory_all(args) -> dict:
    """Each variant in a fresh child process, one after the other; on CPU
    once more with prompt-free malloc (the ``live`` figures)."""
    ctx = mp.get_context('fork' if args.device == 'cpu' else 'spawn')
    out = {}
    for prompt_free in (False, True) if args.device == 'cpu' else (False, ):
        for name in TRAIN_VARIANTS:
            res = in_child(ctx, f'memory measurement of {name}',
                           measure_memory, name, args, prompt_free)
            if prompt_free:
                out[name]['live'] = res
            else:
                out[name] = res
    return out


def run(args) -> dict:
    """Everything the tool measures, as a dict (what ``--json`` writes)."""
    # The optimizer builder logs every paramwise option of every model.
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    cfg, size, num_classes = setup(args)
    env = environment(device=args.device)
    if args.device == 'cuda':
        env['gpu'] = torch.cuda.get_device_name()
    # Memory first: forked children must start before this process runs
    # any model (no threads or CUDA context to inherit).
    memory = None if args.no_memory else memory_all(args)

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    models, wrappers = {}, {}
    for name in TRAIN_VARIANTS:
        models[name], wrappers[name] = build_variant(name, cfg, args)
    state = models['msl-two_pass'].state_dict()  # one set of weights;
    for name in ('baseline', 'msl-concat'):  # strict: the keys match
        models[name].load_state_dict(state, strict=True)
    batches = make_batches(4, args.batch_size, size, num_classes, args.seed)
    timed = partial(time_steps, inputs=batches, warmup=args.warmup,
                    batch_size=args.batch_size, sync=torch.cuda.synchronize
                    if args.device == 'cuda' else None)
    train = timed({n: partial(train_step, models[n], wrappers[n], args=args)
                   for n in TRAIN_VARIANTS}, iters=args.iters)
    ratios, inference = {}, None
    for name in TRAIN_VARIANTS[1:]:
        mode = name.split('-', 1)[1]
        ratios[f'train_{mode}'], ratios[f'train_{mode}_paired'] = compare(
            train[name], train['baseline'])
    for name in TRAIN_VARIANTS if memory else ():
        train[name]['memory'] = memory[name]
        if name != 'baseline':
            m, b, mode = memory[name], memory['baseline'], name[4:]
            for key in ('growth', 'peak'):
                ratios[f'mem_{key}_{mode}'] = ratio(m[f'{key}_mib'],
                                                    b[f'{key}_mib'])
            if 'live' in m:
                ratios[f'mem_live_growth_{mode}'] = ratio(
                    m['live']['growth_mib'], b['live']['growth_mib'])
    if not args.no_inference:
        for m in (models['baseline'], models['msl-two_pass']):
            m.eval()
        inference = timed({n: partial(infer_step, models[n], args=args)
                           for n in ('baseline', 'msl-two_pass')},
                          iters=args.infer_iters or args.iters)
        inference['msl'] = inference.pop('msl-two_pass')
        ratios['inference'], ratios['inference_paired'] = compare(
            inference['msl'], inference['baseline'])
    env['loadavg_end'] = list(os.getloadavg())
    settings = dict(
        config=args.config, preset=args.preset, batch_size=args.batch_size,
        img_size=size, iters=args.iters, warmup=args.warmup,
        infer_iters=None if args.no_inference else
        args.infer_iters or args.iters,
        mem_steps=None if args.no_memory else args.mem_steps, amp=args.amp,
        channels_last=args.channels_last, malloc=args.malloc,
        num_classes=num_classes, cfg_options=args.cfg_options and {
            k: repr(v) for k, v in args.cfg_options.items()})
    return dict(env=env, settings=settings, train=train,
                inference=inference, ratios=ratios)


def format_report(res: dict) -> str:
    s, env, train = res['settings'], res['env'], res['train']
    gpu = f" ({env['gpu']})" if 'gpu' in env else ''
    lines = [
        f"model: {s['preset'] or s['config']}  batch {s['batch_size']}  "
        f"{s['img_size']} px  device {env['device']}{gpu}  amp {s['amp']}  "
        f"channels_last {s['channels_last']}  malloc {s['malloc']}",
        f"torch {env['torch']}  cpu: {env['cpu']} x{env['cpu_count']}  "
        f"torch threads {env['torch_threads']}  {load_span(env)}",
        f"{s['iters']} timed steps after {s['warmup']} warm-up, interleaved",
        # The end figure includes this process's own threads.
        *busy_note(env, 0.5 * (env['cpu_count'] or 1),
                   'timings are unreliable', env['torch_threads']), '']
    mem = train['baseline'].get('memory')
    lines += step_table('train step', train, TRAIN_VARIANTS, extra=(
        f"{'peak MiB':>10}{'growth MiB':>12}{'mem ratio':>11}",
        lambda v, b: f"{v['memory']['peak_mib']:>10.0f}"
        f"{v['memory']['growth_mib']:>12.0f}"
        f"{v['memory']['growth_mib'] / b['memory']['growth_mib']:>11.3f}"
    ) if mem else None)
    if mem:
        lines.append(f"memory: {mem['method']}, {s['mem_steps']} steps per "
                     "variant in a fresh process; ratio = growth / "
                     "baseline's growth")
    if mem and 'live' in mem:
        lines.append('live (prompt-free malloc) growth MiB: ' + ', '.join(
            f"{n} {train[n]['memory']['live']['growth_mib']:.0f}"
            for n in TRAIN_VARIANTS))
    if res['inference']:
        lines += [''] + step_table('inference', res['inference'],
                                   INFER_VARIANTS)
    return '\n'.join(lines + [
        '', 'ratio = median / baseline median; paired = median over rounds '
        "of step / same round's baseline step", 'MSL / baseline: ' + ', '.join(
            f'{k} {v:.3f}' for k, v in res['ratios'].items())])


def main(argv=None) -> dict:
    args = parse_args(argv)
    return report(run(args), format_report, args.json)


if __name__ == '__main__':
    main()
