# Baseline of configs/msl/vit-b16_csra_wider.py: ViT-B/16 + CSRA at 224 px.
_base_ = ['./vit-l16_csra_wider.py']

checkpoint = 'https://download.openmmlab.com/mmclassification/v0/vit/finetune/vit-base-p16_in21k-pre-3rdparty_ft-64xb64_in1k-384_20210928-98e8652b.pth'  # noqa
model = dict(
    backbone=dict(arch='b', init_cfg=dict(checkpoint=checkpoint)),
    head=dict(in_channels=768))
work_dir = './work_dirs/vit-b16_csra_wider_baseline'
