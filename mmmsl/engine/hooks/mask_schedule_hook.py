"""Change the masking level (ratio bin, probability, family weights) and
MSL's loss weights during training: dynamic masked supervision."""
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS

from ...datasets.transforms.irregular_mask import IrregularMask
from ..schedulers.mask_level import PARAMS, LevelRule

MASK_PARAMS = ('ratio', 'prob', 'weights')
ALPHA_NAMES = ('alpha_clean', 'alpha_masked', 'alpha_consistency')


def find_irregular_masks(dataset) -> List:
    """Every ``IrregularMask`` in a dataset's pipeline (through dataset
    wrappers and nested transform lists, as ``SwitchRecipeHook`` walks
    them)."""
    found = []

    def walk(transforms):
        for t in transforms:
            if isinstance(t, IrregularMask):
                found.append(t)
            walk(getattr(t, 'transforms', None) or [])

    def visit(ds):
        if hasattr(ds, 'pipeline'):
            walk(getattr(ds.pipeline, 'transforms', None) or [])
        elif hasattr(ds, 'datasets'):
            for d in ds.datasets:
                visit(d)
        elif hasattr(ds, 'dataset'):
            visit(ds.dataset)

    visit(dataset)
    return found


def _short(value) -> str:
    """A level for the log: 4 significant digits, ``(0.3, 0.08, 0.2)``
    rather than ``(0.3, 0.08000000000000002, 0.2)``."""
    if isinstance(value, (tuple, list)):
        return '(' + ', '.join(f'{v:.4g}' for v in value) + ')'
    return f'{value:.4g}'


