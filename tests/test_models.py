import copy

import cv2

import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mmmsl  # noqa: F401
from mmmsl.masks import irregular_masks
from mmmsl.models.visibility import box_keep_shares, hidden_classes

NUM_CLASSES = 5


def model_cfg(type_='MaskedSupervisedClassifier', head=None, **kw):
    cfg = dict(
        type=type_,
        backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
        head=head or dict(type='CSRAClsHead', num_classes=NUM_CLASSES,
                          in_channels=512, num_heads=1, lam=0.1),
        data_preprocessor=dict(num_classes=NUM_CLASSES, to_onehot=True,
                               mean=[120.] * 3, std=[60.] * 3))
    cfg.update(kw)
    return cfg


def batch(n=4, size=32, seed=0, with_mask=True):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, size, size, generator=g)
    masks = 1 - irregular_masks(n, size, size, 'high', seed=seed)
    samples = []
    for i in range(n):
        s = DataSample().set_gt_label([i % NUM_CLASSES, (i + 2) % NUM_CLASSES])
        s.set_gt_score(torch.zeros(NUM_CLASSES).index_fill_(
            0, torch.tensor([i % NUM_CLASSES, (i + 2) % NUM_CLASSES]), 1.))
        if with_mask:
            s.set_field(masks[i], 'msl_mask')
        samples.append(s)
    return inputs, samples


def build_pair(**kw):
    torch.manual_seed(0)
    msl = MODELS.build(model_cfg(**kw))
    plain = MODELS.build(model_cfg('ImageClassifier'))
    plain.load_state_dict(msl.state_dict())
    return msl, plain


def test_consistency_loss_is_mse_on_probabilities():
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    loss = MODELS.build(dict(type='LabelConsistencyLoss'))
    ref = torch.nn.functional.mse_loss(a.sigmoid(), b.sigmoid())
    torch.testing.assert_close(loss(a, b), ref)
    torch.testing.assert_close(loss(a, b, avg_factor=6), ref * 4)
    weighted = MODELS.build(dict(type='LabelConsistencyLoss',
                                 loss_weight=2., reduction='sum'))
    torch.testing.assert_close(weighted(a, b), 2 * ref * 24)
    probs = MODELS.build(dict(type='LabelConsistencyLoss', use_sigmoid=False))
    torch.testing.assert_close(probs(a, b), ((a - b)**2).mean())
    with pytest.raises(ValueError, match='shape'):
        loss(a, b[:, :3])


def test_alpha_100_equals_image_classifier():
    msl, plain = build_pair(alpha=(1, 0, 0))
    msl.train(), plain.train()
    inputs, samples = batch()
    losses = msl.loss(inputs, samples)
    assert set(losses) == {'loss_clean', 'loss_masked', 'loss_consistency'}
    ref = plain.loss(inputs.clone(), copy.deepcopy(samples))['loss']
    torch.testing.assert_close(losses['loss_clean'], ref)
    assert losses['loss_masked'] == 0 and losses['loss_consistency'] == 0


def test_paper_balance_and_class_reduction():
    msl, _ = build_pair(alpha=(0.3, 0.2, 0.5))
    msl_mean, _ = build_pair(alpha=(0.3, 0.2, 0.5), class_reduction='mean')
    msl.eval(), msl_mean.eval()  # same BN statistics for both calls
    inputs, samples = batch()
    s = msl.loss(inputs, samples)
    m = msl_mean.loss(inputs, samples)
    for k in s:  # 'mean' is the authors' scale, exactly 1/C of 'sum'
        torch.testing.assert_close(s[k], m[k] * NUM_CLASSES)
    # 'mean' reproduces the official terms: mean BCE and nn.MSELoss.
    keep = msl_mean.keep_masks(inputs, samples)
    lc = msl_mean(inputs, mode='tensor')
    lm = msl_mean(msl_mean.mask_inputs(inputs, keep), mode='tensor')
    target = torch.stack([x.gt_score for x in samples])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    torch.testing.assert_close(m['loss_clean'], 0.3 * bce(lc, target))
    torch.testing.assert_close(m['loss_masked'], 0.2 * bce(lm, target))
    torch.testing.assert_close(
        m['loss_consistency'],
        0.5 * torch.nn.functional.mse_loss(lc.sigmoid(), lm.sigmoid()))


@pytest.mark.parametrize('term,alpha', [('loss_clean', (1, 0, 0)),
                                        ('loss_masked', (0, 1, 0)),
                                        ('loss_consistency', (0, 0, 1))])
