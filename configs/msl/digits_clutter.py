# MSL on the second benchmark (configs/baseline/digits_clutter.py): the
# demo's MSL settings (configs/msl/demo_digits.py) on cluttered colour digits.
_base_ = ['../baseline/digits_clutter.py']

model = dict(type='MaskedSupervisedClassifier', alpha=(0.3, 0.2, 0.5))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='IrregularMask', ratio='high', source='procedural'),
    dict(type='PackInputs', algorithm_keys=('msl_mask', )),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
work_dir = './work_dirs/digits_clutter_msl'
