# configs/msl/vit-l16_csra_wider.py with unspecified attributes ignored in
# the loss; see
# configs/baseline/vit-l16_csra_wider_ignore.py. Both BCE terms (clean and
# masked) use IgnoreAwareBCELoss; the consistency term needs no labels.
_base_ = ['./vit-l16_csra_wider.py']

model = dict(head=dict(loss=dict(type='IgnoreAwareBCELoss')))
train_dataloader = dict(dataset=dict(unspecified='ignore'))
work_dir = './work_dirs/vit-l16_csra_wider_ignore'
