"""The MSL / CSRA authors' learning-rate warm-up as an mmengine scheduler."""
from mmengine.optim.scheduler.lr_scheduler import LinearLR
from mmengine.optim.scheduler.param_scheduler import INF
from mmpretrain.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class LinearWarmUpLR(LinearLR):
    """Linear warm-up from 0, exactly as the authors' ``WarmUpLR``.

    The ``t``-th step after ``begin`` runs at ``base * (s + (e - s) * t / T)``
    with ``T = end - begin`` steps, ``s = start_factor`` (default 0) and
    ``e = end_factor`` (default 1), so the first iteration runs at 0 and the
    rate is ``e * base`` from step ``end`` on. With
    ``convert_to_iter_based=True`` and ``end=2`` (epochs) this is the MSL
    and CSRA code's warm-up, ``lr = base * t / (2 * iters_per_epoch)``.

    mmengine's :class:`~mmengine.optim.LinearLR` differs in two ways: its
    chainable form cannot start from 0 (the factor would stay 0), and it
    reaches ``end_factor`` at step ``end - 1``. The value here is computed
    from the initial rate (closed form), like the authors' scheduler, so
    within ``[begin, end]`` it overrides other schedulers' changes (a
    ``StepLR`` with ``step_size`` > warm-up length never acts there).

    Args:
        optimizer (Optimizer | OptimWrapper): The wrapped optimizer.
        start_factor (float): Factor of the first step. Defaults to 0.
        end_factor (float): Factor from step ``end`` on. Defaults to 1.
        begin (int): First step of the warm-up. Defaults to 0.
        end (int): Step at which the rate reaches ``end_factor * base``.
        **kwargs: ``last_step``, ``by_epoch``, ``verbose`` as LinearLR.
    """

    def __init__(self,
                 optimizer,
                 start_factor: float = 0.0,
                 end_factor: float = 1.0,
                 begin: int = 0,
                 end: int = INF,
                 **kwargs):
        # One step more than LinearLR, so that step `end` is still set.
        super().__init__(
            optimizer,
            start_factor=start_factor,
            end_factor=end_factor,
            begin=begin,
            end=end + 1,
            **kwargs)

    def _get_value(self):
        t = min(self.last_step, self.total_iters) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * t
        return [base * factor for base in self.base_values]
