"""End to end through mmengine's Runner on a tiny VOC fixture (CPU)."""
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmmsl  # noqa: F401
from conftest import tiny_msl_cfg


@pytest.fixture
def trained(voc_root, tmp_path):
    """Train 1 epoch, then resume to 2: returns (work_dir, metrics)."""
    wd = str(tmp_path / 'wd')
    # Distinct experiment names: two runners built within the same second
    # would otherwise share mmengine's MessageHub instance (its name is the
    # timestamp) and the resumed run would read the first one's history too.
    Runner.from_cfg(Config(dict(tiny_msl_cfg(voc_root, wd, epochs=1),
                                experiment_name='first'))).train()
    assert osp.isfile(osp.join(wd, 'epoch_1.pth'))
    runner = Runner.from_cfg(Config(dict(
        tiny_msl_cfg(voc_root, wd, epochs=2, resume=True),
        experiment_name='resumed')))
    runner.train()
    return wd, runner


def test_train_eval_checkpoint_resume(trained):
    wd, runner = trained
    # Resumed from epoch 1 under torch's weights_only default: it ran only
    # the second epoch and carried the first one's log history over.
    assert runner.epoch == 2 and runner.iter == 6  # 12 images / batch 4
    assert osp.isfile(osp.join(wd, 'epoch_2.pth'))
    hub = runner.message_hub
    for key in ('train/loss_clean', 'train/loss_masked',
                'train/loss_consistency'):
        assert hub.get_scalar(key).data[0].size == 6
    ckpt = torch.load(osp.join(wd, 'epoch_2.pth'), weights_only=True)
    assert ckpt['meta']['epoch'] == 2
    metrics = runner.val()
    assert 0.0 < metrics['multi-label/mAP'] <= 100.0


def test_checkpoint_serves_plain_classifier_and_inferencer(trained, voc_root):
    from mmpretrain import ImageClassificationInferencer
    from mmpretrain.models import ImageClassifier
    from mmpretrain.registry import MODELS
    wd, runner = trained
    cfg = Config(tiny_msl_cfg(voc_root, wd))
    plain_cfg = cfg.model.copy()
    plain_cfg.type = 'ImageClassifier'
    ckpt = osp.join(wd, 'epoch_2.pth')
    state = torch.load(ckpt, weights_only=True)['state_dict']
    plain = MODELS.build(plain_cfg)
    assert isinstance(plain, ImageClassifier)
    plain.load_state_dict(state, strict=True)
    cfg.model = plain_cfg
    cfg.test_dataloader = cfg.val_dataloader
    inferencer = ImageClassificationInferencer(
        model=cfg, pretrained=ckpt, device='cpu')
    item = runner.val_dataloader.dataset[0]
    out = inferencer(item['data_samples'].img_path)[0]
    msl = runner.model.eval()
    data = msl.data_preprocessor(
        dict(inputs=[item['inputs']], data_samples=[item['data_samples']]))
    with torch.no_grad():
        ref = msl.predict(data['inputs'])[0].pred_score
    torch.testing.assert_close(torch.as_tensor(out['pred_scores']), ref,
                               rtol=1e-5, atol=1e-6)


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ('echo pwned',))


def test_malicious_checkpoint_is_refused(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'x': _Evil()}, path)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        torch.load(path, weights_only=True)


def test_getattr_is_restricted_to_history_buffer_methods():
    from mmengine.logging import HistoryBuffer

    from mmmsl.utils.compat import history_buffer_getattr
    assert history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='__init__'):
        history_buffer_getattr(HistoryBuffer, '__init__')
    with pytest.raises(pickle.UnpicklingError, match='system'):
        history_buffer_getattr(torch, 'system')
