"""ChannelsLastHook: the model and the batches it sees go NHWC."""
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmmsl  # noqa: F401
from conftest import tiny_msl_cfg


def test_channels_last_hook_converts_model_and_batches(voc_root, tmp_path):
    cfg = tiny_msl_cfg(voc_root, str(tmp_path / 'wd'), epochs=1)
    cfg['custom_hooks'] = [dict(type='ChannelsLastHook')]
    cfg['val_cfg'] = None
    cfg['val_dataloader'] = cfg['val_evaluator'] = None
    cfg['train_cfg'] = dict(by_epoch=True, max_epochs=1)
    runner = Runner.from_cfg(Config(cfg))
    layouts = []

    def record(module, args):
        layouts.append(args[0].is_contiguous(
            memory_format=torch.channels_last))

    runner.model.backbone.register_forward_pre_hook(record)
    runner.train()
    conv = runner.model.backbone.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert not conv.is_contiguous()  # really NHWC, not a 1x1 corner case
    # every backbone input, clean and masked, was NHWC
    assert layouts and all(layouts)
    assert torch.isfinite(conv).all()
