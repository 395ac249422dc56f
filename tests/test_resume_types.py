"""An MSL run and its baseline twin never resume each other's checkpoints
(same state-dict keys: a strict load would succeed), while ``load_from``
across the two stays a feature."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmmsl  # noqa: F401
from conftest import tiny_msl_cfg
from mmmsl.engine import saved_model_type

TYPES = ('MaskedSupervisedClassifier', 'ImageClassifier')


def cfg_of(model_type, voc_root, wd, epochs=1, **kw):
    cfg = tiny_msl_cfg(voc_root, wd, epochs=epochs, **kw)
    cfg['model']['type'] = model_type
    cfg['model']['backbone'].update(base_channels=8, stem_channels=8)
    cfg['model']['head']['in_channels'] = 64
    cfg['custom_hooks'] = [dict(type='ModelTypeCheckHook')]
    cfg['val_dataloader'] = cfg['val_cfg'] = cfg['val_evaluator'] = None
    return Config(cfg)


@pytest.mark.parametrize('saved, resumed', [TYPES, TYPES[::-1]])
def test_resume_into_the_twin_is_refused_naming_both(voc_root, tmp_path,
                                                     saved, resumed):
    wd = str(tmp_path / 'wd')
    Runner.from_cfg(cfg_of(saved, voc_root, wd)).train()
    ckpt = osp.join(wd, 'epoch_1.pth')
    assert torch.load(ckpt, weights_only=True)['meta']['model_type'] == saved
    before = sorted(f for f in os.listdir(wd) if f.endswith('.pth'))
    runner = Runner.from_cfg(
        cfg_of(resumed, voc_root, wd, epochs=2, resume=True))
    with pytest.raises(RuntimeError) as err:
        runner.train()
    assert f'resume a {resumed} from a checkpoint saved by a {saved}' in str(
        err.value)
    # stopped before any iteration: nothing new or changed in the work dir
    assert runner.iter == 0 and runner.epoch == 0  # refused before restoring
    assert sorted(f for f in os.listdir(wd) if f.endswith('.pth')) == before


def test_resume_of_the_same_type_and_load_from_across_types(voc_root,
                                                            tmp_path):
    wd = str(tmp_path / 'msl')
    Runner.from_cfg(cfg_of(TYPES[0], voc_root, wd)).train()
    runner = Runner.from_cfg(
        cfg_of(TYPES[0], voc_root, wd, epochs=2, resume=True))
    runner.train()
    assert runner.epoch == 2
    # the baseline may start from the MSL weights (not a resume)
    other = str(tmp_path / 'baseline')
    cfg = cfg_of(TYPES[1], voc_root, other)
    cfg.load_from = osp.join(wd, 'epoch_2.pth')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.epoch == 1 and osp.isfile(osp.join(other, 'epoch_1.pth'))


def test_checkpoint_without_model_type_is_read_from_its_config():
    """Checkpoints written before the hook: mmengine's stored config text."""
    text = Config(dict(model=dict(type='mmpretrain.ImageClassifier'))
                  ).pretty_text
    assert saved_model_type(dict(meta=dict(cfg=text))) == 'ImageClassifier'
    assert saved_model_type(
        dict(meta=dict(model_type='MaskedSupervisedClassifier',
                       cfg=text))) == 'MaskedSupervisedClassifier'
    assert saved_model_type(dict(meta=dict())) is None
    assert saved_model_type(dict(meta=dict(cfg='not python ('))) is None
