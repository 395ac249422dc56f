"""Convert the MSL authors' released checkpoints to this repository's models.

``python tools/model_converters/msl_official_to_mmpretrain.py IN OUT
[--config CONFIG] [--cfg-options KEY=VALUE ...]``

IN is a state dict of the authors' ``ResNet_CSRA`` or ``VIT_CSRA``
(hasibzunair/msl-recognition, ``pipeline/resnet_csra.py`` and
``pipeline/vit_csra.py``; the same layout as Kevinz-code/CSRA's), e.g.
``msl_c_voc.pth``, ``msl_c_coco.pth`` or ``msl_v_wider.pth``: a plain state
dict, or a dict holding it under ``state_dict`` or ``model``; a ``module.``
prefix (``nn.DataParallel``) is stripped. OUT is an mmengine checkpoint
``{'state_dict': ..., 'meta': ...}`` of an mmpretrain ``ImageClassifier``
with a ``ResNet`` or ``VisionTransformer`` (``out_type='featmap'``) backbone
and a ``CSRAClsHead``: what ``tools/test.py CONFIG OUT`` loads.

The backbone (ResNet or ViT) is detected from the keys, the number of CSRA
heads and classes from ``classifier.multi_head.{i}.head.weight``. With
``--config`` the config's model is built (the plain ``ImageClassifier`` of an
MSL config, no pretrained download) and the converted weights must load into
it strictly; head count, class count and every missing, unexpected or
mis-shaped key are named on failure. The CSRA ``lam`` is not stored in the
checkpoint: the config must carry the authors' value (see
docs/official_checkpoints.md).
"""
import argparse
import copy
import os
import os.path as osp
import re
import sys
from collections import OrderedDict

import torch

#: CSRA temperatures per head count, as the authors' ``MHA.temp_settings``
#: (identical to mmpretrain's ``CSRAClsHead.temperature_settings``).
TEMPERATURES = {
    1: [1],
    2: [1, 99],
    4: [1, 2, 4, 99],
    6: [1, 2, 3, 4, 5, 99],
    8: [1, 2, 3, 4, 5, 6, 7, 99],
}

_HEAD = re.compile(r'^classifier\.multi_head\.(\d+)\.head\.weight$')
_RESNET_KEY = re.compile(r'^(conv1|bn1|layer[1-4])\.')
#: timm ViT block keys -> mmpretrain ``TransformerEncoderLayer`` keys (the
#: mapping of mmpretrain's tools/model_converters/deit3_to_mmpretrain.py).
_VIT_BLOCK = (
    ('norm1.', 'ln1.'),
    ('norm2.', 'ln2.'),
    ('mlp.fc1.', 'ffn.layers.0.0.'),
    ('mlp.fc2.', 'ffn.layers.1.'),
    ('attn.qkv.', 'attn.qkv.'),
    ('attn.proj.', 'attn.proj.'),
)


#: What the converter reads from a checkpoint, as it reports it.
_SUMMARY = ('arch', 'depth', 'embed_dims', 'num_layers', 'num_heads',
            'num_classes')


class ConversionError(ValueError):
    """The input is not an authors' checkpoint, or it does not fit the
    config."""


def _names(keys, limit=20):
    keys = sorted(keys)
    more = f' ... ({len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def load_source(path, unsafe=False):
    """The authors' state dict in ``path`` (unwrapped, ``module.``
    stripped)."""
    try:
        obj = torch.load(path, map_location='cpu', weights_only=not unsafe)
    except Exception as err:  # noqa: BLE001  (UnpicklingError and friends)
        if unsafe:
            raise
        raise ConversionError(
            f'{path} does not load with torch.load(weights_only=True) '
            f'({type(err).__name__}: {err}); if you trust its origin, pass '
            '--unsafe-load') from err
    return unwrap(obj, path)


def unwrap(obj, name='input'):
    """The tensor dict inside a checkpoint object."""
    for key in ('state_dict', 'model'):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConversionError(
            f'{name} is not a state dict (a dict of tensors, or one under '
            "'state_dict' or 'model')")
    out = OrderedDict()
    for key, value in obj.items():
        out[key[len('module.'):] if key.startswith('module.') else key] = value
    return out


