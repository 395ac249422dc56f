"""A mask source whose level (ratio bin, probability, mixture weights) can be
changed while dataloader workers use it."""
import copy
import multiprocessing as mp
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from .ratio import RatioSpec, parse_ratio

_VERSION, _LO, _HI, _PROB, _WEIGHTS = 0, 1, 2, 3, 4


class ScheduledSource:
    """Wraps a mask source so that its level follows a value in shared
    memory, written by the main process and read by every copy of the
    source: the dataloader workers' (forked or spawned, persistent or not)
    included.

    The level is ``(ratio bin, prob, weights)``, a few float64 in a
    ``multiprocessing`` shared array with a version counter (a writer marks
    it odd while writing; a reader copies when it sees a new even version,
    so a level is never read half-written). Every :meth:`sample` checks the
    counter (one read); on a change the copy switches to the source of the
    new bin, made by ``factory(ratio=bin)`` on first use and kept (a bank is
    built once per bin per process; :meth:`prebuild` makes them in the main
    process before the workers start, so forked workers inherit them and
    spawned ones load them from the bank cache), and sets the new
    ``weights`` on it. With probability ``1 - prob`` a sample has no holes.
    A ``copy.deepcopy`` gets a level of its own (equal to this one's at the
    time of the copy).

    A level set while workers run reaches the samples those workers
    transform after the write: a loader's batches already prepared (up to
    ``prefetch_factor * num_workers``) keep the level they were made with.

    Args:
        factory (Callable): ``factory(ratio=(lo, hi))`` -> a mask source
            (``sample(height, width, rng, ...)``), e.g. a
            ``functools.partial`` of :func:`build_mask_source` (picklable,
            for spawned workers).
        base: The source in use now, kept as the source of its ``ratio``.
        ratio (str | Sequence[float], optional): ``base``'s bin (None:
            ``base.ratio``).
        prob (float): Probability of masking a sample. Defaults to 1.
    """

    def __init__(self,
                 factory: Callable,
                 base,
                 ratio: Optional[RatioSpec] = None,
                 prob: float = 1.0):
        if ratio is None:
            ratio = base.ratio
        ratio = tuple(float(v) for v in parse_ratio(ratio))
        weights = getattr(base, 'weights', None)
        self.num_weights = 0 if weights is None else len(weights)
        self.factory = factory
        # Shared by inheritance (fork) or pickled as a handle (spawn).
        self._shared = mp.RawArray('d', _WEIGHTS + self.num_weights)
        self._sources = {ratio: base}
        self._view = None
        self._seen = -1.0
        self._write(ratio, prob, weights)

    @property
    def view(self) -> np.ndarray:
        """The shared level as a float64 array ``[version, lo, hi, prob,
        *weights]``."""
        if self._view is None:
            self._view = np.frombuffer(self._shared, dtype=np.float64)
        return self._view

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_view'] = None  # rebuilt on the shared array
        # A spawned copy makes its sources again (a bank loads from the
        # cache): keep only the current one, not every bin's bank.
        state['_sources'] = {self.ratio: self._current}
        return state

    def __deepcopy__(self, memo) -> 'ScheduledSource':
        # A copy of its own (its own shared level, equal to this one's now).
        self._sync()
        new = type(self)(copy.deepcopy(self.factory, memo),
                         copy.deepcopy(self._current, memo), self.ratio,
                         self.prob)
        if self.num_weights:
            new.set(weights=self.weights)
        return new

    def __getattr__(self, name: str):
        # Attributes of the current source (e.g. a bank's ``size``).
        if name.startswith('_'):
            raise AttributeError(name)
        self._sync()
        return getattr(self._current, name)

    @property
    def level(self) -> dict:
        """The current level: ``ratio``, ``prob`` and ``weights``."""
        self._sync()
        return dict(ratio=self.ratio, prob=self.prob, weights=self.weights)

    def source(self, ratio: RatioSpec):
        """The source of bin ``ratio``, made on first use."""
        key = tuple(float(v) for v in parse_ratio(ratio))
        src = self._sources.get(key)
        if src is None:
            src = self._sources[key] = self.factory(ratio=key)
            n = getattr(src, 'weights', None)
            n = 0 if n is None else len(n)
            if n != self.num_weights:
                raise ValueError(
                    f'ScheduledSource: the source of ratio {key} has {n} '
                    f'mixture weights, the first one {self.num_weights}')
        return src

    def prebuild(self, ratios: Iterable[RatioSpec]) -> None:
        """Make the sources of these bins now (e.g. before the workers
        start)."""
        for r in ratios:
            self.source(r)

    def set(self,
            ratio: Optional[RatioSpec] = None,
            prob: Optional[float] = None,
            weights: Optional[Sequence[float]] = None) -> None:
        """Change the level (None: keep); only the main process writes."""
        self._sync()
        if ratio is not None:
            ratio = tuple(float(v) for v in parse_ratio(ratio))
            self.source(ratio)  # fails here, not in a worker
        if prob is not None and not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f'ScheduledSource: prob={prob!r} not in [0, 1]')
        if weights is not None:
            if not self.num_weights:
                raise ValueError('ScheduledSource: weights given, but the '
                                 'source is not a mixture')
            if len(weights) != self.num_weights:
                raise ValueError(f'ScheduledSource: weights={weights!r}: '
                                 f'expected {self.num_weights} values')
        self._write(self.ratio if ratio is None else ratio,
                    self.prob if prob is None else prob,
                    self.weights if weights is None else weights)

    def _write(self, ratio, prob, weights) -> None:
        view = self.view
        version = view[_VERSION]
        view[_VERSION] = version + 1  # odd: being written
        view[_LO], view[_HI] = ratio
        view[_PROB] = float(prob)
        if self.num_weights:
            w = np.asarray(weights, np.float64)
            view[_WEIGHTS:] = w / w.sum()
        view[_VERSION] = version + 2
        self._sync()

    def _sync(self) -> None:
        view = self.view
        if view[_VERSION] == self._seen:
            return
        while True:  # a seqlock read: retry while the writer is at work
            version = view[_VERSION]
            level = view.copy()
            if version % 2 == 0 and view[_VERSION] == version:
                break
        self.ratio = (float(level[_LO]), float(level[_HI]))
        self.prob = float(level[_PROB])
        self._current = self.source(self.ratio)
        if self.num_weights:
            self.weights = [float(w) for w in level[_WEIGHTS:]]
            self._current.weights = list(self.weights)
        else:
            self.weights = None
        self._seen = version

    def sample(self, height: int, width: int, rng: np.random.Generator,
               *args, **kwargs) -> np.ndarray:
        """A ``(height, width)`` uint8 hole mask of the current level: no
        holes with probability ``1 - prob`` (one ``rng.random()`` draw, as
        :class:`mmmsl.datasets.IrregularMask` does), else the current
        bin's source's ``sample(height, width, rng, *args, **kwargs)``."""
        self._sync()
        if self.prob < 1.0 and rng.random() >= self.prob:
            return np.zeros((height, width), np.uint8)
        return self._current.sample(height, width, rng, *args, **kwargs)

    def __repr__(self) -> str:
        self._sync()
        return (f'{type(self).__name__}(ratio={self.ratio}, prob={self.prob}'
                f', weights={self.weights}, source={self._current!r})')
