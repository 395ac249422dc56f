# MSL on WIDER-Attribute with ViT-L/16 + CSRA (1 head, lam 0.3) at 224 px.
_base_ = ['../baseline/vit-l16_csra_wider.py']

model = dict(
    type='MaskedSupervisedClassifier',
    alpha=(0.3, 0.2, 0.5),
    class_reduction='mean',
    # two train-mode passes (BatchNorm sees the clean, then the masked
    # batch); holes are 0 in the normalised batch, as the authors' img * keep
    forward_mode='two_pass',
    fill=0.0,
    head=dict(loss=dict(loss_weight=1.0)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropPersonBox'),
    dict(type='Resize', scale=(224, 224)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='IrregularMask', ratio='high'),
    dict(type='PackInputs', algorithm_keys=('msl_mask', )),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
work_dir = './work_dirs/vit-l16_csra_wider'