@HOOKS.register_module()
class MaskScheduleHook(Hook):
    """Change the masking level and MSL's ``alpha`` by epoch or iteration.

    Each argument is a rule (:class:`~mmmsl.engine.schedulers.mask_level.
    LevelRule`): ``dict(values=[start, end], mode='linear' | 'cosine',
    by='epoch' | 'iter', begin=0, end=None, levels=None)`` or
    ``dict(values=[v0, v1, ...], mode='step', milestones=[m1, ...])``.
    ``end=None`` is the last epoch (iteration) of training, so
    ``dict(values=('low', 'high'))`` goes from the ``low`` bin in the first
    epoch to ``high`` in the last.

    - ``ratio``: the hole-ratio bin of every ``IrregularMask`` of the train
      pipeline and of the model's ``mask_source`` (both ends interpolated;
      a linear / cosine rule is quantised to ``levels`` bins, default 5,
      each bin's bank built once, before training).
    - ``prob``: their probability of masking a sample.
    - ``weights``: the family weights of their mixture source.
    - ``alpha``: the model's ``(a1, a2, a3)``, e.g. the masked terms ramped
      in: ``dict(values=[(0.3, 0, 0), (0.3, 0.2, 0.5)], end=20)``.

    The mask level reaches the dataloader's workers through shared memory
    (:class:`~mmmsl.masks.scheduled.ScheduledSource`), also persistent and
    spawned ones: a per-epoch change is exact (it is written before the
    epoch's first batch is asked for); a per-iteration one reaches a batch
    up to ``prefetch_factor * num_workers`` iterations late (the batches the
    loader has prepared already). ``alpha`` is set on the model before each
    iteration (exact). The current values are logged as scalars
    ``mask_ratio_lo``, ``mask_ratio_hi``, ``mask_prob``, ``mask_weight_{i}``
    and ``alpha_clean``, ``alpha_masked``, ``alpha_consistency`` every
    iteration (``{i}``: the mixture's family name, e.g.
    ``mask_weight_perlin``; so in every log line and in the json log of
    each epoch) and
    as one line per epoch. A resumed run continues at the resumed step (the
    rules are functions of the step: no state).

    Errors (raised when the hook is built or in ``before_train``, naming
    the key): an unknown parameter or rule key, a value out of range (a
    ratio bin, a probability, a weight, an all-zero ``alpha``), steps that
    the training never reaches, ``by='epoch'`` without an epoch-based loop,
    a mask rule without an ``IrregularMask`` in the train pipeline and
    without a model ``mask_source``, ``weights`` without a mixture,
    ``ratio`` for a bank file (one fixed bin) and ``alpha`` for a model
    without one.

    Args:
        ratio (dict, optional): Rule of the ratio bin.
        prob (dict, optional): Rule of the masking probability.
        weights (dict, optional): Rule of the mixture's family weights.
        alpha (dict, optional): Rule of the model's ``alpha``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 ratio: Optional[dict] = None,
                 prob: Optional[dict] = None,
                 weights: Optional[dict] = None,
                 alpha: Optional[dict] = None,
                 **unknown):
        if unknown:
            raise ValueError(f'MaskScheduleHook: unknown parameter(s) '
                             f'{sorted(unknown)}; expected some of '
                             f'{tuple(PARAMS)}')
        given = dict(ratio=ratio, prob=prob, weights=weights, alpha=alpha)
        self.rules = {
            name: LevelRule.from_cfg(name, cfg)
            for name, cfg in given.items() if cfg is not None
        }
        if not self.rules:
            raise ValueError('MaskScheduleHook: no rule; give some of '
                             f'{tuple(PARAMS)}')
        self.targets = []  # IrregularMask transforms and the model

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def _targets(self, runner) -> list:
        """``(name, set_level, owner, attribute of its source)`` of
        everything the mask rules act on; checked against the rules."""
        targets = []
        dataset = runner.train_dataloader.dataset
        for i, t in enumerate(find_irregular_masks(dataset)):
            targets.append((f'train pipeline IrregularMask #{i}',
                            t.set_level, t, 'source'))
        model = self._model(runner)
        if getattr(model, 'mask_source', None) is not None:
            targets.append(('model.mask_source', model.set_mask_level, model,
                            'mask_source'))
        used = [n for n in MASK_PARAMS if n in self.rules]
        if used and not targets:
            raise ValueError(
                f'MaskScheduleHook: {", ".join(used)} rule(s) but the train '
                f'dataset ({type(dataset).__name__}) has no IrregularMask in '
                'its pipeline and the model no mask_source: nothing to '
                'schedule')
        rule = self.rules.get('weights')
        for name, _, owner, attr in targets if rule else []:
            source = getattr(owner, attr)
            n = getattr(source, 'weights', None)
            n = 0 if n is None else len(n)
            if not n:
                raise ValueError(
                    f'MaskScheduleHook: weights rule, but the {name} source '
                    f'({type(source).__name__}) is not a mixture of families')
            if len(rule.values[0]) != n:
                raise ValueError(
                    f'MaskScheduleHook: weights.values have '
                    f'{len(rule.values[0])} weights, the {name} mixture has '
                    f'{n} families')
        if 'alpha' in self.rules and not hasattr(model, 'alpha'):
            raise ValueError(
                f'MaskScheduleHook: alpha rule, but the model '
                f'({type(model).__name__}) has no alpha; use '
                "model.type='MaskedSupervisedClassifier'")
        return targets

    def _resolve(self, runner) -> None:
        loop = runner.train_loop
        epochs = isinstance(loop, EpochBasedTrainLoop)
        for rule in self.rules.values():
            if rule.by == 'epoch' and not epochs:
                raise ValueError(
                    f"MaskScheduleHook: {rule.name}.by='epoch' needs an "
                    f'epoch-based train loop, not {type(loop).__name__}; use '
                    "by='iter'")
            rule.resolve(loop.max_epochs if rule.by == 'epoch' else
                         loop.max_iters)

    def before_train(self, runner) -> None:
        self._resolve(runner)
        self.targets = self._targets(runner)
        self._levels = {}
        if 'weights' in self.rules:  # the families' names, for the log
            _, _, owner, attr = self.targets[0]
            names = list(getattr(getattr(owner, attr), 'names', None) or [])
            n = len(self.rules['weights'].values[0])
            self._names = names if len(names) == n else list(range(n))
        ratio = self.rules.get('ratio')
        masked = any(n in self.rules for n in MASK_PARAMS)
        for name, set_level, owner, attr in self.targets if masked else []:
            try:
                set_level(**self._values(runner, MASK_PARAMS))
                if ratio is not None:  # every bin's source, before workers
                    getattr(owner, attr).prebuild(ratio.table())
            except ValueError as e:
                raise ValueError(f'MaskScheduleHook: ratio / prob / weights '
                                 f'for the {name}: {e}') from e
        loader = runner.train_dataloader
        if getattr(loader, '_iterator', None) is not None:
            loader._iterator = None  # persistent workers restart on the new
            # sources (as SwitchRecipeHook does)
        self._apply(runner, self.rules)
        runner.logger.info('MaskScheduleHook: ' + '; '.join(
            map(repr, self.rules.values())))

    def _values(self, runner, names) -> dict:
        out = {}
        for name in names:
            rule = self.rules.get(name)
            if rule is not None:
                value = rule(runner.epoch if rule.by == 'epoch' else
                             runner.iter)
                out[name] = value[0] if name == 'prob' else value
        return out

    def _apply(self, runner, rules) -> None:
        """Set the values of ``rules`` at the current step; log them all."""
        values = self._values(runner, [r.name for r in rules.values()])
        masks = {n: v for n, v in values.items() if n in MASK_PARAMS}
        if masks and any(self._levels.get(n) != v for n, v in masks.items()):
            for _, set_level, _, _ in self.targets:
                set_level(**masks)
        self._levels.update(values)
        if 'alpha' in values:
            self._model(runner).alpha = tuple(values['alpha'])
        self._log(runner)

    def _log(self, runner) -> None:
        hub = runner.message_hub
        for name, value in self._levels.items():
            if name == 'ratio':
                hub.update_scalar('train/mask_ratio_lo', value[0])
                hub.update_scalar('train/mask_ratio_hi', value[1])
            elif name == 'prob':
                hub.update_scalar('train/mask_prob', value)
            elif name == 'weights':
                for family, w in zip(self._names, value):
                    hub.update_scalar(f'train/mask_weight_{family}',
                                      w / sum(value))
            else:
                for key, a in zip(ALPHA_NAMES, value):
                    hub.update_scalar(f'train/{key}', a)

    def before_train_epoch(self, runner) -> None:
        # All rules: a per-iteration one takes its value of the coming
        # iteration (runner.iter), as before_train_iter sets it.
        self._apply(runner, self.rules)
        runner.logger.info(f'MaskScheduleHook: epoch {runner.epoch + 1}: ' +
                           ', '.join(f'{n}={_short(v)}'
                                     for n, v in self._levels.items()))

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        rules = {n: r for n, r in self.rules.items() if r.by == 'iter'}
        self._apply(runner, rules)
