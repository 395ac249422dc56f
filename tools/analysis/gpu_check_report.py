"""The three parts of ``tools/analysis/gpu_check.sh`` and its report.

``python tools/analysis/gpu_check_report.py --out DIR [--dry-run]``, run by
``gpu_check.sh`` (which installs the wheels first). It first checks that
the packages import (exit status 2 if not) and that there is a CUDA device
(3 if not, unless ``--dry-run``). Parts, each in its own process with a
time limit, each failing on its own:

* ``benchmark``: ``benchmark_train.py --preset r101-csra`` (448 px) on CUDA
  with ``--amp --channels-last`` at batch 6 and 32: baseline, MSL two_pass
  and concat (step time, img/s, peak ``max_memory_allocated``).
* ``train``: 30 iterations (1 epoch of 180 images at batch 6) of
  ``tools/train.py configs/msl/resnet101_csra_voc.py --amp`` on a generated
  VOC2007 folder; it/s from the log's ``time`` column.
* ``host_sync``: MSL's loss (ResNet-18 + CSRA, both forward modes, masks
  from the pipeline and drawn in the model) under
  ``torch.cuda.set_sync_debug_mode('error')``: fails on any host sync.

``--dry-run``: the same on CPU at toy sizes (ResNet-18 preset, 64 px,
batch 2, 1 step, no AMP), the host-sync part with the Tensor-method spy of
``tests/test_models.py`` instead, every process with one torch thread
(more only oversubscribe shared cores at these sizes). Writes
``OUT/gpu_check.json`` and ``OUT/gpu_check.md``; exit status 1 if any part
failed.
"""
import argparse
import importlib
import json
import math
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')
VARIANTS = ('baseline', 'msl-two_pass', 'msl-concat')
# VOC class names (VOCMultiLabel refuses unknown ones) and their colours.
SHAPES = {'cat': (0, 0, 255), 'dog': (255, 0, 0), 'car': (0, 255, 0),
          'person': (255, 255, 0), 'bird': (0, 255, 255)}
#: What the check needs to import (gpu_check.sh installs it).
PACKAGES = ('torch', 'torchvision', 'numpy', 'cv2', 'mmengine', 'mmcv',
            'mmpretrain', 'mmmsl')


def settings(dry: bool) -> dict:
    if dry:
        return dict(
            device='cpu',
            bench=dict(preset='r18-csra', img_size=64, batch_sizes=[2],
                       iters=1, warmup=0, infer_iters=0, amp=False,
                       channels_last=False, mem_steps=1, timeout=240),
            # ResNet-18 in the ResNet-101 config: only the plumbing
            train=dict(images=4, size=64, batch_size=2, crop=64, amp=False,
                       depth=18, timeout=240),
            host_sync=dict(size=32, batch_size=2, timeout=120))
    return dict(
        device='cuda',
        bench=dict(preset='r101-csra', img_size=448, batch_sizes=[6, 32],
                   iters=30, warmup=5, infer_iters=10, amp=True,
                   channels_last=True, mem_steps=3, timeout=150),
        train=dict(images=180, size=480, batch_size=6, crop=448, amp=True,
                   timeout=150),
        host_sync=dict(size=64, batch_size=4, timeout=90))


def run(cmd, log, timeout):
    """Run ``cmd`` with its output in ``log``: ``(rc, seconds)``; rc 124 on
    a timeout."""
    t0 = time.perf_counter()
    with open(log, 'w') as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT,
                                cwd=ROOT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return rc, time.perf_counter() - t0


def tail(path, n=15):
    try:
        with open(path) as f:
            return ''.join(f.readlines()[-n:])
    except OSError:
        return ''


