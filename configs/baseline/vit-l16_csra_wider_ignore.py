# configs/baseline/vit-l16_csra_wider.py with unspecified attributes ignored
# in the loss (not the protocol of the published numbers, which trains them
# as negatives). The training samples carry
# gt_score with -1 at unspecified attributes and IgnoreAwareBCELoss drops
# those entries; a stock CrossEntropyLoss must not see such targets.
# Evaluation is unchanged: the paper's protocol (left out of mAP, negatives
# in CP..OF1).
_base_ = ['./vit-l16_csra_wider.py']

model = dict(head=dict(loss=dict(type='IgnoreAwareBCELoss')))
train_dataloader = dict(dataset=dict(unspecified='ignore'))
work_dir = './work_dirs/vit-l16_csra_wider_ignore_baseline'
