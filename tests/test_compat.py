"""mmmsl.utils.compat: mmengine checkpoints under torch's
``weights_only=True``.

Crafted checkpoints are written with ``torch.save`` (a zip checkpoint, as
mmengine saves them) so that they go through ``torch.load``'s weights-only
unpickler, the way ``Runner.resume`` / ``load_checkpoint`` read them.
"""
import pickle
import pickletools
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader

import mmmsl  # noqa: F401  (registers mmmsl.utils.compat)
from mmmsl import compat


@pytest.fixture(autouse=True)
def keep_statistics_methods():
    """Whatever a test (or an unfixed compat) lets a checkpoint put into
    mmengine's process-wide ``HistoryBuffer._statistics_methods`` must not
    leak into other tests."""
    saved = dict(HistoryBuffer._statistics_methods)
    yield
    HistoryBuffer._statistics_methods.clear()
    HistoryBuffer._statistics_methods.update(saved)


def _globals_in(path):
    """(module, name) of every GLOBAL opcode in a torch zip checkpoint."""
    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist()
                           if n.endswith('/data.pkl')))
    return [tuple(arg.split(' ', 1)) for op, arg, _ in pickletools.genops(data)
            if op.name == 'GLOBAL']


# ------------------------------------------------------ crafted payloads
class _Widen:
    """Pickles as ``HistoryBuffer()`` with the BUILD state
    ``{'statistics_methods': {name: 0, ...}}``: mmengine's
    ``HistoryBuffer.__setstate__`` copies those names into the class-wide
    ``HistoryBuffer._statistics_methods`` while the checkpoint loads."""

    def __init__(self, *names):
        self.names = names

    def __reduce__(self):
        return HistoryBuffer, (), {
            'statistics_methods': {n: 0 for n in self.names}}


class _Shadow:
    """Pickles as a ``HistoryBuffer`` whose instance ``__dict__`` shadows
    the statistics method ``name`` with another allowed global."""

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __reduce__(self):
        return HistoryBuffer, (), {self.name: self.value}


class _GetAttr:
    """Pickles as ``builtins.getattr(obj, name)`` (a REDUCE of getattr)."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


class _Call:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


NOT_STATISTICS = ['__class__', '__init__', '__dict__', '__setstate__',
                  '_set_default_statistics', '_statistics_methods',
                  'register_statistics', 'statistics', 'update', 'data']


@pytest.mark.parametrize('name', NOT_STATISTICS)
def test_checkpoint_cannot_widen_the_getattr_allow_list(tmp_path, name):
    """Bug: the allowed names were read from
    ``HistoryBuffer._statistics_methods``, which the checkpoint being loaded
    updates first; so ``getattr(HistoryBuffer, '__class__')`` resolved, and
    the widened name stayed allowed for the rest of the process."""
    evil = str(tmp_path / 'widen.pth')
    # The list keeps the order: the HistoryBuffer (and its __setstate__) is
    # unpickled before the getattr.
    torch.save({'meta': {'note': [_Widen(name),
                                  _GetAttr(HistoryBuffer, name)]}}, evil)
    assert ('__builtin__', 'getattr') in _globals_in(evil)
    assert ('mmengine.logging.history_buffer',
            'HistoryBuffer') in _globals_in(evil)
    with pytest.raises(pickle.UnpicklingError) as err:
        CheckpointLoader.load_checkpoint(evil, map_location='cpu')
    msg = str(err.value)
    assert f'Refused to load checkpoint {evil}' in msg
    assert f'getattr(HistoryBuffer, {name!r})' in msg
    # A refused checkpoint leaves nothing of it in mmengine's class state...
    assert name not in HistoryBuffer._statistics_methods
    # ... and a second checkpoint that only calls getattr is refused too
    # (by both loaders), even with the name put back in by other means.
    plain = str(tmp_path / 'getattr.pth')
    torch.save({'meta': {'note': _GetAttr(HistoryBuffer, name)}}, plain)
    HistoryBuffer._statistics_methods[name] = 0
    for load in (compat.load_from_local, CheckpointLoader.load_checkpoint):
        with pytest.raises(pickle.UnpicklingError,
                           match=f'Refused to load checkpoint {plain}'):
            load(plain)
    with pytest.raises(pickle.UnpicklingError):
        compat.history_buffer_getattr(HistoryBuffer, name)


def test_checkpoint_cannot_shadow_a_statistics_method(tmp_path):
    """``getattr(buffer, 'min')`` on a HistoryBuffer whose crafted state
    holds ``min`` must not return that state's object."""
    evil = str(tmp_path / 'shadow.pth')
    torch.save({'meta': {'note': _GetAttr(_Shadow('min', np.ndarray), 'min')}},
               evil)
    with pytest.raises(pickle.UnpicklingError,
                       match=f'Refused to load checkpoint {evil}'):
        compat.load_from_local(evil)


def test_getattr_resolves_only_history_buffer_statistics():
    buffer = HistoryBuffer([1.0, 3.0], [1, 1])
    for name in ('min', 'max', 'mean', 'current'):
        assert compat.history_buffer_getattr(HistoryBuffer, name) is \
            HistoryBuffer.__dict__[name]
        method = compat.history_buffer_getattr(buffer, name)
        assert method.__self__ is buffer
        assert method.__func__ is HistoryBuffer.__dict__[name]
    assert compat.history_buffer_getattr(buffer, 'mean')() == 2.0
    for obj in (MessageHub, np, torch, object(), 'min'):
        with pytest.raises(pickle.UnpicklingError):
            compat.history_buffer_getattr(obj, 'min')
    for name in NOT_STATISTICS + ['__reduce_ex__', 'nonexistent']:
        for obj in (HistoryBuffer, buffer):
            with pytest.raises(pickle.UnpicklingError):
                compat.history_buffer_getattr(obj, name)


