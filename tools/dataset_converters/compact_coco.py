"""Write the compact label file of a COCO ``instances_*.json``.

    python tools/dataset_converters/compact_coco.py \
        data/coco/annotations/instances_train2014.json \
        data/coco/annotations/train2014_labels.json

The output keeps the categories and, per image, its id, file name and one
``[category_id, x, y, w, h, area]`` row per annotation: what
``COCOMultiLabel`` reads (labels, and the instances of
``ObjectSizeMetric``, docs/objects.md), about 40 MB instead of the 450 MB
train json, so the dataset builds in a fraction of the time. Use it with
``--cfg-options train_dataloader.dataset.ann_file=...``; the samples are
identical. A compact file written by an earlier version (category ids
only) is refused with a message to write it again.
"""
import argparse
import os
import os.path as osp

from mmmsl.datasets.coco import compact_coco


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write the compact label file of a COCO instances json '
        '(the subset COCOMultiLabel reads)')
    parser.add_argument('json_in', help='COCO instances_*.json')
    parser.add_argument('json_out', help='where to write the compact json')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out_dir = osp.dirname(osp.abspath(args.json_out))
    os.makedirs(out_dir, exist_ok=True)
    compact_coco(args.json_in, args.json_out)
    print(f'{args.json_in} ({osp.getsize(args.json_in) / 1e6:.1f} MB) -> '
          f'{args.json_out} ({osp.getsize(args.json_out) / 1e6:.1f} MB)')


if __name__ == '__main__':
    main()
