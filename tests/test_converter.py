"""tools/model_converters/msl_official_to_mmpretrain.py: the MSL authors'
ResNet_CSRA / VIT_CSRA state dicts, rebuilt here with random weights in the
authors' key layout (torchvision ResNet, timm ViT, CSRA heads written from
the paper's formula), convert into our configs' models and give the same
logits on the same image through our data preprocessor."""
import importlib.util
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(ROOT, 'tools', 'model_converters',
                'msl_official_to_mmpretrain.py')
TEMPS = {1: [1], 2: [1, 99], 4: [1, 2, 4, 99], 6: [1, 2, 3, 4, 5, 99],
         8: [1, 2, 3, 4, 5, 6, 7, 99]}


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('msl_converter', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the authors' architecture, in their key layout --------------------------
class RefCSRA(nn.Module):
    """One CSRA head: score = 1x1 conv(x) / ||w_c|| over the positions;
    logit = mean + lam * (softmax(T * score)-weighted sum, max at T = 99)."""

    def __init__(self, dim, classes, T, lam):
        super().__init__()
        self.T, self.lam = T, lam
        self.head = nn.Conv2d(dim, classes, 1, bias=False)

    def forward(self, x):
        w = self.head.weight.flatten(1)                     # C x D
        score = torch.einsum('bdhw,cd->bchw', x, w).flatten(2)
        score = score / w.norm(dim=1)[None, :, None]
        if self.T == 99:
            att = score.max(dim=2).values
        else:
            att = (score * torch.softmax(self.T * score, dim=2)).sum(2)
        return score.mean(dim=2) + self.lam * att


class RefMHA(nn.Module):

    def __init__(self, num_heads, lam, dim, classes):
        super().__init__()
        self.multi_head = nn.ModuleList(
            RefCSRA(dim, classes, t, lam) for t in TEMPS[num_heads])

    def forward(self, x):
        return sum(h(x) for h in self.multi_head)


def _randomise(module, calibrate=None, matrices=True):
    """Non-trivial weights everywhere (``matrices=False``: conv and linear
    weights keep their random default init); BN statistics from one
    train-mode pass of ``calibrate`` (eval-mode activations stay finite)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1:  # norm affine and biases
                base = 1.0 if name.endswith('weight') else 0.0
                p.copy_(base + 0.1 * torch.randn_like(p))
            elif matrices:
                p.copy_(torch.randn_like(p) * p.std().clamp(min=0.02))
        if calibrate is not None:
            for m in module.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.momentum = 1.0
            module.train()
            calibrate()
    return module.eval()


def ref_resnet(depth, num_heads, lam, classes):
    """The authors' ResNet_CSRA: torchvision's ResNet with the fc emptied
    and ``classifier = MHA(...)``."""
    net = getattr(torchvision.models, f'resnet{depth}')(weights=None)
    net.fc = nn.Sequential()
    net.classifier = RefMHA(num_heads, lam, 2048 if depth >= 50 else 512,
                            classes)

    def forward(x):
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        return net.classifier(x)
    _randomise(net, lambda: forward(torch.rand(2, 3, 64, 64)), False)
    return net, forward


class RefBlock(nn.Module):

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, 3 * dim)
        self.attn.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim)
        self.mlp.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.attn.qkv(self.norm1(x)).reshape(
            B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) *
                (C // self.heads)**-0.5).softmax(-1)
        x = x + self.attn.proj((attn @ v).transpose(1, 2).reshape(B, N, C))
        h = self.mlp.fc2(nn.functional.gelu(self.mlp.fc1(self.norm2(x))))
        return x + h


class RefViTCSRA(nn.Module):
    """The authors' VIT_CSRA (timm keys), small."""

    def __init__(self, img, patch, dim, depth, heads, num_heads, lam,
                 classes):
        super().__init__()
        self.hw = img // patch
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.hw**2 + 1, dim))
        self.blocks = nn.ModuleList(RefBlock(dim, heads)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Sequential()
        self.classifier = RefMHA(num_heads, lam, dim, classes)

    def forward(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1)
        x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)[:, 1:]
        b, hw, c = x.shape
        x = x.transpose(1, 2).reshape(b, c, self.hw, self.hw)
        return self.classifier(x)


# --- helpers -----------------------------------------------------------------
def _image(size, seed=0):
    rng = np.random.RandomState(seed)
    return torch.from_numpy(rng.randint(0, 256, (3, size, size),
                                        dtype=np.uint8))


def _ours(model, rgb_uint8):
    """Our logits: the image as LoadImageFromFile gives it (BGR) through
    the config's data preprocessor, then backbone and head."""
    data = model.data_preprocessor(
        dict(inputs=[rgb_uint8.flip(0).contiguous()]), False)
    with torch.no_grad():
        return model(data['inputs'], mode='tensor')


def _convert_and_load(tool, ref, config, options):
    state_dict, meta = tool.convert(ref.state_dict())
    model = tool.check_against_config(state_dict, meta, config, options)
    return model.eval(), meta