@pytest.mark.parametrize('mode', ['two_pass', 'concat'])
def test_each_term_reaches_the_backbone(term, alpha, mode):
    msl, _ = build_pair(alpha=alpha, forward_mode=mode)
    msl.train()
    inputs, samples = batch()
    losses = msl.loss(inputs, samples)
    losses[term].backward()
    grad = msl.backbone.conv1.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_masking_uses_the_sample_masks_and_fill():
    msl, _ = build_pair(fill=-3.0)
    inputs, samples = batch()
    keep = msl.keep_masks(inputs, samples)
    assert keep.shape == (4, 1, 32, 32) and keep.dtype == torch.bool
    for i, s in enumerate(samples):
        assert np.array_equal(keep[i, 0].numpy(), s.msl_mask.astype(bool))
    masked = msl.mask_inputs(inputs, keep)
    k = keep.expand_as(inputs)
    assert torch.equal(masked[k], inputs[k])
    assert (masked[~k] == -3.0).all()
    msl, _ = build_pair(fill=[1.0, 2.0, 3.0])
    assert 'fill' not in ''.join(msl.state_dict())  # keys stay the plain's
    per_channel = msl.mask_inputs(inputs, keep)
    for c in range(3):
        assert (per_channel[:, c][~keep[:, 0]] == c + 1).all()


def test_mask_of_other_size_is_resized_or_padded():
    msl, _ = build_pair()
    inputs, samples = batch(n=2)
    samples[0].set_field(np.ones((16, 16), np.uint8), 'msl_mask')
    samples[0].msl_mask[:8] = 0  # top half removed
    samples[1].set_field(np.zeros((20, 24), np.uint8), 'msl_mask')
    samples[1].set_metainfo(dict(img_shape=(20, 24)))  # padded sample
    keep = msl.keep_masks(inputs, samples)[:, 0]
    assert not keep[0, :16].any() and keep[0, 16:].all()
    assert not keep[1, :20, :24].any()
    assert keep[1, 20:].all() and keep[1, :, 24:].all()
    # A reduced-resolution mask of a padded image covers that image only.
    low = np.ones((10, 12), np.uint8)
    low[:, :6] = 0  # left half of the image removed
    samples[1].set_field(low, 'msl_mask')
    keep = msl.keep_masks(inputs, samples)[:, 0]
    assert not keep[1, :20, :12].any() and keep[1, :20, 12:].all()
    assert keep[1, 20:].all()


