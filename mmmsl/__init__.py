"""mmmsl: Masked Supervised Learning for MMPretrain.

Importing the package (or ``custom_imports=dict(imports=['mmmsl'])`` in a
config) registers its components in mmpretrain's registries and makes
mmengine checkpoints loadable with torch's ``weights_only=True``.
"""
from .utils import compat  # noqa: F401  (safe checkpoint loading, first)
from .datasets import *  # noqa: F401,F403
from .engine import *  # noqa: F401,F403
from .evaluation import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .version import __version__

__all__ = ['__version__']