# -------------------------------------------------------------- benchmark --
def benchmark(s, out):
    b, runs, ok = s['bench'], [], True
    for bs in b['batch_sizes']:
        js = osp.join(out, f'benchmark_b{bs}.json')
        log = osp.join(out, f'benchmark_b{bs}.log')
        cmd = [sys.executable, osp.join(TOOLS, 'analysis',
                                        'benchmark_train.py'),
               '--preset', b['preset'], '--img-size', str(b['img_size']),
               '--batch-size', str(bs), '--iters', str(b['iters']),
               '--warmup', str(b['warmup']),
               *(['--infer-iters', str(b['infer_iters'])]
                 if b['infer_iters'] else ['--no-inference']),
               '--mem-steps', str(b['mem_steps']),
               '--device', s['device'], '--json', js]
        cmd += ['--amp'] * b['amp'] + ['--channels-last'] * b['channels_last']
        if s['device'] == 'cpu':
            cmd += ['--threads', '1']
        rc, sec = run(cmd, log, b['timeout'])
        entry = dict(batch_size=bs, rc=rc, seconds=round(sec, 1), log=log,
                     json=js, rows=[])
        if rc == 0 and osp.exists(js):
            with open(js) as f:
                res = json.load(f)
            entry['gpu'] = res['env'].get('gpu')
            entry['rows'] = bench_rows(res)
            entry['ratios'] = res['ratios']
        else:
            ok = False
            entry['error'] = tail(log)
        runs.append(entry)
    return dict(ok=ok, runs=runs)


def bench_rows(res):
    s, train, ratios = res['settings'], res['train'], res['ratios']
    rows = []
    for name in VARIANTS:
        v, mode = train[name], name.split('-', 1)[-1]
        mem = v.get('memory') or {}
        base_mem = train['baseline'].get('memory') or {}
        rows.append(dict(
            config=s['preset'] or s['config'], img_size=s['img_size'],
            batch_size=s['batch_size'], amp=s['amp'],
            channels_last=s['channels_last'], mode=mode,
            median_ms=v['median_ms'], imgs_per_s=v['imgs_per_s'],
            step_ratio=1.0 if name == 'baseline' else
            ratios[f'train_{mode}'],
            step_ratio_paired=1.0 if name == 'baseline' else
            ratios[f'train_{mode}_paired'],
            peak_mib=mem.get('peak_mib'),
            peak_ratio=None if not mem else
            mem['peak_mib'] / base_mem['peak_mib']))
    return rows


