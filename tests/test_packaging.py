"""The built package (``pip install .``, a wheel) carries the configs, the
tools and the model index in ``mmmsl/.mim`` as OpenMMLab packages do, and
the shipped tool trains the shipped config from outside the repository."""
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import make_voc
from test_tools import small_options

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: What a checkout has that a build must not see (and must not touch).
NOT_SOURCES = shutil.ignore_patterns('.git', 'work_dirs', 'data', 'build',
                                     'dist', '*.egg-info', '__pycache__',
                                     '*.pyc', '.pytest_cache', '.venv',
                                     '.mim')
EXPECTED = ['mmmsl/.mim/configs/msl/resnet101_csra_voc.py',
            'mmmsl/.mim/configs/baseline/resnet101_csra_voc.py',
            'mmmsl/.mim/configs/msl/metafile.yml',
            'mmmsl/.mim/tools/train.py', 'mmmsl/.mim/tools/test.py',
            'mmmsl/.mim/tools/dist_train.sh', 'mmmsl/.mim/model-index.yml',
            'mmmsl/__init__.py']


def _call(cmd, cwd, env=None, timeout=300):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """A wheel built with pip, offline, from a copy of this checkout (pip
    builds in the source tree: a copy keeps ``build/``, the egg-info and
    the copied ``mmmsl/.mim`` out of the checkout, whose ``mmmsl/.mim`` an
    editable install made symlinks)."""
    for tool in ('pip', 'setuptools', 'wheel'):
        if importlib.util.find_spec(tool) is None:
            pytest.skip(f'{tool} is not installed')
    tmp = tmp_path_factory.mktemp('packaging')
    src = str(tmp / 'src')
    shutil.copytree(REPO, src, ignore=NOT_SOURCES)
    dist = str(tmp / 'dist')
    _call([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
           '--no-build-isolation', '--no-index', '-q', '-w', dist, src],
          cwd=str(tmp))
    (name, ) = os.listdir(dist)
    return tmp, osp.join(dist, name)


def test_wheel_carries_configs_and_tools(wheel):
    _, path = wheel
    with zipfile.ZipFile(path) as whl:
        names = whl.namelist()
    assert [p for p in EXPECTED if p not in names] == []
    shipped = {p[len('mmmsl/.mim/'):] for p in names
               if p.startswith('mmmsl/.mim/')}
    # every config and tool of the checkout, and nothing else in .mim
    for folder in ('configs', 'tools'):
        for root, dirs, files in os.walk(osp.join(REPO, folder)):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            for f in files:
                if not f.endswith(('.pyc', '.pyo')):
                    rel = osp.relpath(osp.join(root, f), REPO)
                    assert rel.replace(os.sep, '/') in shipped
    assert not [p for p in names if '__pycache__' in p or p.endswith('.pyc')]
    assert {p.split('/')[0] for p in shipped} == {'configs', 'tools',
                                                  'model-index.yml'}


@pytest.mark.slow
def test_installed_wheel_trains_outside_the_repo(wheel, tmp_path):
    tmp, path = wheel
    site = str(tmp / 'site')
    if not osp.isdir(site):
        _call([sys.executable, '-m', 'pip', 'install', '--no-deps',
               '--no-index', '-q', '--target', site, path], cwd=str(tmp))
    mim = osp.join(site, 'mmmsl', '.mim')
    # the installed copy shadows the editable one; cwd is outside the repo
    env = dict(os.environ, PYTHONPATH=site, OMP_NUM_THREADS='1')
    cwd = str(tmp_path / 'elsewhere')
    os.makedirs(cwd)
    out = _call([sys.executable, '-c', 'import mmmsl; print(mmmsl.__file__)'],
                cwd=cwd, env=env)
    assert osp.realpath(out.strip().splitlines()[-1]).startswith(
        osp.realpath(site) + os.sep)

    root = str(tmp_path / 'VOC2007')
    make_voc(root)
    wd = str(tmp_path / 'wd')
    out = _call([
        sys.executable,
        osp.join(mim, 'tools', 'train.py'),
        osp.join(mim, 'configs', 'msl', 'resnet101_csra_voc.py'),
        '--work-dir', wd, '--cfg-options'
    ] + small_options(root) + ['train_cfg.max_epochs=1'], cwd=cwd, env=env)
    assert 'Epoch(train) [1]' in out and 'Epoch(train) [2]' not in out
    assert osp.isfile(osp.join(wd, 'epoch_1.pth'))