def test_reduced_masks_take_the_batched_path_with_the_same_result():
    msl, _ = build_pair()
    inputs, samples = batch(n=3)
    rng = np.random.default_rng(0)
    h, w = inputs.shape[-2:]
    for s in samples:
        s.set_field((rng.random((h // 2, w // 2)) > 0.5).astype(np.uint8),
                    'msl_mask')
    batched = msl.keep_masks(inputs, samples)
    want = np.stack([cv2.resize(s.msl_mask, (w, h),
                                interpolation=cv2.INTER_NEAREST)
                     for s in samples])
    assert batched.shape == (3, 1, h, w) and batched.dtype == torch.bool
    np.testing.assert_array_equal(batched[:, 0].numpy(), want.astype(bool))


def test_missing_mask_is_a_clear_error_unless_in_model_source():
    msl, _ = build_pair()
    inputs, samples = batch(with_mask=False)
    with pytest.raises(KeyError, match="no 'msl_mask'.*IrregularMask"):
        msl.loss(inputs, samples)
    torch.manual_seed(0)
    fallback = MODELS.build(model_cfg(
        mask_source=dict(source='procedural', ratio='high')))
    losses = fallback.loss(inputs, samples)
    assert losses['loss_masked'] > 0


def test_predict_equals_plain_classifier_from_state_dict():
    msl, plain = build_pair()
    assert list(msl.state_dict()) == list(plain.state_dict())
    msl.eval(), plain.eval()
    inputs, samples = batch()
    with torch.no_grad():
        a = msl.predict(inputs)
        b = plain.predict(inputs)
        feats = msl.extract_feat(inputs)
    for x, y in zip(a, b):
        torch.testing.assert_close(x.pred_score, y.pred_score)
        assert torch.equal(x.pred_label, y.pred_label)
    torch.testing.assert_close(feats[-1], plain.extract_feat(inputs)[-1])


def test_other_heads_and_losses():
    head = dict(type='MultiLabelLinearClsHead', num_classes=NUM_CLASSES,
                in_channels=512, loss=dict(type='AsymmetricLoss'))
    torch.manual_seed(0)
    msl = MODELS.build(model_cfg(head=head, alpha=(1, 0, 0), neck=dict(
        type='GlobalAveragePooling')))
    plain = MODELS.build(model_cfg('ImageClassifier', head=head, neck=dict(
        type='GlobalAveragePooling')))
    plain.load_state_dict(msl.state_dict())
    inputs, samples = batch()
    torch.testing.assert_close(
        msl.loss(inputs, samples)['loss_clean'],
        plain.loss(inputs, samples)['loss'])


@pytest.mark.parametrize('kw,match', [
    (dict(alpha=(0.3, -0.2, 0.5)), 'alpha'),
    (dict(alpha=(0, 0, 0)), 'alpha'),
    (dict(alpha=(1, 1)), 'alpha'),
    (dict(forward_mode='three'), 'forward_mode'),
    (dict(class_reduction='max'), 'class_reduction'),
])
def test_bad_config_fails_at_build(kw, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(model_cfg(**kw))


def test_concat_and_two_pass_agree_in_eval_mode():
    a, _ = build_pair(forward_mode='concat')
    b, _ = build_pair(forward_mode='two_pass')
    a.eval(), b.eval()
    inputs, samples = batch()
    la, lb = a.loss(inputs, samples), b.loss(inputs, samples)
    for k in la:
        torch.testing.assert_close(la[k], lb[k], rtol=1e-4, atol=1e-5)


# Tensor methods that copy a value to the host, i.e. wait for the device.
HOST_SYNCS = ('item', 'tolist', 'cpu', 'numpy', '__array__', '__bool__',
              '__float__', '__int__')


def _host_syncs(monkeypatch, fn):
    calls = []
    for name in HOST_SYNCS:
        def spy(self, *args, _orig=getattr(torch.Tensor, name), _name=name,
                **kwargs):
            calls.append(_name)
            return _orig(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, name, spy)
    try:
        fn()
    finally:
        monkeypatch.undo()
    return calls


@pytest.mark.parametrize('mode', ['two_pass', 'concat'])
@pytest.mark.parametrize('in_model_masks', [False, True])
def test_msl_loss_adds_no_host_sync(monkeypatch, mode, in_model_masks):
    kw = dict(mask_source=dict(ratio='high')) if in_model_masks else {}
    msl, plain = build_pair(forward_mode=mode, **kw)
    msl.train(), plain.train()
    inputs, samples = batch(with_mask=not in_model_masks)
    base = _host_syncs(monkeypatch, lambda: plain.loss(
        inputs.clone(), copy.deepcopy(samples)))
    # The spy itself works: reading a loss value is a sync it sees.
    assert _host_syncs(monkeypatch, lambda: inputs.sum().item()) == ['item']
    calls = _host_syncs(monkeypatch, lambda: msl.loss(inputs, samples))
    # Whatever the head's loss does, MSL calls it twice and adds nothing.
    assert sorted(calls) == sorted(base * 2)


def test_box_keep_shares_count_the_kept_pixels():
    rng = np.random.default_rng(0)
    keep = torch.from_numpy(rng.random((37, 41)) > 0.4)
    xy = rng.uniform(-5, 46, (60, 4))
    boxes = np.stack([np.minimum(xy[:, 0], xy[:, 2]),
                      np.minimum(xy[:, 1], xy[:, 3]),
                      np.maximum(xy[:, 0], xy[:, 2]),
                      np.maximum(xy[:, 1], xy[:, 3])], 1)
    boxes[0] = (3, 3, 3, 9)  # no pixel: counts as kept
    got = box_keep_shares(keep, torch.from_numpy(boxes))
    k = keep.numpy()
    for (x1, y1, x2, y2), share in zip(boxes, got.tolist()):
        x1, y1 = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
        x2, y2 = min(int(np.ceil(x2)), 41), min(int(np.ceil(y2)), 37)
        part = k[y1:y2, x1:x2]
        assert share == pytest.approx(part.mean() if part.size else 1.0)


def test_a_class_is_hidden_only_when_all_its_boxes_are():
    keep = torch.ones(1, 1, 20, 20, dtype=torch.bool)
    keep[..., :10, :] = False  # the top half is a hole
    boxes = np.array([[0, 0, 20, 8],    # class 0: under the hole
                      [0, 0, 20, 8],    # class 1: one box hidden,
                      [0, 12, 20, 20],  # one visible
                      [0, 5, 20, 15]],  # class 3: half kept
                     np.float32)
    labels = np.array([0, 1, 1, 3])
    assert hidden_classes(keep, [boxes], [labels], 5, 0.1).tolist() == [
        [True, False, False, False, False]]  # class 2, 4: no box
    assert hidden_classes(keep, [boxes], [labels], 5, 0.6).tolist() == [
        [True, False, False, True, False]]


def hidden_batch():
    """Two 32 px images, the top half of the first a hole: its class 0 box
    lies there, its class 1 box and the second image's class 2 box not."""
    inputs = torch.randn(2, 3, 32, 32, generator=torch.Generator(
    ).manual_seed(0))
    samples = []
    for labels, boxes in (([0, 1], [[2, 2, 30, 14], [2, 18, 30, 30]]),
                          ([2], [[0, 0, 16, 16]])):
        s = DataSample(img_shape=(32, 32)).set_gt_label(labels)
        s.set_gt_score(torch.zeros(NUM_CLASSES).index_fill_(
            0, torch.tensor(labels), 1.))
        s.set_field(np.array(boxes, np.float32), 'gt_bboxes')
        s.set_field(np.array(labels), 'gt_bboxes_labels')
        samples.append(s)
    keep = np.ones((2, 32, 32), np.uint8)
    keep[0, :16] = 0
    for s, m in zip(samples, keep):
        s.set_field(m, 'msl_mask')
    return inputs, samples


@pytest.mark.parametrize('mode', [None, 'absent', 'ignore'])
def test_hidden_labels_change_the_masked_targets_only(mode):
    head = dict(type='CSRAClsHead', num_classes=NUM_CLASSES, in_channels=512,
                num_heads=1, lam=0.1, loss=dict(type='IgnoreAwareBCELoss'))
    torch.manual_seed(0)
    msl = MODELS.build(model_cfg(head=head, hidden_labels=mode)).eval()
    inputs, samples = hidden_batch()
    out = msl.loss(inputs, samples)
    keep = msl.keep_masks(inputs, samples)
    logits_c = msl.head(msl.extract_feat(inputs))
    logits_m = msl.head(msl.extract_feat(msl.mask_inputs(inputs, keep)))
    target = torch.stack([s.gt_score for s in samples])
    hidden = torch.zeros_like(target, dtype=torch.bool)
    if mode is not None:
        hidden[0, 0] = True
        target[0, 0] = 0. if mode == 'absent' else -1.
        assert out['hidden_share'].item() == pytest.approx(1 / 3)
    else:
        assert 'hidden_share' not in out
    a1, a2, a3 = msl.alpha
    bce = msl.head.loss_module
    torch.testing.assert_close(out['loss_clean'], a1 * bce(
        logits_c, torch.stack([s.gt_score for s in samples]), avg_factor=2))
    torch.testing.assert_close(out['loss_masked'],
                               a2 * bce(logits_m, target, avg_factor=2))
    sq = (logits_c.sigmoid() - logits_m.sigmoid()).pow(2) * ~hidden
    torch.testing.assert_close(out['loss_consistency'], a3 * sq.sum() / 2)


def test_hidden_labels_need_boxes_in_the_image():
    msl = MODELS.build(model_cfg(hidden_labels='absent'))
    inputs, samples = hidden_batch()
    del samples[1].gt_bboxes
    with pytest.raises(KeyError, match="sample 1.*'gt_bboxes'.*PackInputs"):
        msl.loss(inputs, samples)
    inputs, samples = hidden_batch()
    samples[1].gt_bboxes = np.array([[0, 0, 300, 200]], np.float32)
    with pytest.raises(ValueError, match='sample 1.*past its 32x32.*Random'):
        msl.loss(inputs, samples)


@pytest.mark.parametrize('kw,match', [
    (dict(hidden_labels='drop'), 'hidden_labels'),
    (dict(hidden_labels='absent', min_visible=0), 'min_visible'),
    (dict(hidden_labels='ignore'), 'IgnoreAwareBCELoss'),
])
def test_bad_hidden_labels_fail_at_build(kw, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(model_cfg(**kw))


def test_hidden_labels_add_no_host_sync(monkeypatch):
    msl, plain = build_pair(hidden_labels='absent')
    msl.train(), plain.train()
    inputs, samples = hidden_batch()
    base = _host_syncs(monkeypatch, lambda: plain.loss(
        inputs.clone(), copy.deepcopy(samples)))
    calls = _host_syncs(monkeypatch, lambda: msl.loss(inputs, samples))
    assert sorted(calls) == sorted(base * 2)
