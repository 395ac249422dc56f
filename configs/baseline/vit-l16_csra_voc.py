# Baseline of configs/msl/vit-l16_csra_voc.py: ViT-L/16 + CSRA (1 head,
# lam 0.3) at 224 px on VOC2007, plain ImageClassifier.
_base_ = ['./resnet101_csra_voc.py']

# mmpretrain's ImageNet-21k-pretrained ViT-L/16 (fine-tuned on 1k at 384 px;
# the position embedding is resized to 224 px on loading).
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/vit/finetune/vit-large-p16_in21k-pre-3rdparty_ft-64xb64_in1k-384_20210928-b20ba619.pth'  # noqa

model = dict(
    backbone=dict(
        _delete_=True,
        type='VisionTransformer',
        arch='l',
        img_size=224,
        patch_size=16,
        out_type='featmap',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint,
                      prefix='backbone')),
    head=dict(in_channels=1024, num_heads=1, lam=0.3))
# Optimiser and schedule: the ResNet recipe's (SGD lr 0.01, head x10,
# momentum 0.9, wd 1e-4, warm-up 2 epochs, x0.1 steps), inherited unchanged:
# the authors' training notes run their ViTs with the same script defaults
# (no --lr), batch 6.
# [0, 1] RGB inputs (mean 0, std 255, inherited) as the authors feed every
# VOC/COCO model, ViT included; holes are black. (The pretrained ViT was
# trained on [-1, 1]; docs/recipe.md.)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.7, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=224),
    dict(type='PackInputs',
         meta_keys=('sample_idx', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor', 'flip', 'flip_direction',
                    'gt_label_difficult', 'gt_bboxes_labels', 'gt_areas',
                    'gt_visible', 'gt_ignore_flags')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
work_dir = './work_dirs/vit-l16_csra_voc_baseline'