# ------------------------------------------------------------------ train --
def make_voc(root, num, size, seed=0):
    """A VOC2007 folder (JPEGImages, Annotations, ImageSets/Main) of
    ``num`` trainval images (and 2 test ones), as tests/conftest.py's."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    ids = {'trainval': [], 'test': []}
    for i in range(num + 2):
        img_id = f'{i:06d}'
        ids['trainval' if i < num else 'test'].append(img_id)
        names = [n for n in SHAPES if rng.random() < 0.4] or ['cat']
        img = np.full((size, size, 3), 128, np.uint8)
        objs = ''
        for n in names:
            x, y = (int(v) for v in rng.integers(0, size * 3 // 4, 2))
            cv2.rectangle(img, (x, y), (x + size // 5, y + size // 5),
                          SHAPES[n], -1)
            objs += (f'  <object><name>{n}</name><difficult>0</difficult>'
                     f'<bndbox><xmin>{x + 1}</xmin><ymin>{y + 1}</ymin>'
                     f'<xmax>{x + size // 5}</xmax><ymax>{y + size // 5}'
                     '</ymax></bndbox></object>\n')
        cv2.imwrite(osp.join(root, 'JPEGImages', f'{img_id}.jpg'), img)
        with open(osp.join(root, 'Annotations', f'{img_id}.xml'), 'w') as f:
            f.write(f'<annotation><filename>{img_id}.jpg</filename><size>'
                    f'<width>{size}</width><height>{size}</height><depth>3'
                    f'</depth></size>\n{objs}</annotation>\n')
    for split, names in ids.items():
        with open(osp.join(root, 'ImageSets', 'Main', f'{split}.txt'),
                  'w') as f:
            f.write('\n'.join(names) + '\n')


LOG_LINE = re.compile(r'Epoch\(train\)\s*\[\d+\]\s*\[\s*(\d+)/(\d+)\].*?'
                      r'\stime: ([\d.]+)\s+data_time: ([\d.]+)'
                      r'(?:\s+memory: (\d+))?.*?\sloss: ([\d.naif]+)')


def train(s, out):
    t = s['train']
    data = osp.join(out, 'VOC2007')
    make_voc(data, t['images'], t['size'])
    iters = t['images'] // t['batch_size']
    work = osp.join(out, 'train_work_dir')
    log = osp.join(out, 'train.log')
    opts = [
        f'train_dataloader.dataset.data_root={data}',
        f"train_dataloader.batch_size={t['batch_size']}",
        f"train_dataloader.num_workers={min(4, os.cpu_count() or 1)}",
        f"train_dataloader.dataset.pipeline.1.scale={t['crop']}",
        'model.backbone.init_cfg=None',  # no download of the checkpoint
        'train_cfg.max_epochs=1',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=1000',
        'default_hooks.checkpoint.save_last=False']
    if t.get('depth'):
        opts += [f"model.backbone.depth={t['depth']}",
                 'model.head.in_channels=512']
    cmd = [sys.executable, osp.join(TOOLS, 'train.py'),
           osp.join(ROOT, 'configs', 'msl', 'resnet101_csra_voc.py'),
           '--work-dir', work, '--no-validate', '--cfg-options', *opts]
    cmd += ['--amp'] * t['amp']
    rc, sec = run(cmd, log, t['timeout'])
    with open(log) as f:
        steps = [m.groups() for m in LOG_LINE.finditer(f.read())]
    times = [float(g[2]) for g in steps]
    # The first steps include cuDNN's autotuning and the workers' start.
    steady = times[min(5, len(times) // 2):] if times else []
    res = dict(config='configs/msl/resnet101_csra_voc.py'
               + (f" (ResNet-{t['depth']})" if t.get('depth') else ''),
               amp=t['amp'],
               batch_size=t['batch_size'], img_size=t['crop'],
               images=t['images'], expected_iters=iters, rc=rc,
               seconds=round(sec, 1), log=log, iters_logged=len(steps))
    if steady:
        med = sorted(steady)[len(steady) // 2]
        res.update(
            median_step_s=med, it_per_s=1 / med,
            imgs_per_s=t['batch_size'] / med,
            mean_data_time_s=sum(float(g[3]) for g in steps) / len(steps),
            memory_mib=max([int(g[4]) for g in steps if g[4]] or [0]) or
            None,
            last_loss=float(steps[-1][5]))
    res['ok'] = (rc == 0 and len(steps) == iters and bool(steady) and
                 math.isfinite(res['last_loss']))
    if not res['ok']:
        res['error'] = tail(log)
    return res


# -------------------------------------------------------------- host sync --
def host_sync(s, out):
    log = osp.join(out, 'host_sync.log')
    js = osp.join(out, 'host_sync.json')
    h = s['host_sync']
    cmd = [sys.executable, osp.abspath(__file__), '--host-sync-child', js,
           '--device', s['device'], '--size', str(h['size']),
           '--batch-size', str(h['batch_size'])]
    rc, sec = run(cmd, log, h['timeout'])
    if rc == 0 and osp.exists(js):
        with open(js) as f:
            res = json.load(f)
    else:
        res = dict(ok=False, cases=[], error=tail(log))
    res.update(rc=rc, seconds=round(sec, 1), log=log)
    return res


HOST_SYNCS = ('item', 'tolist', 'cpu', 'numpy', '__array__', '__bool__',
              '__float__', '__int__')


def spy_calls(fn):
    """The host-sync Tensor methods ``fn`` calls (tests/test_models.py's
    spy): the CPU stand-in for the CUDA sync debug mode."""
    import torch
    calls, saved = [], {n: getattr(torch.Tensor, n) for n in HOST_SYNCS}
    for name, orig in saved.items():
        def spy(self, *a, _orig=orig, _name=name, **kw):
            calls.append(_name)
            return _orig(self, *a, **kw)
        setattr(torch.Tensor, name, spy)
    try:
        fn()
    finally:
        for name, orig in saved.items():
            setattr(torch.Tensor, name, orig)
    return calls


def host_sync_child(args):
    """MSL's and the plain classifier's loss, on ``args.device``; on CUDA
    under ``set_sync_debug_mode('error')`` (and 'warn', to count)."""
    import copy
    import warnings
    import torch
    warnings.filterwarnings('ignore', message='Fail to import')
    sys.path.insert(0, osp.join(TOOLS, 'analysis'))
    from benchmark_train import make_batches
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mmmsl  # noqa: F401
    init_default_scope('mmpretrain')
    cuda = args.device == 'cuda'
    classes = 5

    def cfg(type_, **kw):
        return dict(type=type_, backbone=dict(type='ResNet', depth=18,
                                              out_indices=(3, )),
                    head=dict(type='CSRAClsHead', num_classes=classes,
                              in_channels=512, num_heads=1, lam=0.1,
                              loss=dict(type='CrossEntropyLoss',
                                        use_sigmoid=True)),
                    data_preprocessor=dict(num_classes=classes,
                                           to_onehot=True, mean=[120.] * 3,
                                           std=[60.] * 3), **kw)

    def attempt(fn, mode):
        """``(ok, error, n_warnings)`` of ``fn()`` under the debug mode."""
        if not cuda:
            return True, None, 0
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            torch.cuda.set_sync_debug_mode(mode)
            try:
                fn()
                err = None
            except RuntimeError as e:
                err = str(e).splitlines()[0][:300]
            finally:
                torch.cuda.set_sync_debug_mode(0)
        n = sum('synchroniz' in str(w.message) for w in caught)
        return err is None, err, n

    cases = []
    for mode in ('two_pass', 'concat'):
        for in_model in (False, True):
            torch.manual_seed(0)
            kw = dict(mask_source=dict(ratio='high')) if in_model else {}
            msl = MODELS.build(cfg('MaskedSupervisedClassifier',
                                   forward_mode=mode, **kw))
            plain = MODELS.build(cfg('ImageClassifier'))
            plain.load_state_dict(msl.state_dict())
            if cuda:
                msl, plain = msl.cuda(), plain.cuda()
            msl.train(), plain.train()
            batch = make_batches(1, args.batch_size, args.size, classes,
                                 seed=0)[0]
            if in_model:
                for sample in batch['data_samples']:
                    del sample.msl_mask
            data = msl.data_preprocessor(batch, True)  # copies to the GPU
            inputs, samples = data['inputs'], data['data_samples']

            def msl_loss():
                msl.loss(inputs, samples)

            def plain_loss():
                plain.loss(inputs.clone(), copy.deepcopy(samples))

            def msl_backward():
                sum(msl.loss(inputs, samples).values()).backward()

            for fn in (msl_loss, plain_loss, msl_backward):  # warm-up
                fn()
            msl.zero_grad()
            ok, err, _ = attempt(msl_loss, 'error')
            base_ok, base_err, _ = attempt(plain_loss, 'error')
            _, _, n_msl = attempt(msl_loss, 'warn')
            _, _, n_base = attempt(plain_loss, 'warn')
            bwd_ok, bwd_err, _ = attempt(msl_backward, 'error')
            spy_msl, spy_base = spy_calls(msl_loss), spy_calls(plain_loss)
            cases.append(dict(
                forward_mode=mode, in_model_masks=in_model,
                msl_loss_ok=ok, msl_loss_error=err,
                baseline_loss_ok=base_ok, baseline_loss_error=base_err,
                msl_backward_ok=bwd_ok, msl_backward_error=bwd_err,
                cuda_sync_warnings=dict(msl=n_msl, baseline=n_base),
                spy_calls=dict(msl=sorted(spy_msl),
                               baseline=sorted(spy_base)),
                # the unit test's criterion: MSL = 2 x the head's loss
                spy_ok=sorted(spy_msl) == sorted(spy_base * 2)))
    res = dict(device=args.device,
               sync_debug_mode='error' if cuda else None,
               method='torch.cuda.set_sync_debug_mode' if cuda else
               'Tensor-method spy (CPU: no CUDA sync debug mode)',
               cases=cases, ok=all(c['msl_loss_ok'] and c['spy_ok']
                                   for c in cases))
    with open(args.host_sync_child, 'w') as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))
    return 0


# ----------------------------------------------------------------- report --
def fmt(v, spec):
    return '–' if v is None else format(v, spec)


def markdown(res) -> str:
    env, lines = res['env'], []
    lines += [f"GPU check {res['date']}: {env.get('gpu') or env['device']}, "
              f"torch {env['torch']}, CUDA {env.get('cuda')}"
              f"{'  (DRY RUN: CPU, toy sizes)' if res['dry_run'] else ''}",
              '',
              '| config | px | batch | AMP | channels_last | mode | '
              'median ms | MSL / baseline step | paired | img/s | '
              'peak MiB | peak / baseline |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for run_ in res['benchmark']['runs']:
        for r in run_['rows']:
            lines.append(
                f"| {r['config']} | {r['img_size']} | {r['batch_size']} | "
                f"{'yes' if r['amp'] else 'no'} | "
                f"{'yes' if r['channels_last'] else 'no'} | {r['mode']} | "
                f"{r['median_ms']:.1f} | {r['step_ratio']:.3f} | "
                f"{r['step_ratio_paired']:.3f} | {r['imgs_per_s']:.1f} | "
                f"{fmt(r['peak_mib'], '.0f')} | "
                f"{fmt(r['peak_ratio'], '.3f')} |")
        if not run_['rows']:
            lines.append(f"| FAILED: batch {run_['batch_size']} (rc "
                         f"{run_['rc']}, see {osp.basename(run_['log'])}) |")
    t = res['train']
    lines += ['', f"tools/train.py {t['config']}"
              f"{' --amp' if t['amp'] else ''}: batch {t['batch_size']}, "
              f"{t['img_size']} px, {t['iters_logged']}/"
              f"{t['expected_iters']} iterations logged: "
              + (f"{t['it_per_s']:.2f} it/s ({t['imgs_per_s']:.1f} img/s, "
                 f"median step {t['median_step_s'] * 1e3:.0f} ms, data "
                 f"{t['mean_data_time_s'] * 1e3:.0f} ms, memory "
                 f"{fmt(t['memory_mib'], 'd')} MiB, last loss "
                 f"{t['last_loss']:.4f})" if 'it_per_s' in t else 'FAILED')]
    h = res['host_sync']
    lines += ['', f"host sync ({h.get('method', '?')}): "
              f"{'PASS' if h['ok'] else 'FAIL'}"]
    for c in h['cases']:
        lines.append(
            f"* {c['forward_mode']}, masks "
            f"{'in the model' if c['in_model_masks'] else 'from the pipeline'}"
            f": MSL loss {'ok' if c['msl_loss_ok'] else c['msl_loss_error']}"
            f"; baseline loss "
            f"{'ok' if c['baseline_loss_ok'] else c['baseline_loss_error']}"
            f"; MSL backward "
            f"{'ok' if c['msl_backward_ok'] else c['msl_backward_error']}"
            f"; spy {'ok' if c['spy_ok'] else c['spy_calls']}")
    if h.get('error'):
        lines += ['', '```', h['error'].rstrip(), '```']
    return '\n'.join(lines) + '\n'


def missing_packages():
    """``'module: error'`` for each of ``PACKAGES`` that does not import."""
    bad = []
    for m in PACKAGES:
        try:
            importlib.import_module(m)
        except Exception as e:  # noqa: BLE001
            bad.append(f'{m}: {type(e).__name__}: {e}')
    return bad


def environment(device):
    import torch
    env = dict(device=device, torch=torch.__version__,
               cuda=torch.version.cuda, python=sys.version.split()[0],
               cpu_count=os.cpu_count())
    if device == 'cuda':
        env['gpu'] = torch.cuda.get_device_name()
        env['cudnn'] = torch.backends.cudnn.version()
    for m in ('mmengine', 'mmcv', 'mmpretrain', 'mmmsl', 'torchvision',
              'cv2', 'numpy'):
        try:
            mod = __import__(m)
            env[m] = mod.__version__
            env[f'{m}_path'] = osp.dirname(mod.__file__)
        except Exception as e:  # noqa: BLE001
            env[m] = f'not importable: {e}'
    return env


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', required='--host-sync-child' not in (
        argv if argv is not None else sys.argv))
    p.add_argument('--dry-run', action='store_true')
    p.add_argument('--only', nargs='+',
                   choices=['benchmark', 'train', 'host_sync'],
                   help='run only these parts')
    p.add_argument('--host-sync-child', metavar='JSON', help=argparse.SUPPRESS)
    p.add_argument('--device', default='cpu', help=argparse.SUPPRESS)
    p.add_argument('--size', type=int, default=32, help=argparse.SUPPRESS)
    p.add_argument('--batch-size', type=int, default=2,
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.host_sync_child:
        return host_sync_child(args)
    bad = missing_packages()
    if bad:
        print('\n'.join(bad), file=sys.stderr)
        print('gpu_check: the packages above are missing; install them or '
              'pass --wheels DIR', file=sys.stderr)
        return 2
    import torch
    if not args.dry_run and not torch.cuda.is_available():
        print('gpu_check: no CUDA device: use --dry-run to test the '
              'plumbing on CPU', file=sys.stderr)
        return 3
    if args.dry_run:  # inherited by every part's process
        os.environ['OMP_NUM_THREADS'] = '1'
    out = osp.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    s = settings(args.dry_run)
    res = dict(date=time.strftime('%Y-%m-%d %H:%M:%S'),
               dry_run=args.dry_run, env=environment(s['device']),
               settings=s)
    t0 = time.perf_counter()
    parts = dict(benchmark=benchmark, train=train, host_sync=host_sync)
    empty = dict(benchmark=dict(ok=False, runs=[], skipped=True),
                 train=dict(ok=False, config='-', amp=False, batch_size=0,
                            img_size=0, iters_logged=0, expected_iters=0,
                            skipped=True),
                 host_sync=dict(ok=False, cases=[], skipped=True))
    for name, fn in parts.items():
        if args.only and name not in args.only:
            res[name] = empty[name]
            continue
        print(f'gpu_check: {name} ...', flush=True)
        t1 = time.perf_counter()
        try:
            res[name] = fn(s, out)
        except Exception as e:  # noqa: BLE001  (one part fails alone)
            res[name] = dict(empty[name], skipped=False,
                             error=f'{type(e).__name__}: {e}')
        print(f"gpu_check: {name} {'ok' if res[name]['ok'] else 'FAILED'} "
              f'({time.perf_counter() - t1:.0f} s)', flush=True)
    res['seconds'] = round(time.perf_counter() - t0, 1)
    res['ok'] = all(res[n]['ok'] for n in parts
                    if not res[n].get('skipped'))
    with open(osp.join(out, 'gpu_check.json'), 'w') as f:
        json.dump(res, f, indent=1)
    md = markdown(res)
    with open(osp.join(out, 'gpu_check.md'), 'w') as f:
        f.write(md)
    print(md)
    print(f"gpu_check: {'all parts passed' if res['ok'] else 'FAILED'} in "
          f"{res['seconds']:.0f} s; {out}/gpu_check.json, gpu_check.md")
    return 0 if res['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