def detect_arch(src):
    """``'resnet'`` or ``'vit'`` from the authors' key layout."""
    keys = set(src)
    if any(k.startswith(('backbone.', 'head.csra_heads.')) for k in keys):
        raise ConversionError(
            'the input already has mmpretrain keys (backbone.*, head.*); '
            'it needs no conversion')
    if 'patch_embed.proj.weight' in keys and any(
            k.startswith('blocks.') for k in keys):
        return 'vit'
    if 'conv1.weight' in keys and any(k.startswith('layer4.') for k in keys):
        return 'resnet'
    raise ConversionError(
        'neither the ResNet_CSRA layout (conv1, bn1, layer1-4) nor the '
        'VIT_CSRA layout (patch_embed.proj, blocks.N) found; keys: ' +
        _names(keys, 10))


def convert_heads(src):
    """The ``classifier.multi_head.{i}`` weights as ``CSRAClsHead`` keys,
    and the head count, class count and input channels."""
    heads = {}
    for key, value in src.items():
        match = _HEAD.match(key)
        if match:
            heads[int(match.group(1))] = value
        elif key.startswith('classifier.'):
            raise ConversionError(
                f'unexpected CSRA key {key!r} (only '
                'classifier.multi_head.{i}.head.weight, a bias-free 1x1 conv)')
    if not heads:
        raise ConversionError(
            'no CSRA heads (classifier.multi_head.{i}.head.weight) found')
    num_heads = len(heads)
    if sorted(heads) != list(range(num_heads)):
        raise ConversionError(f'CSRA heads numbered {sorted(heads)}, not '
                              f'0..{num_heads - 1}')
    if num_heads not in TEMPERATURES:
        raise ConversionError(
            f'{num_heads} CSRA heads: the authors (and CSRAClsHead) define '
            f'temperatures only for {sorted(TEMPERATURES)}')
    shapes = {tuple(v.shape) for v in heads.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 4 or \
            next(iter(shapes))[2:] != (1, 1):
        raise ConversionError(f'CSRA head weights of shapes {shapes}, not '
                              'one (classes, channels, 1, 1)')
    num_classes, in_channels = next(iter(shapes))[:2]
    out = OrderedDict((f'head.csra_heads.{i}.head.weight', heads[i])
                      for i in range(num_heads))
    return out, dict(num_heads=num_heads, num_classes=num_classes,
                     in_channels=in_channels,
                     temperatures=TEMPERATURES[num_heads])


def convert_resnet(src):
    """torchvision ``ResNet`` keys -> mmpretrain ``ResNet`` keys: the same
    names under ``backbone.`` (the unused ``fc`` is dropped)."""
    out = OrderedDict()
    for key, value in src.items():
        if key.startswith('classifier.') or key.startswith('fc.'):
            continue
        if not _RESNET_KEY.match(key):
            raise ConversionError(f'unexpected ResNet_CSRA key {key!r}')
        out['backbone.' + key] = value
    blocks = {int(m.group(1)) for k in src
              for m in [re.match(r'layer3\.(\d+)\.', k)] if m}
    bottleneck = any(k.startswith('layer1.0.conv3.') for k in src)
    depth = {(True, 23): 101, (True, 6): 50, (True, 36): 152,
             (False, 6): 34, (False, 2): 18}.get(
                 (bottleneck, len(blocks)))
    return out, dict(depth=depth)


def convert_vit(src):
    """timm ``VisionTransformer`` keys -> mmpretrain ``VisionTransformer``
    keys (``blocks`` -> ``layers``, final ``norm`` -> ``ln1``)."""
    out = OrderedDict()
    for key, value in src.items():
        if key.startswith('classifier.'):
            continue
        if key.startswith('head.'):
            continue  # timm's 1000-class head; VIT_CSRA empties it
        if key in ('cls_token', 'pos_embed'):
            new = key
        elif key.startswith('patch_embed.proj.'):
            new = key.replace('patch_embed.proj.', 'patch_embed.projection.')
        elif key.startswith('norm.'):
            new = 'ln1.' + key[len('norm.'):]
        elif key.startswith('blocks.'):
            _, index, rest = key.split('.', 2)
            for old, repl in _VIT_BLOCK:
                if rest.startswith(old):
                    new = f'layers.{index}.{repl}{rest[len(old):]}'
                    break
            else:
                raise ConversionError(f'unexpected ViT block key {key!r}')
        else:
            raise ConversionError(f'unexpected VIT_CSRA key {key!r}')
        out['backbone.' + new] = value
    embed_dims, _, patch, _ = src['patch_embed.proj.weight'].shape
    depth = len({k.split('.')[1] for k in src if k.startswith('blocks.')})
    return out, dict(embed_dims=embed_dims, num_layers=depth,
                     patch_size=patch,
                     num_tokens=src['pos_embed'].shape[1])


def convert(src):
    """``(state_dict, meta)`` of the mmpretrain model for an authors' state
    dict ``src`` (already unwrapped)."""
    src = unwrap(src)
    arch = detect_arch(src)
    heads, head_meta = convert_heads(src)
    body, body_meta = (convert_resnet if arch == 'resnet' else
                       convert_vit)(src)
    body.update(heads)
    meta = dict(arch=arch, **body_meta, **head_meta,
                converter='tools/model_converters/'
                'msl_official_to_mmpretrain.py')
    return body, meta


def build_model(config, cfg_options=None):
    """The config's plain ``ImageClassifier`` (no pretrained weights)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmmsl  # noqa: F401  (registers the MSL components)
    from mmmsl.models import plain_classifier_cfg
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = plain_classifier_cfg(copy.deepcopy(cfg.model))
    # as mmengine's Runner: a top-level data_preprocessor is the model's
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model_cfg['backbone'] = dict(model_cfg['backbone'], init_cfg=None)
    return cfg, MODELS.build(model_cfg)


def check_against_config(state_dict, meta, config, cfg_options=None):
    """Raise :class:`ConversionError` unless ``state_dict`` loads strictly
    into the model of ``config``; return the model, loaded."""
    cfg, model = build_model(config, cfg_options)
    head = cfg.model.head
    problems = []
    if head.get('num_heads') is not None and \
            head.num_heads != meta['num_heads']:
        problems.append(
            f"the checkpoint has {meta['num_heads']} CSRA heads, the config "
            f'model.head.num_heads = {head.num_heads}')
    if head.get('num_classes') is not None and \
            head.num_classes != meta['num_classes']:
        problems.append(
            f"the checkpoint has {meta['num_classes']} classes, the config "
            f'model.head.num_classes = {head.num_classes}')
    expected = model.state_dict()
    missing = set(expected) - set(state_dict)
    unexpected = set(state_dict) - set(expected)
    mis_shaped = [
        f'{k} {tuple(state_dict[k].shape)} vs {tuple(expected[k].shape)}'
        for k in sorted(set(expected) & set(state_dict))
        if state_dict[k].shape != expected[k].shape]
    if missing:
        problems.append(f'missing keys: {_names(missing)}')
    if unexpected:
        problems.append(f'unexpected keys: {_names(unexpected)}')
    if mis_shaped:
        problems.append('shape mismatch (checkpoint vs model): ' +
                        _names(mis_shaped, 10))
    name = config if isinstance(config, str) else 'the config'
    if problems:
        read = ', '.join(f'{k}={meta[k]}' for k in _SUMMARY
                         if meta.get(k) is not None)
        raise ConversionError(
            f'the converted weights ({read}) do not fit {name}: ' +
            '; '.join(problems) +
            ' (a different head count or depth: --cfg-options '
            'model.head.num_heads=N model.head.lam=L ...)')
    model.load_state_dict(state_dict, strict=True)
    return model


def main(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(
        description="Convert the MSL (or CSRA) authors' ResNet_CSRA / "
        'VIT_CSRA state dict to an mmpretrain checkpoint')
    parser.add_argument('src', help="the authors' .pth")
    parser.add_argument('dst', help='the mmengine checkpoint to write')
    parser.add_argument(
        '--config', help='check strict loading into this config\'s model')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. model.head.num_heads=4')
    parser.add_argument(
        '--unsafe-load', action='store_true',
        help='torch.load(weights_only=False): only for files you trust')
    args = parser.parse_args(argv)
    try:
        state_dict, meta = convert(load_source(args.src, args.unsafe_load))
        meta['converted_from'] = osp.basename(args.src)
        if args.config:
            check_against_config(state_dict, meta, args.config,
                                 args.cfg_options)
            meta['config'] = args.config
    except ConversionError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    torch.save({'state_dict': state_dict, 'meta': meta}, args.dst)
    info = ', '.join(f'{k}={meta[k]}' for k in _SUMMARY
                     if meta.get(k) is not None)
    checked = f', loads strictly into {args.config}' if args.config else ''
    print(f'{args.src} -> {args.dst}: {len(state_dict)} tensors ({info})'
          f'{checked}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
