"""Safe ``weights_only`` loading of mmengine checkpoints on torch >= 2.6.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, whose
unpickler refuses every global it does not know. mmengine 0.10 checkpoints
hold a ``message_hub`` of ``HistoryBuffer`` objects and numpy arrays and
scalars, so ``resume`` fails. Instead of loading with ``weights_only=False``
(which runs whatever code a checkpoint carries), this module allow-lists
exactly the globals those checkpoints need:

- ``mmengine.logging.HistoryBuffer`` and the numpy array/scalar/dtype
  constructors (under their numpy 2 and numpy 1 paths);
- ``builtins.getattr``, which pickle uses for the bound methods in a
  ``HistoryBuffer``'s ``statistics_methods``; it is mapped to
  :func:`history_buffer_getattr`, which resolves only those methods of a
  ``HistoryBuffer`` and refuses every other attribute.

Anything else (e.g. ``os.system`` or ``builtins.eval`` smuggled into a
checkpoint) is still refused by torch.
"""
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

_DEFAULT_STATISTICS = ('min', 'max', 'mean', 'current')


def history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to HistoryBuffer's statistics methods (the
    defaults and those registered with ``register_statistics``)."""
    allowed = set(_DEFAULT_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if (obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) \
            and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'Refusing getattr({type(obj).__name__}, {name!r}) while loading a '
        'checkpoint with weights_only=True: only the statistics methods of '
        'mmengine HistoryBuffer are allowed (mmmsl.compat).')


def _numpy_globals():
    core = np._core if hasattr(np, '_core') else np.core
    reconstruct, scalar = core.multiarray._reconstruct, core.multiarray.scalar
    out = [np.ndarray, np.dtype]
    for prefix in ('numpy._core', 'numpy.core'):  # numpy 2 and 1 paths
        out += [(reconstruct, f'{prefix}.multiarray._reconstruct'),
                (scalar, f'{prefix}.multiarray.scalar')]
    # numpy 2 pickles dtypes of arrays and scalars by their DType class.
    out += [type(np.dtype(t)) for t in np.sctypeDict.values()
            if t is not np.object_]
    return out


def safe_globals():
    """The allow-list registered by :func:`register_safe_globals`."""
    return [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr')
            ] + _numpy_globals()


def register_safe_globals() -> bool:
    """Allow-list mmengine checkpoint globals for ``weights_only`` loading.

    Returns False (and does nothing) on torch without ``add_safe_globals``
    (< 2.4), where ``torch.load`` does not default to ``weights_only``.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:
        return False
    add(safe_globals())
    return True


register_safe_globals()
