"""Statistics, timing and memory readings of the benchmark tools
(``tools/analysis/benchmark_*.py``). What each figure means is told in
``docs/benchmarks.md``."""
import itertools
import json
import math
import os
import platform
import statistics
import time

import numpy as np
import torch

MIB = 2.0**20


# ------------------------------------------------------------- statistics --
def describe(values) -> dict:
    """Mean, min, 25th percentile, median, 75th percentile and max of a
    non-empty sequence (percentiles interpolated linearly, as numpy's)."""
    values = list(values)
    if not values:
        raise ValueError('describe() of an empty sequence')
    p25, p75 = np.percentile(values, [25, 75])
    return dict(mean=statistics.fmean(values), min=min(values),
                p25=float(p25), median=statistics.median(values),
                p75=float(p75), max=max(values))


def summarise(times_s, batch_size: int) -> dict:
    """Step times in seconds as the tools report them, in ms: the median,
    its 25th/75th percentiles, mean and min, images/s = ``batch_size`` /
    median step, and the times themselves (``times_ms``)."""
    ms = [t * 1e3 for t in times_s]
    d = describe(ms)
    return dict(median_ms=d['median'], p25_ms=d['p25'], p75_ms=d['p75'],
                mean_ms=d['mean'], min_ms=d['min'],
                imgs_per_s=batch_size / (d['median'] / 1e3), times_ms=ms)


def ratio(a: float, b: float) -> float:
    """``a / b``; NaN where ``b`` is 0."""
    return a / b if b else float('nan')


def paired_ratio(times, base_times) -> float:
    """Median over rounds of (this step / the baseline step of the same
    round): the two ran back to back, so a change of load between rounds
    cancels, which it does not in the ratio of the medians."""
    times, base_times = list(times), list(base_times)
    if len(times) != len(base_times) or not times:
        raise ValueError('paired_ratio needs two equally long, non-empty '
                         f'lists, got {len(times)} and {len(base_times)}')
    return statistics.median(a / b for a, b in zip(times, base_times))


def compare(summary: dict, base: dict) -> tuple:
    """``(ratio of the medians, paired ratio)`` of two :func:`summarise`
    results (``median_ms`` and ``times_ms``)."""
    return (ratio(summary['median_ms'], base['median_ms']),
            paired_ratio(summary['times_ms'], base['times_ms']))


# ----------------------------------------------------------------- timing --
def interleaved(fns: dict, iters: int, warmup: int = 0, sync=None) -> dict:
    """Run ``warmup`` then ``iters`` rounds of one call of each function in
    turn, so a change of machine load hits them alike; each one's call
    times in seconds. ``sync`` (e.g. ``torch.cuda.synchronize``) is called
    before and after each timed call."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync()
    times = {name: [] for name in fns}
    for _ in range(iters):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return times


def step_table(title: str, rows: dict, names, base: str = 'baseline',
               extra=None) -> list:
    """The lines of a table of :func:`summarise` results: median, p25-p75,
    img/s, ratio and paired ratio against ``rows[base]``. ``extra``:
    ``(head, fn)``, more columns: ``fn(row, base_row)`` gives each row's."""
    head, fn = extra or ('', lambda v, b: '')
    b = rows[base]
    lines = [f"{title:<14}{'median ms':>11}{'p25-p75 ms':>17}{'img/s':>9}"
             f"{'ratio':>8}{'paired':>8}{head}"]
    for name in names:
        v = rows[name]
        lines.append(
            f"{name:<14}{v['median_ms']:>11.1f}{v['p25_ms']:>8.1f}-"
            f"{v['p75_ms']:<8.1f}{v['imgs_per_s']:>9.1f}"
            + ''.join(f'{r:>8.3f}' for r in compare(v, b)) + fn(v, b))
    return lines


def time_steps(steps: dict, inputs, iters: int, warmup: int = 0,
               batch_size: int = 1, sync=None) -> dict:
    """Time ``steps[name](input)`` by :func:`interleaved` rounds, each
    step taking the ``inputs`` in turn; a :func:`summarise` per name."""
    def cycling(step, counter):
        return lambda: step(inputs[next(counter) % len(inputs)])

    times = interleaved({n: cycling(s, itertools.count())
                         for n, s in steps.items()}, iters, warmup, sync)
    return {n: summarise(t, batch_size) for n, t in times.items()}


