"""Safe ``weights_only`` loading of mmengine checkpoints on torch >= 2.6.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, whose
unpickler refuses every global it does not know. mmengine 0.10 checkpoints
hold a ``message_hub`` of ``HistoryBuffer`` objects and numpy arrays and
scalars, so ``resume`` fails. Instead of loading with ``weights_only=False``
(which runs whatever code a checkpoint carries), this module allow-lists
exactly the globals those checkpoints need:

- ``mmengine.logging.HistoryBuffer`` and the numpy array/scalar/dtype
  constructors (under their numpy 2 and numpy 1 paths);
- ``builtins.getattr``, which pickle uses for the methods in a
  ``HistoryBuffer``'s ``statistics_methods`` (``getattr(HistoryBuffer,
  'mean')``) and for bound methods; it is mapped to
  :func:`history_buffer_getattr`, which resolves only HistoryBuffer's own
  statistics methods, frozen when this module is imported (the defaults
  ``min``, ``max``, ``mean``, ``current`` and those registered by then;
  never a private or dunder name), and refuses every other attribute. The
  names are frozen because ``HistoryBuffer.__setstate__`` copies a
  checkpoint's ``statistics_methods`` into the class-wide
  ``HistoryBuffer._statistics_methods`` while it loads; :func:`load_from_local`
  also undoes what a checkpoint changed there;
- ``builtins.bytes``, which pickle protocol 2 (``torch.save``'s default)
  calls without arguments for ``b''``, e.g. the data of an empty numpy
  array; it is mapped to :func:`empty_bytes`, which makes only ``b''``.

Anything else (e.g. ``os.system`` or ``builtins.eval`` smuggled into a
checkpoint) is still refused by torch. mmengine's loader of local files is
wrapped (:func:`load_from_local`) so that a refused or truncated checkpoint
fails with a message naming the file and what to do, instead of torch's
advice to allow-list the offending global.
"""
import pickle
import re
import types

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.runner.checkpoint import load_from_local as _mmengine_local

_DEFAULT_STATISTICS = ('min', 'max', 'mean', 'current')


def _frozen_statistics() -> dict:
    """``{name: function}`` of the statistics methods that HistoryBuffer
    itself defines: the defaults and the names registered (with
    ``register_statistics``) by the time this module is imported, less
    private and dunder names. Only these are pickled as
    ``getattr(HistoryBuffer, name)``; a function registered from elsewhere
    is pickled by its own name (and needs its own allow-listing)."""
    names = list(_DEFAULT_STATISTICS) + list(HistoryBuffer._statistics_methods)
    out = {}
    for name in names:
        func = HistoryBuffer.__dict__.get(name)
        if (isinstance(name, str) and not name.startswith('_')
                and isinstance(func, types.FunctionType)
                and HistoryBuffer._statistics_methods.get(name, func) is func):
            out[name] = func
    return out


# Frozen at import: a checkpoint's HistoryBuffer.__setstate__ updates
# HistoryBuffer._statistics_methods while it loads, so reading the allowed
# names from there would let a checkpoint allow any attribute.
_STATISTICS = types.MappingProxyType(_frozen_statistics())