# --- tests -------------------------------------------------------------------
@pytest.mark.parametrize('num_heads,classes,lam,config', [
    (1, 20, 0.1, 'configs/msl/resnet101_csra_voc.py'),
    (6, 80, 0.4, 'configs/msl/resnet101_csra_coco.py'),
])
def test_resnet_csra_same_logits(tool, num_heads, classes, lam, config):
    torch.manual_seed(num_heads)
    ref, forward = ref_resnet(50, num_heads, lam, classes)
    model, meta = _convert_and_load(
        tool, ref, osp.join(ROOT, config), {'model.backbone.depth': 50})
    assert meta['arch'] == 'resnet' and meta['depth'] == 50
    assert (meta['num_heads'], meta['num_classes']) == (num_heads, classes)
    assert [h.T for h in model.head.csra_heads] == TEMPS[num_heads]
    assert all(h.lam == lam for h in model.head.csra_heads)
    img = _image(96)
    with torch.no_grad():
        expected = forward(img[None].float() / 255)      # [0, 1] RGB
    ours = _ours(model, img)
    assert ours.shape == (1, classes)
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('num_heads,classes,lam,config,unit', [
    # WIDER: the authors normalise with mean = std = 0.5 ([-1, 1])
    (1, 14, 0.3, 'configs/msl/vit-b16_csra_wider.py', False),
    # VOC / COCO: [0, 1]
    (8, 80, 1.0, 'configs/msl/vit-l16_csra_coco.py', True),
])
def test_vit_csra_same_logits(tool, num_heads, classes, lam, config, unit):
    torch.manual_seed(num_heads)
    dim, depth, heads, img_size = 64, 2, 4, 64
    ref = _randomise(RefViTCSRA(img_size, 16, dim, depth, heads, num_heads,
                                lam, classes))
    options = {
        'model.backbone.arch': dict(_delete_=True, embed_dims=dim,
                                    num_layers=depth, num_heads=heads,
                                    feedforward_channels=4 * dim),
        'model.backbone.img_size': img_size,
        'model.head.in_channels': dim,
    }
    model, meta = _convert_and_load(tool, ref, osp.join(ROOT, config),
                                    options)
    assert meta['arch'] == 'vit' and meta['num_layers'] == depth
    assert (meta['num_heads'], meta['num_classes']) == (num_heads, classes)
    img = _image(img_size, seed=1)
    x = img[None].float() / 255
    with torch.no_grad():
        expected = ref(x if unit else (x - 0.5) / 0.5)
    torch.testing.assert_close(_ours(model, img), expected, atol=1e-4,
                               rtol=1e-4)


def test_real_depth_keys(tool):
    """A full ResNet-101 with 6 heads fits configs/msl/resnet101_csra_coco.py
    as it is (keys and shapes only)."""
    net = torchvision.models.resnet101(weights=None)
    src = {k: v for k, v in net.state_dict().items()
           if not k.startswith('fc.')}
    for i in range(6):
        src[f'classifier.multi_head.{i}.head.weight'] = torch.zeros(
            80, 2048, 1, 1)
    # the DataParallel layout under 'state_dict' unwraps to the same
    wrapped = {'state_dict': {'module.' + k: v for k, v in src.items()}}
    state_dict, meta = tool.convert(tool.unwrap(wrapped))
    assert meta['depth'] == 101
    tool.check_against_config(
        state_dict, meta, osp.join(ROOT, 'configs/msl/resnet101_csra_coco.py'))


def test_mismatch_names_keys(tool):
    torch.manual_seed(0)
    ref, _ = ref_resnet(50, 6, 0.4, 80)
    src = ref.state_dict()
    del src['layer4.2.bn3.running_var']
    state_dict, meta = tool.convert(src)
    with pytest.raises(tool.ConversionError) as err:
        tool.check_against_config(
            state_dict, meta,
            osp.join(ROOT, 'configs/msl/resnet101_csra_voc.py'),
            {'model.backbone.depth': 50})
    msg = str(err.value)
    assert '6 CSRA heads' in msg and 'num_heads = 1' in msg
    assert '80 classes' in msg
    assert 'missing keys: backbone.layer4.2.bn3.running_var' in msg
    assert 'unexpected keys: head.csra_heads.1.head.weight' in msg
    assert 'head.csra_heads.0.head.weight (80, 2048, 1, 1) vs ' \
           '(20, 2048, 1, 1)' in msg
    with pytest.raises(tool.ConversionError, match='neither the ResNet_CSRA'):
        tool.convert({'foo.weight': torch.zeros(1)})
    with pytest.raises(tool.ConversionError, match='no CSRA heads'):
        tool.convert({k: v for k, v in src.items()
                      if not k.startswith('classifier.')})


def test_cli(tool, tmp_path, capsys):
    torch.manual_seed(3)
    ref, forward = ref_resnet(50, 1, 0.1, 20)
    src, dst = tmp_path / 'msl_c_voc.pth', tmp_path / 'out' / 'voc.pth'
    torch.save({'model': ref.state_dict()}, src)
    config = osp.join(ROOT, 'configs/msl/resnet101_csra_voc.py')
    run = subprocess.run(
        [sys.executable, TOOL, str(src), str(dst), '--config', config,
         '--cfg-options', 'model.backbone.depth=50'],
        capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert 'loads strictly' in run.stdout
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert ckpt['meta']['num_heads'] == 1
    assert ckpt['meta']['converted_from'] == 'msl_c_voc.pth'
    # what tools/test.py does with it: mmengine's loader, here strict
    from mmengine.runner import load_checkpoint
    _, model = tool.build_model(config, {'model.backbone.depth': 50})
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    img = _image(64, seed=2)
    with torch.no_grad():
        expected = forward(img[None].float() / 255)
    torch.testing.assert_close(_ours(model.eval(), img), expected,
                               atol=1e-4, rtol=1e-4)
    # a mismatch fails with the reason and writes nothing (main() in-process)
    bad = tmp_path / 'bad.pth'
    assert tool.main([
        str(src), str(bad), '--config',
        osp.join(ROOT, 'configs/msl/resnet101_csra_coco.py'),
        '--cfg-options', 'model.backbone.depth=50']) == 1
    assert not bad.exists()
    err = capsys.readouterr().err
    assert '1 CSRA heads' in err and 'num_heads = 6' in err