# ----------------------------------------------------------------- memory --
def proc_status_kib(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM`` ...)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (``VmHWM``) to the current
    RSS (``5`` to ``/proc/self/clear_refs``); False where not allowed."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def prompt_free_malloc() -> bool:
    """Make glibc map every block over 128 KiB on its own and give freed
    memory back at once, so that RSS follows the live allocations (the
    ``live`` figures); False where ``mallopt`` is not available."""
    from mmmsl.engine.hooks.reuse_freed_memory_hook import (
        M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, mallopt)
    return (mallopt(M_MMAP_THRESHOLD, 128 * 1024)
            and mallopt(M_TRIM_THRESHOLD, 128 * 1024))


def memory_figures(base: float, peak: float, method: str) -> dict:
    """Bytes in use before and at the peak as ``base_mib``, ``peak_mib``
    and ``growth_mib`` = peak - base."""
    return dict(base_mib=base / MIB, peak_mib=peak / MIB,
                growth_mib=(peak - base) / MIB, method=method)


def step_memory(step, steps: int, device: str = 'cpu') -> dict:
    """The memory in use, then its peak over ``steps`` calls of ``step``:
    on CUDA ``memory_allocated`` / ``max_memory_allocated``, on CPU the
    RSS and its high-water mark (reset first where the kernel allows)."""
    if device == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        return memory_figures(base, torch.cuda.max_memory_allocated(),
                              'torch.cuda.max_memory_allocated')
    reset = reset_peak_rss()
    base = proc_status_kib('VmRSS') * 1024
    for _ in range(steps):
        step()
    return memory_figures(
        base, proc_status_kib('VmHWM') * 1024,
        'VmHWM after clear_refs=5' if reset else
        'VmHWM (no reset: clear_refs not writable)')


def _child(fn, args, conn):
    try:
        conn.send((True, fn(*args)))
    except BaseException as e:  # report, never hang the parent
        conn.send((False, f'{type(e).__name__}: {e}'))
    finally:
        conn.close()


def in_child(ctx, what: str, fn, *args):
    """``fn(*args)`` in a fresh process of the multiprocessing context
    ``ctx``, so that no allocation or allocator cache of this process is
    seen; its result, or RuntimeError('``what`` failed: ...')."""
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, args, send))
    proc.start()
    send.close()
    try:
        ok, out = recv.recv()
    except EOFError:
        ok, out = False, 'child died'
    proc.join()
    if not ok:
        raise RuntimeError(f'{what} failed: {out}')
    return out


# ------------------------------------------------------------ environment --
def cpu_name() -> str:
    """The CPU model name of ``/proc/cpuinfo``, else the platform's."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ''


def environment(**extra) -> dict:
    """Versions, CPU, threads and the load average at the start."""
    return dict(torch=torch.__version__, python=platform.python_version(),
                cpu=cpu_name(), cpu_count=os.cpu_count(),
                torch_threads=torch.get_num_threads(), **extra,
                loadavg_start=list(os.getloadavg()))


def busy_note(env: dict, limit: float, consequence: str,
              own_threads: int = 0) -> list:
    """A one-line NOTE where the load average (at the start, or at the end
    less ``own_threads``) was over ``limit``, else no line."""
    load = max(env['loadavg_start'][0],
               env['loadavg_end'][0] - own_threads)
    if load <= limit:
        return []
    return [f'NOTE: the machine was busy (load average {load:.2f} on '
            f"{env['cpu_count']} CPUs): {consequence}"]


def load_span(env: dict) -> str:
    """``load avg START -> END`` of an :func:`environment` given its
    ``loadavg_end``."""
    return (f"load avg {env['loadavg_start'][0]:.2f} -> "
            f"{env['loadavg_end'][0]:.2f}")


def report(res: dict, format_report, json_path=None) -> dict:
    """Print ``format_report(res)``; write ``res`` to ``json_path`` if
    given (:func:`write_json`). Returns ``res``."""
    print(format_report(res), flush=True)
    if json_path:
        write_json(json_path, res)
    return res


def write_json(path: str, obj) -> None:
    """``obj`` as JSON at ``path`` (folders made), NaN/inf as null."""
    def finite(o):
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: finite(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [finite(v) for v in o]
        return o

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(finite(obj), f, indent=1)
