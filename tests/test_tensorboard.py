"""TensorBoard logging is one config line (docs/get_started.md): a short
training run with it writes an event file holding the losses."""
import argparse
import glob
import os.path as osp

import pytest
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mmmsl  # noqa: F401
from conftest import make_voc, tiny_msl_cfg

pytest.importorskip('tensorboard')

# The documented line (docs/get_started.md, "Train and test").
VISUALIZER = dict(type='UniversalVisualizer', vis_backends=[
    dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
# The documented --cfg-options alternative on a config of ours.
CFG_OPTIONS = 'visualizer.vis_backends.0.type=TensorboardVisBackend'


def event_tags(event_file):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    acc = EventAccumulator(event_file)
    acc.Reload()
    return set(acc.Tags()['scalars'])


def test_tensorboard_backend_writes_losses(tmp_path):
    root = str(tmp_path / 'VOC2007')
    make_voc(root, num_train=8, num_test=4)
    cfg = tiny_msl_cfg(root, str(tmp_path / 'wd'), epochs=1)
    cfg['train_cfg']['val_interval'] = 10  # no validation run
    cfg['visualizer'] = VISUALIZER
    Runner.from_cfg(Config(cfg)).train()
    events = glob.glob(str(tmp_path / 'wd' / '*' / 'vis_data' /
                           'events.out.tfevents.*'))
    assert len(events) == 1, events
    tags = event_tags(events[0])
    assert {'loss', 'loss_clean', 'loss_masked',
            'loss_consistency'} <= tags, tags
    # LocalVisBackend is kept beside it
    assert glob.glob(str(tmp_path / 'wd' / '*' / 'vis_data' / '*.json'))


def test_cfg_options_switch_a_shipped_config():
    p = argparse.ArgumentParser()
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(['--cfg-options', CFG_OPTIONS])
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    cfg = Config.fromfile(osp.join(repo, 'configs/msl/demo_digits.py'))
    cfg.merge_from_dict(args.cfg_options)
    assert [b['type'] for b in cfg.visualizer.vis_backends] == [
        'TensorboardVisBackend']
