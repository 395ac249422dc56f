# Dynamic masked supervision on the digits demo: the masked terms (a2, a3)
# ramped in from 0 over the first half of training, a1 fixed
# (docs/components.md "Masking schedules", study in docs/accuracy.md).
#   python tools/train.py configs/msl/dynamic/demo_digits_ramp.py
_base_ = ['../demo_digits.py']

# A row of the study (docs/accuracy.md), measured before the demo took up
# hidden labels: this rule alone on the paper's MSL.
model = dict(hidden_labels=None)

custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='NumClassesCheckHook'),
    dict(type='ModelTypeCheckHook'),
    dict(type='ReuseFreedMemoryHook'),
    dict(type='MaskScheduleHook',
         alpha=dict(values=[(0.3, 0, 0), (0.3, 0.2, 0.5)], end=20)),
]
work_dir = './work_dirs/demo_msl_ramp'
