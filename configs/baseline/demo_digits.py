# Baseline of the offline demo (configs/msl/demo_digits.py): a slim
# ResNet-18 + CSRA trained from scratch on 64 px canvases of overlapping
# handwritten digits (DigitsMultiLabel, generated from scikit-learn's digits
# on first use; no download). A few minutes on 2 CPU cores (MSL about 2x).
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmmsl'], allow_failed_imports=False)

num_classes = 10
data_root = 'data/digits'

model = dict(
    type='ImageClassifier',
    # Last stage at stride 1: a 4x4 map at 64 px instead of 2x2 (same cost,
    # +11 mAP for the baseline; docs/accuracy.md).
    backbone=dict(type='ResNet', depth=18, base_channels=16,
                  stem_channels=16, strides=(1, 2, 2, 1), out_indices=(3, )),
    head=dict(type='CSRAClsHead', num_classes=num_classes, in_channels=128,
              num_heads=1, lam=0.1,
              loss=dict(type='CrossEntropyLoss', use_sigmoid=True)))
# The canvases' own mean/std, so a hole (0 after normalisation) is the mean.
data_preprocessor = dict(num_classes=num_classes, mean=[31.] * 3,
                         std=[69.] * 3, to_rgb=False, to_onehot=True)

# No flips or crops: a mirrored digit is another digit, a crop drops labels.
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs',
         meta_keys=('sample_idx', 'img_path', 'gt_bboxes_labels', 'gt_areas',
                    'gt_visible')),
]
train_dataloader = dict(
    batch_size=64, num_workers=1, persistent_workers=True,
    dataset=dict(type='DigitsMultiLabel', data_root=data_root, split='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=200, num_workers=1, persistent_workers=True,
    dataset=dict(type='DigitsMultiLabel', data_root=data_root, split='test',
                 test_mode=True, pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
# mAP per digit size (side < 22, 22-27, >= 28 px of the 16-32 drawn) and per
# visible share of the digit's ink (< 50 %, 50-75 %, >= 75 %), with the
# counts of positives: docs/objects.md.
val_evaluator = [
    dict(type='MultiLabelPaperMetric'),
    dict(type='ObjectSizeMetric', size_thrs=(22**2, 28**2)),
]
test_evaluator = val_evaluator

max_epochs = 40
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='AtomicCheckpointHook', interval=10,
                    max_keep_ckpts=1))
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='NumClassesCheckHook'),
    dict(type='ModelTypeCheckHook'),
    dict(type='ReuseFreedMemoryHook'),
]
randomness = dict(seed=0)
work_dir = './work_dirs/demo_baseline'
auto_scale_lr = dict(base_batch_size=64)
