"""The benchmark tools' statistics, timing and memory readings
(``mmmsl.utils.timing``), against values worked out by hand."""
import json
import math
import multiprocessing as mp
import os
import platform
import time

import numpy as np
import pytest

from mmmsl.utils.timing import (busy_note, compare, describe, environment,
                                in_child, interleaved, load_span,
                                memory_figures, paired_ratio,
                                prompt_free_malloc, ratio,
                                step_table, summarise, time_steps,
                                write_json)

FORK = mp.get_context('fork') if 'fork' in mp.get_all_start_methods() \
    else None


def test_describe_known_list():
    # Sorted 1 2 3 4: the 25th percentile lies 0.75 of the way from the
    # 1st value to the 2nd (position 0.25 * 3), the 75th 0.25 of the way
    # from the 3rd to the 4th.
    d = describe([4, 1, 3, 2])
    assert d == dict(mean=2.5, min=1, p25=1.75, median=2.5, p75=3.25, max=4)
    # Odd length: the median is the middle value, p25/p75 halfway between.
    d = describe([30, 10, 20])
    assert (d['p25'], d['median'], d['p75']) == (15, 20, 25)
    assert describe([7.0]) == dict(mean=7.0, min=7.0, p25=7.0, median=7.0,
                                   p75=7.0, max=7.0)
    assert describe(x for x in (1, 3))['mean'] == 2  # any iterable
    with pytest.raises(ValueError):
        describe([])


def test_summarise_step_times():
    s = summarise([0.010, 0.030, 0.020], batch_size=4)
    assert s['times_ms'] == pytest.approx([10, 30, 20])  # in order, in ms
    assert s['median_ms'] == pytest.approx(20)
    assert s['p25_ms'] == pytest.approx(15)
    assert s['p75_ms'] == pytest.approx(25)
    assert s['mean_ms'] == pytest.approx(20)
    assert s['min_ms'] == pytest.approx(10)
    assert s['imgs_per_s'] == pytest.approx(200)  # 4 images / 20 ms
    assert set(s) == {'median_ms', 'p25_ms', 'p75_ms', 'mean_ms', 'min_ms',
                      'imgs_per_s', 'times_ms'}


def test_paired_ratio_pairs_rounds():
    times, base = [4, 2, 9], [1, 2, 3]
    # Round by round: 4/1, 2/2, 9/3 = 4, 1, 3 -> median 3. The ratio of
    # the medians is 4/2 = 2, pairing the sorted lists gives 2, 4/2 ...
    # -> 2 too, and the mean of the round ratios is 8/3: all differ.
    assert paired_ratio(times, base) == 3
    assert ratio(np.median(times), np.median(base)) == 2
    assert paired_ratio([2, 6, 3], [1, 3, 1]) == 2  # 2, 2, 3
    assert paired_ratio([3, 5], [1, 1]) == 4  # even: mean of 3 and 5
    with pytest.raises(ValueError):
        paired_ratio([1, 2], [1])
    with pytest.raises(ValueError):
        paired_ratio([], [])


def test_ratio_and_compare():
    assert ratio(3, 2) == 1.5
    assert math.isnan(ratio(3, 0))
    base = summarise([0.010, 0.010, 0.020], 1)  # median 10 ms
    msl = summarise([0.030, 0.010, 0.020], 1)  # median 20 ms; rounds 3 1 1
    r, paired = compare(msl, base)
    assert r == pytest.approx(2.0)
    assert paired == pytest.approx(1.0)


def test_step_table_rows():
    rows = dict(baseline=dict(median_ms=10.0, p25_ms=9.0, p75_ms=11.0,
                              imgs_per_s=100.0, times_ms=[10.0, 10.0]),
                msl=dict(median_ms=20.0, p25_ms=19.0, p75_ms=21.0,
                         imgs_per_s=50.0, times_ms=[20.0, 30.0]))
    head, base, msl = step_table('train step', rows, ['baseline', 'msl'])
    assert head.split() == ['train', 'step', 'median', 'ms', 'p25-p75',
                            'ms', 'img/s', 'ratio', 'paired']
    assert base.split() == ['baseline', '10.0', '9.0-11.0', '100.0',
                            '1.000', '1.000']
    # ratio 20/10; paired: median of 20/10 and 30/10.
    assert msl.split() == ['msl', '20.0', '19.0-21.0', '50.0', '2.000',
                           '2.500']
    lines = step_table('t', rows, ['msl'], extra=(
        '  x', lambda v, b: f"  {v['median_ms'] - b['median_ms']:.0f}"))
    assert lines[0].endswith('  x') and lines[1].endswith('  10')


