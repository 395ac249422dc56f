# Dynamic masked supervision on the digits demo: the hole-ratio bin moves
# linearly from 'low' (up to 50 % removed) to 'high' (50-60 %) over training,
# in 5 bins (docs/components.md "Masking schedules", study in
# docs/accuracy.md).
#   python tools/train.py configs/msl/dynamic/demo_digits_low2high.py
_base_ = ['../demo_digits.py']

# A row of the study (docs/accuracy.md), measured before the demo took up
# hidden labels: this rule alone on the paper's MSL.
model = dict(hidden_labels=None)

custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='NumClassesCheckHook'),
    dict(type='ModelTypeCheckHook'),
    dict(type='ReuseFreedMemoryHook'),
    dict(type='MaskScheduleHook', ratio=dict(values=('low', 'high'))),
]
work_dir = './work_dirs/demo_msl_low2high'