def history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to HistoryBuffer's own statistics methods.

    Resolves ``getattr(HistoryBuffer, name)`` to the function and
    ``getattr(buffer, name)`` (a HistoryBuffer instance) to the method
    bound to ``buffer``, for the names frozen at import (see
    :func:`_frozen_statistics`); everything else is refused, including
    dunder and private names and statistics shadowed in a buffer's state.
    """
    func = _STATISTICS.get(name) if isinstance(name, str) else None
    if func is not None and not name.startswith('_'):
        if obj is HistoryBuffer:
            return func
        if type(obj) is HistoryBuffer and name not in vars(obj):
            return types.MethodType(func, obj)
    owner = 'HistoryBuffer' if obj is HistoryBuffer else type(obj).__name__
    raise pickle.UnpicklingError(
        f'Refusing getattr({owner}, {name!r}) while loading a checkpoint '
        'with weights_only=True: only the statistics methods of mmengine '
        f'HistoryBuffer ({", ".join(sorted(_STATISTICS))}) are allowed '
        '(mmmsl.utils.compat).')


def empty_bytes(*args) -> bytes:
    """``bytes()`` for pickle protocol 2 (torch.save's default), which
    writes ``b''`` as a call of ``builtins.bytes`` without arguments (numpy
    does, for the data of an empty array). With arguments it is refused:
    ``bytes(n)`` would allocate n bytes, and non-empty bytes are pickled
    with ``_codecs.encode``, which torch allows itself."""
    if args:
        raise pickle.UnpicklingError(
            'Refusing builtins.bytes with arguments while loading a '
            'checkpoint with weights_only=True: only bytes() (empty) is '
            'allowed (mmmsl.utils.compat).')
    return b''


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
    return [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr'),
            (empty_bytes, 'builtins.bytes')] + _numpy_globals()


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


def load_from_local(filename: str, map_location=None):
    """mmengine's local checkpoint loader with clear errors.

    Whether it loads or is refused, the checkpoint cannot change mmengine's
    process-wide ``HistoryBuffer._statistics_methods`` (which
    ``HistoryBuffer.__setstate__`` updates from it): afterwards the table
    holds what it held before, plus HistoryBuffer's own statistics methods
    (the defaults) if they were missing. A custom statistics method must be
    registered by the loading process itself.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        pickle.UnpicklingError: The file holds a global outside torch's and
            this module's allow-list (nothing of it was executed).
        RuntimeError: The file is truncated or not a torch checkpoint.
    """
    table = HistoryBuffer._statistics_methods
    before = dict(table)
    try:
        return _load_from_local(filename, map_location)
    finally:
        # No comparisons of the checkpoint's values (they may be arrays).
        kept = {k: v for k, v in table.items() if isinstance(k, str)
                and k not in before and v is _STATISTICS.get(k)}
        table.clear()  # in place: it is a class attribute
        table.update(before)
        table.update(kept)


def _load_from_local(filename: str, map_location=None):
    try:
        return _mmengine_local(filename, map_location)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f'Checkpoint {filename} not found. If --resume found it in '
            'WORK_DIR/last_checkpoint, it was deleted (mmengine\'s plain '
            'CheckpointHook with max_keep_ckpts deletes the old checkpoint '
            'before saving the new one): pass --resume PATH of an existing '
            'checkpoint, or use AtomicCheckpointHook.') from e
    except pickle.UnpicklingError as e:
        found = re.search(r'GLOBAL (\S+)', str(e))
        if found is None:  # a bad opcode: garbage or a crafted stream
            raise pickle.UnpicklingError(
                f'Refused to load checkpoint {filename}: it is corrupt, not '
                'a torch checkpoint, or holds something '
                'torch.load(weights_only=True) does not allow; nothing in it '
                f'was executed ({_weights_only_reason(e)})') from e
        raise pickle.UnpicklingError(
            f'Refused to load checkpoint {filename}: it holds the global '
            f'{found.group(1)}, which torch.load(weights_only=True) does not '
            'allow (mmmsl.utils.compat allow-lists only what mmengine '
            'checkpoints '
            'need). Nothing in it was executed. Do not allow-list it or load '
            'it with weights_only=False unless you trust where the file '
            'comes from.') from e
    except (RuntimeError, EOFError, KeyError) as e:
        text = str(e)
        if isinstance(e, RuntimeError) and not any(
                s in text for s in ('PytorchStreamReader', 'zip archive',
                                    'central directory', 'magic number')):
            raise
        raise RuntimeError(
            f'Checkpoint {filename} is truncated or not a torch checkpoint '
            f'({type(e).__name__}: {text.splitlines()[0] if text else ""}). '
            'A run killed while saving with mmengine\'s plain CheckpointHook '
            'leaves such a file: delete it and resume from the previous '
            'checkpoint (AtomicCheckpointHook never leaves one).') from e


def _weights_only_reason(e: Exception) -> str:
    """The part of torch's weights_only message that says what failed."""
    text = str(e)
    tag = 'WeightsUnpickler error:'
    if tag in text:
        text = text[text.index(tag) + len(tag):]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


register_safe_globals()
CheckpointLoader.register_scheme(prefixes='', loader=load_from_local,
                                 force=True)
