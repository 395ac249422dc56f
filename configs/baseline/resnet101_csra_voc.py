# Baseline of configs/msl/resnet101_csra_voc.py: the same recipe (the MSL
# authors' CSRA schedule) with a plain ImageClassifier, for the A/B run.
_base_ = ['mmpretrain::csra/resnet101-csra_1xb16_voc07-448px.py']
custom_imports = dict(imports=['mmmsl'], allow_failed_imports=False)

num_classes = 20
# The authors' loss scale: BCE averaged over batch AND classes (mmpretrain's
# sums over classes), which their SGD lr of 0.01 assumes.
model = dict(
    head=dict(
        loss=dict(
            type='CrossEntropyLoss', use_sigmoid=True,
            loss_weight=1.0 / num_classes)))

# Batch 6, 448 px, RandomResizedCrop(0.7-1.0) + flip come from the base.
# VOCMultiLabel is mmpretrain's VOC (same samples and labels) with early,
# named errors for missing or corrupt images and unknown class names.
# data_root: data/VOC2007 (JPEGImages, Annotations, ImageSets/Main).
train_dataloader = dict(batch_size=6, dataset=dict(type='VOCMultiLabel'))
# The base's test pipeline; the instance keys are for ObjectSizeMetric.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=448),
    dict(type='PackInputs',
         meta_keys=('sample_idx', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor', 'flip', 'flip_direction',
                    'gt_label_difficult', 'gt_bboxes_labels', 'gt_areas',
                    'gt_visible', 'gt_ignore_flags')),
]
val_dataloader = dict(
    dataset=dict(type='VOCMultiLabel', pipeline=test_pipeline))
test_dataloader = val_dataloader

# mAP per object-size (COCO's small / medium / large) and per occlusion
# bucket (box-overlap proxy), with counts: docs/objects.md.
val_evaluator = [
    dict(type='MultiLabelPaperMetric', thr=0.5),
    dict(type='ObjectSizeMetric'),
]
test_evaluator = val_evaluator

# SGD lr 0.01 (head x10, from the base), momentum 0.9, wd 1e-4, as the
# authors' code (docs/recipe.md): the rate rises linearly from 0 per
# iteration over epochs 1-2, is the base rate in epochs 3-4 and x0.1 after
# every 4th epoch counted from epoch 1 (their StepLR is stepped after every
# epoch, warm-up included); 60 epochs.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearWarmUpLR', by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='StepLR', by_epoch=True, begin=0, step_size=4, gamma=0.1),
]
train_cfg = dict(by_epoch=True, max_epochs=60, val_interval=1)
# The learning rate is for a total batch of 6 (1 GPU x 6); --auto-scale-lr
# scales it linearly to the batch actually used (GPUs x batch_size).
auto_scale_lr = dict(base_batch_size=6)
# The authors seed everything with 0.
randomness = dict(seed=0, deterministic=False)
# Twins must not share a work dir (--resume would continue the other model).
work_dir = './work_dirs/resnet101_csra_voc_baseline'
# Atomic checkpoint writes (the last 3 epochs kept, ~340 MB each with the
# optimizer state; 60 would be 20 GB), a named
# error on a non-finite loss term, a head/dataset class-count check before
# the first iteration, a refusal to resume a checkpoint of the other model
# type, and host memory reused between steps (CPU speed) (mmmsl.engine).
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1,
                    max_keep_ckpts=3))
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='NumClassesCheckHook'),
    dict(type='ModelTypeCheckHook'),
    dict(type='ReuseFreedMemoryHook'),
]
