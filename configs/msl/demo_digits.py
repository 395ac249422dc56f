# The offline demo: MSL on overlapping handwritten digits (see
# configs/baseline/demo_digits.py for everything else).
#   bash tools/demo.sh           # trains this, prints clean and masked mAP
_base_ = ['../baseline/demo_digits.py']

model = dict(type='MaskedSupervisedClassifier', alpha=(0.3, 0.2, 0.5))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='IrregularMask', ratio='high'),
    dict(type='PackInputs', algorithm_keys=('msl_mask', )),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
