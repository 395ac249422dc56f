"""Install mmmsl: ``pip install -e .[tests]`` (see README)."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
MMCV_LITE = 'mmcv-lite>=2.0.0,<2.3.0'
VERSION = re.search(r"__version__ = '(.+)'",
                    (HERE / 'mmmsl' / 'version.py').read_text()).group(1)

setup(
    name='mmmsl',
    version=VERSION,
    description='Masked Supervised Learning (MSL) for MMPretrain multi-label '
    'classification',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmmsl', 'mmmsl.*']),
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
    # ``mmcv-lite`` is enough (extra ``lite``). It installs the same ``mmcv``
    # import name as full mmcv, so it is an extra rather than a hard
    # requirement: a user who already has full mmcv installs plain ``.``.
    extras_require={
        'lite': [MMCV_LITE],
        'demo': ['scikit-learn'],  # the digits demo dataset's source images
        'tests': ['pytest', 'scikit-learn'],
    },
    license='Apache-2.0',
)