def test_message_hub_with_statistics_methods_round_trips(tmp_path):
    """A genuine mmengine message hub (HistoryBuffers pickle their
    ``statistics_methods`` with getattr) and a bound statistics method."""
    hub = MessageHub.get_instance('test_compat_save')
    hub.update_scalar('train/loss', 1.0)
    hub.update_scalar('train/loss', 3.0)
    hub.update_info('iter', 7)
    buffer = HistoryBuffer([2.0, 4.0], [1, 1])
    path = str(tmp_path / 'hub.pth')
    torch.save({'meta': {'epoch': 1, 'mean': buffer.mean},
                'message_hub': hub.state_dict()}, path)
    assert ('__builtin__', 'getattr') in _globals_in(path)
    before = dict(HistoryBuffer._statistics_methods)
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert HistoryBuffer._statistics_methods == before
    assert ckpt['meta']['mean']() == 3.0
    loaded = MessageHub.get_instance('test_compat_load')
    loaded.load_state_dict(ckpt['message_hub'])
    assert loaded.get_scalar('train/loss').mean() == 2.0
    assert loaded.get_scalar('train/loss').statistics('current') == 3.0
    assert loaded.get_info('iter') == 7


# ------------------------------------------------------ empty numpy arrays
DTYPES = ['float64', 'float32', 'float16', 'int64', 'int32', 'int8', 'uint8',
          'uint64', 'bool', 'complex64', 'complex128', 'U3', 'S2',
          'datetime64[s]', 'timedelta64[ms]', '>f8',
          [('a', 'f4'), ('b', 'i8')]]


def _arrays():
    out = {}
    for i, dt in enumerate(DTYPES):
        for shape in [(0, ), (0, 3), (2, 0), ()]:
            out[f'{i}{shape}'] = np.zeros(shape, dtype=dt)
        out[f'{i}full'] = np.ones((2, 3), dtype=dt)
    out['list'] = np.array([])
    out['fortran'] = np.zeros((0, 3), order='F')
    out['sliced'] = np.ones((4, 3))[:, :0]
    out['scalar'] = [np.float64(1.5), np.int64(-3), np.bool_(True),
                     np.float32(0.25), np.uint8(7)]
    return out


def _assert_same(loaded, saved):
    if isinstance(saved, list):
        assert len(loaded) == len(saved)
        for a, b in zip(loaded, saved):
            assert type(a) is type(b) and a == b
        return
    assert type(loaded) is np.ndarray
    # numpy's own pickle keeps the byte order's meaning, not its spelling
    assert loaded.dtype == saved.dtype.newbyteorder('=')
    assert loaded.shape == saved.shape
    np.testing.assert_array_equal(loaded, saved)


def test_empty_numpy_arrays_round_trip(tmp_path):
    """Bug: numpy pickles an empty array's data as ``bytes()``, i.e. a
    REDUCE of ``builtins.bytes``, which weights_only refused, so any
    checkpoint holding one (e.g. a never-updated HistoryBuffer) failed."""
    arrays = _arrays()
    empty = HistoryBuffer()  # its histories are np.array([]), float64
    hub = MessageHub.get_instance('test_compat_empty')
    hub.update_info('empty', np.zeros((0, 3), dtype=np.int64))
    path = str(tmp_path / 'empty.pth')
    torch.save({'meta': {'arrays': arrays, 'buffer': empty},
                'message_hub': hub.state_dict()}, path)
    assert ('__builtin__', 'bytes') in _globals_in(path)
    ckpt = compat.load_from_local(path)
    assert ckpt['meta']['arrays'].keys() == arrays.keys()
    for key, saved in arrays.items():
        _assert_same(ckpt['meta']['arrays'][key], saved)
    assert ckpt['meta']['buffer'].data[0].shape == (0, )
    assert ckpt['message_hub']['runtime_info']['empty'].shape == (0, 3)
    # mmengine's loader (the Runner's path) too
    ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    _assert_same(ckpt['meta']['arrays']['list'], arrays['list'])


@pytest.mark.parametrize('args', [(10, ), (b'abc', ), ('abc', 'utf-8'),
                                  ([1, 2], )])
def test_bytes_is_allowed_only_empty(tmp_path, args):
    """``builtins.bytes`` is mapped to a function that makes only ``b''``
    (what pickle protocol 2 writes for empty bytes), never ``bytes(n)``
    (an allocation of n bytes) or conversions."""
    path = str(tmp_path / 'bytes.pth')
    torch.save({'meta': {'b': _Call(bytes, *args)}}, path)
    assert ('__builtin__', 'bytes') in _globals_in(path)
    with pytest.raises(pickle.UnpicklingError,
                       match=f'Refused to load checkpoint {path}'):
        compat.load_from_local(path)
    torch.save({'meta': {'b': b'', 'c': b'xy'}}, path)
    assert compat.load_from_local(path)['meta'] == {'b': b'', 'c': b'xy'}
