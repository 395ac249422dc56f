# Baseline of configs/msl/vit-l16_csra_wider.py: ViT-L/16 + CSRA (1 head,
# lam 0.3) at 224 px on WIDER-Attribute person crops, 40 epochs.
# Unspecified attributes count as negative in training, are left out of mAP
# and are negatives in CP..OF1 (they travel as gt_label_difficult), the
# protocol of the authors' code behind the paper's numbers. As in the authors' code: resize + flip only (no random
# crop: a crop may cut off the attribute), x0.1 every 5 epochs.
_base_ = ['./vit-l16_csra_voc.py']

num_classes = 14
dataset_type = 'WIDERAttribute'
data_root = 'data/wider_attribute'

model = dict(
    head=dict(num_classes=num_classes, num_heads=1, lam=0.3,
              loss=dict(loss_weight=1.0 / num_classes)))
# WIDER is the one dataset the authors feed [-1, 1] (mean = std = 0.5), so
# a hole (0 after normalisation) is mid-grey here.
data_preprocessor = dict(num_classes=num_classes, mean=[127.5] * 3,
                         std=[127.5] * 3, to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropPersonBox'),
    dict(type='Resize', scale=(224, 224)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropPersonBox'),
    dict(type='Resize', scale=(224, 224)),
    dict(type='PackInputs',
         meta_keys=('sample_idx', 'img_path', 'img_shape',
                    'gt_label_difficult')),
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='wider_attribute_trainval.json',
        data_prefix='Image',
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='wider_attribute_test.json',
        data_prefix='Image',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# The authors' WIDER protocol: unspecified attributes are left out of mAP
# but are negative targets (scores kept) in CP, CR, CF1, OP, OR and OF1.
val_evaluator = [
    dict(type='MultiLabelPaperMetric', thr=0.5,
         difficult_in_thresholded='negative')
]
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=40)
param_scheduler = [
    dict(type='LinearWarmUpLR', by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='StepLR', by_epoch=True, begin=0, step_size=5, gamma=0.1),
]
work_dir = './work_dirs/vit-l16_csra_wider_baseline'