def test_interleaved_order_warmup_and_sync():
    log, syncs = [], []
    fns = dict(a=lambda: log.append('a'), b=lambda: log.append('b'))
    times = interleaved(fns, iters=2, warmup=1,
                        sync=lambda: syncs.append(1))
    assert log == ['a', 'b'] * 3  # one warm-up round, then two timed
    assert len(syncs) == 1 + 2 * 2 * 2  # after warm-up; around each call
    assert {k: len(v) for k, v in times.items()} == dict(a=2, b=2)
    slow = interleaved(dict(s=lambda: time.sleep(0.02)), iters=1)
    assert 0.02 <= slow['s'][0] < 1.0


def test_time_steps_cycles_inputs():
    seen = dict(a=[], b=[])
    res = time_steps({n: seen[n].append for n in seen}, inputs=[0, 1, 2],
                     iters=4, warmup=1, batch_size=2)
    # Each step takes the inputs in turn, warm-up included.
    assert seen == dict(a=[0, 1, 2, 0, 1], b=[0, 1, 2, 0, 1])
    assert len(res['a']['times_ms']) == 4
    assert res['a']['imgs_per_s'] == pytest.approx(
        2 / (res['a']['median_ms'] / 1e3))


def test_memory_figures():
    m = memory_figures(2 * 2**20, 5 * 2**20, 'how')
    assert m == dict(base_mib=2.0, peak_mib=5.0, growth_mib=3.0,
                     method='how')


STEP_MEMORY = r"""
import json
import numpy as np
from mmmsl.utils.timing import step_memory

def step():  # 96 MiB touched (above glibc's largest mmap threshold, so
    # fresh pages however malloc is set), then freed
    np.ones(96 * 2**20, np.uint8).sum()

print(json.dumps(step_memory(step, steps=2)))
"""


@pytest.mark.skipif(not os.path.exists('/proc/self/status'),
                    reason='needs /proc')
def test_step_memory_sees_a_step_allocation():
    # In a fresh process: memory that earlier tests freed (or a
    # reuse_freed_memory() they applied) would hide the step's growth.
    import json
    import subprocess
    import sys
    out = subprocess.run([sys.executable, '-c', STEP_MEMORY], check=True,
                         capture_output=True, text=True).stdout
    m = json.loads(out.strip().splitlines()[-1])
    assert m['peak_mib'] >= m['base_mib'] > 0
    if m['method'] == 'VmHWM after clear_refs=5':
        assert 90 <= m['growth_mib'] < 400


@pytest.mark.skipif(FORK is None, reason='needs fork')
def test_in_child_result_and_error():
    assert in_child(FORK, 'pid', os.getpid) != os.getpid()
    with pytest.raises(RuntimeError, match='parsing failed: ValueError'):
        in_child(FORK, 'parsing', int, 'not a number')
    if platform.libc_ver()[0] == 'glibc':  # in a child: malloc unchanged
        assert in_child(FORK, 'mallopt', prompt_free_malloc) is True


def test_environment_and_notes():
    env = environment(device='cpu')
    assert list(env)[-1] == 'loadavg_start' and env['device'] == 'cpu'
    for key in ('torch', 'python', 'cpu', 'cpu_count', 'torch_threads'):
        assert key in env
    env = dict(loadavg_start=[0.5], loadavg_end=[2.5], cpu_count=2)
    assert load_span(env) == 'load avg 0.50 -> 2.50'
    # The end figure less the tool's own 2 threads is 0.5: not busy.
    assert busy_note(env, 1.0, 'x', own_threads=2) == []
    assert busy_note(env, 1.0, 'timings are unreliable') == [
        'NOTE: the machine was busy (load average 2.50 on 2 CPUs): '
        'timings are unreliable']
    assert busy_note(env, 2.5, 'x') == []  # over the limit only


def test_write_json_standard(tmp_path):
    path = tmp_path / 'a' / 'b.json'
    write_json(str(path), dict(r=float('nan'), v=[1.5, float('inf')],
                               t=(1, 2), n=dict(x=None)))
    text = path.read_text()
    assert 'NaN' not in text and 'Infinity' not in text
    assert json.loads(text) == dict(r=None, v=[1.5, None], t=[1, 2],
                                    n=dict(x=None))
