# MSL on the second benchmark (configs/baseline/digits_clutter.py): the
# demo's MSL settings (configs/msl/demo_digits.py: hidden labels and the
# alpha ramp over the first 10 epochs) on cluttered colour digits.
_base_ = ['../baseline/digits_clutter.py']

model = dict(type='MaskedSupervisedClassifier', alpha=(0.3, 0.2, 0.5),
             hidden_labels='absent')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='IrregularMask', ratio='high', source='procedural'),
    dict(type='PackInputs',
         algorithm_keys=('msl_mask', 'gt_bboxes', 'gt_bboxes_labels')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='NumClassesCheckHook'),
    dict(type='ModelTypeCheckHook'),
    dict(type='ReuseFreedMemoryHook'),
    dict(type='MaskScheduleHook',
         alpha=dict(values=[(0.3, 0, 0), (0.3, 0.2, 0.5)], end=10)),
]
work_dir = './work_dirs/digits_clutter_msl'
