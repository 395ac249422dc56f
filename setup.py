"""Install mmmsl: ``pip install -e .[tests]`` (see README).

Like the OpenMMLab packages, a built package carries the repository's
``configs``, ``tools`` and ``model-index.yml`` under ``mmmsl/.mim`` (what
``mim`` and ``python <site-packages>/mmmsl/.mim/tools/train.py`` use):
copied there for a wheel, an sdist or an install, symlinked for an editable
(develop) install. ``mmmsl/.mim`` is generated, not tracked (.gitignore).
"""
import os
import os.path as osp
import platform
import re
import shutil
import sys
import warnings
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
MMCV_LITE = 'mmcv-lite>=2.0.0,<2.3.0'
VERSION = re.search(r"__version__ = '(.+)'",
                    (HERE / 'mmmsl' / 'version.py').read_text()).group(1)
#: Repository files and folders shipped in ``mmmsl/.mim``.
MIM_FILES = ['tools', 'configs', 'model-index.yml']


def add_mim_extension():
    """Put ``MIM_FILES`` into ``mmmsl/.mim`` before ``setup()`` (as
    mmpretrain's setup.py does).

    Symlinks for an editable install (``pip install -e .``: setuptools runs
    ``editable_wheel``; ``setup.py develop``), copies for ``bdist_wheel``,
    ``sdist`` and ``install``; other commands (``egg_info``, ``dist_info``:
    pip's metadata steps) leave the folder as it is.
    """
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        # symlinks fail on Windows without privileges: copy there
        mode = 'copy' if platform.system() == 'Windows' else 'symlink'
    elif {'sdist', 'bdist_wheel', 'install', 'build'} & set(sys.argv):
        mode = 'copy'
    else:
        return

    repo_path = osp.dirname(osp.abspath(__file__))
    mim_path = osp.join(repo_path, 'mmmsl', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '*.pyo')
    for filename in MIM_FILES:
        src_path = osp.join(repo_path, filename)
        tar_path = osp.join(mim_path, filename)
        if not osp.exists(src_path):
            warnings.warn(f'mmmsl/.mim: no {src_path} to add')
            continue
        if osp.isfile(tar_path) or osp.islink(tar_path):
            os.remove(tar_path)
        elif osp.isdir(tar_path):
            shutil.rmtree(tar_path)
        if mode == 'symlink':
            os.symlink(osp.relpath(src_path, osp.dirname(tar_path)),
                       tar_path)
        elif osp.isfile(src_path):
            shutil.copyfile(src_path, tar_path)
        else:
            shutil.copytree(src_path, tar_path, ignore=ignore)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmmsl',
        version=VERSION,
        description='Masked Supervised Learning (MSL) for MMPretrain '
        'multi-label classification',
        long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
        long_description_content_type='text/markdown',
        packages=find_packages(include=['mmmsl', 'mmmsl.*']),
        # the configs, tools and model index (see add_mim_extension)
        include_package_data=True,
        package_data={'mmmsl': ['.mim/**/*', '.mim/*']},
        exclude_package_data={'mmmsl': ['.mim/**/__pycache__/*',
                                        '.mim/**/*.pyc']},
        python_requires='>=3.8',
        install_requires=[
            'torch>=2.0',
            'torchvision',
            'mmengine>=0.10.0,<0.11.0',
            'mmpretrain>=1.2.0,<1.3.0',
            'numpy',
            'opencv-python',
            # mmengine imports pkg_resources, which setuptools>=80 dropped.
            'setuptools<80',
        ],
        # mmcv: classification needs no compiled ops, so the pure-Python
        # ``mmcv-lite`` is enough (extra ``lite``). It installs the same
        # ``mmcv`` import name as full mmcv, so it is an extra rather than a
        # hard requirement: a user who already has full mmcv installs plain
        # ``.``.
        extras_require={
            'lite': [MMCV_LITE],
            'demo': ['scikit-learn'],  # the digits demo's source images
            # tools/app.py, the web demo (Gradio 6 needs Python >= 3.10)
            'app': ['gradio>=6.0,<7; python_version >= "3.10"'],
            # pytest-xdist: the suite runs on every core (pytest.ini)
            'tests': ['pytest', 'pytest-xdist', 'scikit-learn', 'tensorboard'],
        },
        license='Apache-2.0',
        zip_safe=False,
    )
