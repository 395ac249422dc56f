"""mmmsl: Masked Supervised Learning for MMPretrain.

Importing the package (or ``custom_imports=dict(imports=['mmmsl'])`` in a
config) registers its components in mmpretrain's registries and makes
mmengine checkpoints loadable with torch's ``weights_only=True``.
"""
import warnings

# mmcv-lite (what mmmsl installs) has no compiled ops; mmcv warns about one
# of them (a detection op) on import although classification never uses it.
warnings.filterwarnings(
    'ignore', message='Fail to import ``MultiScaleDeformableAttention``')

from .utils import compat  # noqa: F401,E402  (safe loading, first)
from .datasets import *  # noqa: F401,F403,E402
from .engine import *  # noqa: F401,F403,E402
from .evaluation import *  # noqa: F401,F403,E402
from .models import *  # noqa: F401,F403,E402
from .version import __version__  # noqa: E402

__all__ = ['__version__']
