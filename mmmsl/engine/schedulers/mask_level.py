"""Schedule rules of the masking level: a value by epoch or iteration,
linear, cosine or in steps (pure functions, used by ``MaskScheduleHook``)."""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ...masks import parse_ratio

MODES = ('linear', 'cosine', 'step')
BY = ('epoch', 'iter')
RULE_KEYS = ('values', 'mode', 'by', 'begin', 'end', 'milestones', 'levels')
#: Default number of ratio bins of a linear / cosine ratio rule: each bin is
#: one mask bank, built once (see ``MaskScheduleHook``).
RATIO_LEVELS = 5

Value = Tuple[float, ...]


def _weights(v, n: Optional[int] = None) -> Value:
    try:
        w = tuple(float(x) for x in v)
    except (TypeError, ValueError):
        w = ()
    if not w or not all(math.isfinite(x) and x >= 0 for x in w) or not any(
            w) or (n is not None and len(w) != n):
        size = '' if n is None else f'{n} '
        raise ValueError(f'expected {size}finite non-negative weights, '
                         'not all zero')
    return w


def _ratio(v) -> Value:
    return parse_ratio(tuple(v) if isinstance(v, list) else v)


def _prob(v) -> Value:
    try:
        p = float(v)
    except (TypeError, ValueError):
        p = math.nan
    if not 0.0 <= p <= 1.0:
        raise ValueError('expected a probability in [0, 1]')
    return (p, )


#: How each parameter's values are checked and turned into float tuples.
PARAMS: Dict[str, Callable[..., Value]] = dict(
    ratio=_ratio,
    prob=_prob,
    weights=_weights,
    alpha=lambda v: _weights(v, 3))


def _int(name: str, key: str, v, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f'MaskScheduleHook: {name}.{key}={v!r}: expected an '
                         f'int >= {low}')
    return v


