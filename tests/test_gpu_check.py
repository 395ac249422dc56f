"""tools/analysis/gpu_check.sh: its plumbing, with ``--dry-run`` on CPU."""
import importlib.util
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
from conftest import build_once

pytestmark = pytest.mark.slow  # started first (tests/conftest.py)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(ROOT, 'tools', 'analysis', 'gpu_check.sh')
MODES = ['baseline', 'two_pass', 'concat']


def gpu_check(*args, timeout=300):
    env = dict(__import__('os').environ, PYTHON=sys.executable)
    return subprocess.run(['bash', SCRIPT, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def dry_run_into(out):
    proc = gpu_check('--dry-run', '--out', str(out))
    (out / 'proc.json').write_text(json.dumps(dict(
        rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)))


@pytest.fixture(scope='module')
def dry_run(tmp_path_factory):
    """The dry run's JSON, Markdown and stdout (one run per session, shared
    by the xdist workers)."""
    out = build_once(tmp_path_factory, 'gpu_check', dry_run_into)
    proc = json.loads((out / 'proc.json').read_text())
    assert proc['rc'] == 0, proc['stdout'][-3000:] + proc['stderr'][-3000:]
    with open(out / 'gpu_check.json') as f:
        res = json.load(f)
    return res, (out / 'gpu_check.md').read_text(), proc['stdout']


def finite(*values):
    return all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0
               for v in values)


def test_json_sections(dry_run):
    res, _, _ = dry_run
    assert res['ok'] and res['dry_run'] and res['env']['device'] == 'cpu'
    for part in ('benchmark', 'train', 'host_sync'):
        assert res[part]['ok'], res[part]
    for key in ('torch', 'mmengine', 'mmcv', 'mmpretrain', 'mmmsl', 'cv2'):
        assert 'not importable' not in str(res['env'][key])


def test_benchmark_rows(dry_run):
    runs = dry_run[0]['benchmark']['runs']
    assert [r['batch_size'] for r in runs] == [2]
    rows = runs[0]['rows']
    assert [r['mode'] for r in rows] == MODES
    for r in rows:
        assert r['config'] == 'r18-csra' and r['img_size'] == 64
        assert finite(r['median_ms'], r['imgs_per_s'], r['step_ratio'],
                      r['step_ratio_paired'], r['peak_mib'],
                      r['peak_ratio']), r
    assert rows[0]['step_ratio'] == 1.0
    assert osp.exists(runs[0]['json'])


def test_train_iterations(dry_run):
    t = dry_run[0]['train']
    assert t['iters_logged'] == t['expected_iters'] == 2
    assert finite(t['it_per_s'], t['imgs_per_s'], t['median_step_s'],
                  t['last_loss'])


def test_host_sync_cases(dry_run):
    h = dry_run[0]['host_sync']
    assert {(c['forward_mode'], c['in_model_masks']) for c in h['cases']} \
        == {(m, b) for m in ('two_pass', 'concat') for b in (False, True)}
    for c in h['cases']:
        assert c['msl_loss_ok'] and c['spy_ok'], c
        # what the spy saw: MSL calls the head's loss twice, adds nothing
        assert sorted(c['spy_calls']['msl']) == sorted(
            c['spy_calls']['baseline'] * 2)


def test_markdown_table(dry_run):
    _, md, stdout = dry_run
    lines = md.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith('| config'))
    assert 'MSL / baseline step' in lines[head] and 'img/s' in lines[head] \
        and 'peak MiB' in lines[head]
    assert lines[head + 1].startswith('|---')
    rows = [ln for ln in lines[head + 2:] if ln.startswith('| r18-csra')]
    assert len(rows) == 3 and all(ln.count('|') == 13 for ln in rows)
    assert 'it/s' in md and 'host sync' in md and 'PASS' in md
    assert 'all parts passed' in stdout


def test_no_cuda_and_bad_args(tmp_path):
    proc = gpu_check('--bogus')
    assert proc.returncode == 2 and 'unknown argument' in proc.stderr
    import torch
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is present')
    proc = gpu_check('--out', str(tmp_path), timeout=120)
    assert proc.returncode == 3 and 'no CUDA device' in proc.stderr
    assert 'use --dry-run' in proc.stderr
    proc = gpu_check('--wheels', str(tmp_path), '--out', str(tmp_path))
    assert proc.returncode == 2 and 'no wheels' in proc.stderr


@pytest.fixture
def report():
    """tools/analysis/gpu_check_report.py as a module."""
    spec = importlib.util.spec_from_file_location(
        'gpu_check_report', osp.join(ROOT, 'tools', 'analysis',
                                     'gpu_check_report.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_packages_are_named(report, tmp_path, monkeypatch, capsys):
    """The report's first check (exit status 2), before any part runs."""
    monkeypatch.setattr(report, 'PACKAGES', ('json', 'no_such_pkg_xyz'))
    assert report.main(['--dry-run', '--out', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert 'no_such_pkg_xyz: ModuleNotFoundError' in err and 'json' not in err
    assert 'the packages above are missing' in err and '--wheels DIR' in err
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing written
