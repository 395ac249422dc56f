# Baseline of configs/msl/resnet101_csra_coco.py (plain ImageClassifier).
_base_ = ['./resnet101_csra_voc.py']

num_classes = 80
dataset_type = 'COCOMultiLabel'
data_root = 'data/coco'

model = dict(
    head=dict(
        num_classes=num_classes, num_heads=6, lam=0.4,
        loss=dict(loss_weight=1.0 / num_classes)))
data_preprocessor = dict(num_classes=num_classes)

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2014.json',
        data_prefix='train2014',
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2014.json',
        data_prefix='val2014',
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader

# The VOC recipe's warm-up; x0.1 after every 5th epoch (authors' COCO step).
param_scheduler = [
    dict(type='LinearWarmUpLR', by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='StepLR', by_epoch=True, begin=0, step_size=5, gamma=0.1),
]
work_dir = './work_dirs/resnet101_csra_coco_baseline'