class LevelRule:
    """One parameter's value as a function of the epoch or iteration.

    ``mode='linear'`` or ``'cosine'`` goes from ``values[0]`` (up to step
    ``begin``) to ``values[1]`` (from step ``end`` on); in between the
    fraction ``t = (step - begin) / (end - begin)`` is used as it is
    (linear) or as ``(1 - cos(pi * t)) / 2`` (cosine: slow at both ends),
    and every component of the value (e.g. a ratio bin's ``lo`` and ``hi``)
    is interpolated. With ``levels=L`` the fraction is rounded to one of
    ``L`` evenly spaced values first, so the rule takes at most ``L``
    distinct values (:meth:`table`); ratio rules always do (default
    :data:`RATIO_LEVELS`), so that each bin's mask bank is built once.
    ``mode='step'`` takes ``values[i]`` from step ``milestones[i - 1]`` on.

    Steps count from 0: the epoch (``runner.epoch``) or the iteration
    (``runner.iter``) about to run.

    Args:
        name (str): The parameter, one of :data:`PARAMS` (``ratio``: bins
            as ``'low'``, ``'high'`` or ``(lo, hi)``; ``prob``: a number
            in [0, 1]; ``weights``: a mixture's family weights; ``alpha``:
            ``(a1, a2, a3)``, not all zero).
        values (Sequence): Two values (linear, cosine) or one more than the
            milestones (step).
        mode (str): ``'linear'`` (default), ``'cosine'`` or ``'step'``.
        by (str): ``'epoch'`` (default) or ``'iter'``.
        begin (int): First step of the change. Defaults to 0.
        end (int, optional): Step from which the value is ``values[1]``.
            None (default): the last step of training (set by
            :meth:`resolve`).
        milestones (Sequence[int]): Steps where a step rule moves on
            (increasing, >= 1).
        levels (int, optional): Quantise a linear or cosine rule to this
            many values (>= 2).
    """

    def __init__(self,
                 name: str,
                 values: Sequence,
                 mode: str = 'linear',
                 by: str = 'epoch',
                 begin: Optional[int] = None,
                 end: Optional[int] = None,
                 milestones: Optional[Sequence[int]] = None,
                 levels: Optional[int] = None):
        if name not in PARAMS:
            raise ValueError(f'MaskScheduleHook: unknown parameter {name!r}; '
                             f'expected some of {tuple(PARAMS)}')
        self.name = name
        if mode not in MODES:
            raise ValueError(f'MaskScheduleHook: {name}.mode={mode!r} not in '
                             f'{MODES}')
        if by not in BY:
            raise ValueError(f'MaskScheduleHook: {name}.by={by!r} not in {BY}')
        self.mode, self.by = mode, by
        if isinstance(values, (str, bytes)) or not isinstance(
                values, Sequence):
            raise ValueError(f'MaskScheduleHook: {name}.values={values!r}: '
                             'expected a list of values')
        self.values = [self._parse(i, v) for i, v in enumerate(values)]
        if name == 'weights' and len({len(v) for v in self.values}) > 1:
            raise ValueError(f'MaskScheduleHook: weights.values={values!r}: '
                             'every value needs the same number of weights')
        if mode == 'step':
            unused = dict(begin=begin, end=end, levels=levels)
            for key, v in unused.items():
                if v is not None:
                    raise ValueError(f'MaskScheduleHook: {name}.{key} is not '
                                     "used with mode='step' (give "
                                     'milestones)')
            ms = [_int(name, 'milestones', m, 1) for m in milestones or []]
            if any(b <= a for a, b in zip(ms, ms[1:])):
                raise ValueError(f'MaskScheduleHook: {name}.milestones={ms} '
                                 'must increase')
            if len(self.values) != len(ms) + 1:
                raise ValueError(
                    f'MaskScheduleHook: {name}: {len(self.values)} values for '
                    f'{len(ms)} milestones; a step rule needs one value more '
                    'than milestones')
            self.milestones, self.begin, self.end = ms, None, None
            self.levels = None
            return
        if milestones is not None:
            raise ValueError(f'MaskScheduleHook: {name}.milestones is only '
                             "used with mode='step'")
        if len(self.values) != 2:
            raise ValueError(f'MaskScheduleHook: {name}: mode={mode!r} needs '
                             f'two values (start, end), got {len(values)}')
        self.milestones = None
        self.begin = _int(name, 'begin', 0 if begin is None else begin, 0)
        self.end = None if end is None else _int(name, 'end', end, 1)
        if self.end is not None and self.end <= self.begin:
            raise ValueError(f'MaskScheduleHook: {name}: end={self.end} must '
                             f'be after begin={self.begin}')
        if levels is None and name == 'ratio':
            levels = RATIO_LEVELS
        self.levels = None if levels is None else _int(name, 'levels',
                                                       levels, 2)

    def _parse(self, i: int, v) -> Value:
        try:
            return PARAMS[self.name](v)
        except ValueError as e:
            msg = str(e).replace(f'ratio={v!r}: ', '')
            raise ValueError(f'MaskScheduleHook: {self.name}.values[{i}]='
                             f'{v!r}: {msg}') from None

    @classmethod
    def from_cfg(cls, name: str, cfg: dict) -> 'LevelRule':
        """A rule from its config dict; unknown keys are an error."""
        if not isinstance(cfg, dict):
            raise ValueError(f'MaskScheduleHook: {name}={cfg!r}: expected a '
                             'dict(values=..., mode=..., by=...)')
        bad = sorted(set(cfg) - set(RULE_KEYS))
        if bad:
            raise ValueError(f'MaskScheduleHook: {name}: unknown key(s) '
                             f'{bad}; expected some of {RULE_KEYS}')
        if 'values' not in cfg:
            raise ValueError(f'MaskScheduleHook: {name} needs values=[...]')
        return cls(name, **cfg)

    def resolve(self, total: int) -> 'LevelRule':
        """Check the steps against a training of ``total`` steps (epochs or
        iterations, as ``by``) and set ``end=None`` to its last step."""
        last = total - 1
        where = f'training has {total} {self.by}s (0..{last})'
        for m in self.milestones or []:
            if m > last:
                raise ValueError(f'MaskScheduleHook: {self.name}.milestones '
                                 f'has {m}, never reached: {where}')
        if self.mode == 'step':
            return self
        if self.end is None:
            if self.begin >= last:
                raise ValueError(f'MaskScheduleHook: {self.name}.begin='
                                 f'{self.begin} leaves no room: {where}')
            self.end = last
        elif self.end > last:
            raise ValueError(f'MaskScheduleHook: {self.name}.end={self.end} '
                             f'is never reached: {where}; use end=None for '
                             'the last one')
        return self

    def fraction(self, step: int) -> float:
        """How far a linear or cosine rule is at ``step``, in [0, 1] (after
        the curve and the rounding to ``levels``)."""
        if self.end is None:
            raise RuntimeError(f'MaskScheduleHook: {self.name}: call '
                               'resolve(total) first (end=None)')
        t = min(max((step - self.begin) / (self.end - self.begin), 0.0), 1.0)
        if self.mode == 'cosine':
            t = (1.0 - math.cos(math.pi * t)) / 2.0
        if self.levels is not None:
            t = math.floor(t * (self.levels - 1) + 0.5) / (self.levels - 1)
        return t

    def _mix(self, t: float) -> Value:
        a, b = self.values
        return tuple((1.0 - t) * x + t * y for x, y in zip(a, b))

    def __call__(self, step: int) -> Value:
        """The value at ``step`` (a tuple of floats)."""
        if self.mode == 'step':
            return self.values[sum(step >= m for m in self.milestones)]
        return self._mix(self.fraction(step))

    def table(self) -> Optional[List[Value]]:
        """Every value the rule takes (None: continuous, no ``levels``)."""
        if self.mode == 'step':
            return list(dict.fromkeys(self.values))
        if self.levels is None:
            return None
        return list(
            dict.fromkeys(
                self._mix(k / (self.levels - 1))
                for k in range(self.levels)))

    def __repr__(self) -> str:
        if self.mode == 'step':
            return (f'{self.name}: step by {self.by} {self.values} at '
                    f'{self.milestones}')
        return (f'{self.name}: {self.mode} by {self.by} {self.values[0]} -> '
                f'{self.values[1]} over [{self.begin}, {self.end}]' +
                (f' in {self.levels} levels' if self.levels else ''))
