"""The channels_last (NHWC) memory layout, from a config."""
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS


def to_channels_last(model: nn.Module) -> nn.Module:
    """Put ``model``'s 4-d weights and every batch its data preprocessor
    returns in the channels_last layout (in place; returns ``model``)."""
    model.to(memory_format=torch.channels_last)
    pre = getattr(model, 'data_preprocessor', None)
    if pre is None or getattr(pre, '_mmmsl_channels_last', False):
        return model
    forward = pre.forward

    def channels_last_forward(data, training=False):
        out = forward(data, training)
        if isinstance(out.get('inputs'), torch.Tensor) and \
                out['inputs'].dim() == 4:
            out['inputs'] = out['inputs'].contiguous(
                memory_format=torch.channels_last)
        return out

    pre.forward = channels_last_forward
    pre._mmmsl_channels_last = True
    return model


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Run the model in the channels_last memory layout.

    On CUDA, convolutions in NHWC use the tensor cores best, above all with
    AMP (``--amp``). Add ``custom_hooks = [dict(type='ChannelsLastHook')]``.
    The model and each preprocessed batch (so the masked batch of
    :class:`MaskedSupervisedClassifier` too) are converted before the run.
    mmengine wraps the model for DDP before any hook runs, so under DDP the
    parameters change layout after wrapping: correct, though PyTorch may
    warn that gradient strides differ from its bucket views.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        model = runner.model
        to_channels_last(model.module if is_model_wrapper(model) else model)
