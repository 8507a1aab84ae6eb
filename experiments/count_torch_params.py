"""Parameter counts of the original PyTorch networks, for the constants in models_test.py.

The modules below are transcribed from the original HPN code (github.com/psmmettes/hpn:
`models/cifar/resnet.py`, `models/imagenet200/resnet.py`, `models/cub/resnet.py`,
`models/cifar/densenet.py`), keeping only what decides the parameters (layers, shapes,
shortcuts). The ViT is the standard pre-LN ViT with a class token (vision_transformer /
timm layout: qkv and out projections with bias, LayerNorm with scale and bias). torch is
NOT a dependency of hyperproto: run this in a separate environment:

  python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install torch==2.13.0 numpy
  /work/torchvenv/bin/python experiments/count_torch_params.py

It prints, per variant, the backbone's parameters (everything but the final Linear) and
the total with a Linear head to d = 10 outputs. BatchNorm running statistics are buffers,
not parameters, in both frameworks.
"""

import math

import torch
from torch import nn

HEAD_DIM = 10


def conv3x3(cin, cout, stride=1):
  return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, cin, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1, self.bn1 = conv3x3(cin, planes, stride), nn.BatchNorm2d(planes)
    self.conv2, self.bn2 = conv3x3(planes, planes), nn.BatchNorm2d(planes)
    self.downsample = downsample


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, cin, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1, self.bn1 = nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes)
    self.conv2, self.bn2 = conv3x3(planes, planes, stride), nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.downsample = downsample


def make_layer(block, cin, planes, blocks, stride, shortcut_kernel):
  downsample = None
  if stride != 1 or cin != planes * block.expansion:
    downsample = nn.Sequential(
        nn.Conv2d(cin, planes * block.expansion, shortcut_kernel, stride=stride,
                  padding=shortcut_kernel // 2, bias=False),
        nn.BatchNorm2d(planes * block.expansion))
  layers = [block(cin, planes, stride, downsample)]
  layers += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
  return nn.Sequential(*layers), planes * block.expansion


class CifarResNet(nn.Module):
  """models/cifar/resnet.py: 3x3 stride-2 conv + BN shortcuts (the commented 1x1 unused)."""

  def __init__(self, depth, output_dims):
    super().__init__()
    n = (depth - 2) // 6
    self.conv1, self.bn1 = conv3x3(3, 16), nn.BatchNorm2d(16)
    c = 16
    self.layer1, c = make_layer(BasicBlock, c, 16, n, 1, 3)
    self.layer2, c = make_layer(BasicBlock, c, 32, n, 2, 3)
    self.layer3, c = make_layer(BasicBlock, c, 64, n, 2, 3)
    self.fc = nn.Linear(c, output_dims)


class ResNet(nn.Module):
  """models/cub/resnet.py (= models/omniart/resnet.py): torchvision-style, 1x1 shortcuts."""

  def __init__(self, block, layers, nr_outputs):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    c = 64
    self.layer1, c = make_layer(block, c, 64, layers[0], 1, 1)
    self.layer2, c = make_layer(block, c, 128, layers[1], 2, 1)
    self.layer3, c = make_layer(block, c, 256, layers[2], 2, 1)
    self.layer4, c = make_layer(block, c, 512, layers[3], 2, 1)
    self.fc = nn.Linear(c, nr_outputs)


class DenseBottleneck(nn.Module):

  def __init__(self, cin, growth):
    super().__init__()
    self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, 4 * growth, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(4 * growth)
    self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)


class Transition(nn.Module):

  def __init__(self, cin, cout):
    super().__init__()
    self.bn, self.conv = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 1, bias=False)


class DenseNet(nn.Module):
  """models/cifar/densenet.py (kuangliu): DenseNet121 = [6, 12, 24, 16], growth 32."""

  def __init__(self, nblocks, growth, num_classes, reduction=0.5):
    super().__init__()
    c = 2 * growth
    self.conv1 = nn.Conv2d(3, c, 3, padding=1, bias=False)
    stages = []
    for i, nb in enumerate(nblocks):
      stages.append(nn.Sequential(*[DenseBottleneck(c + k * growth, growth)
                                    for k in range(nb)]))
      c += nb * growth
      if i < len(nblocks) - 1:
        out = int(math.floor(c * reduction))
        stages.append(Transition(c, out))
        c = out
    self.stages = nn.Sequential(*stages)
    self.bn = nn.BatchNorm2d(c)
    self.linear = nn.Linear(c, num_classes)


class ViTBlock(nn.Module):

  def __init__(self, d, heads, mlp):
    super().__init__()
    self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
    self.attn = nn.MultiheadAttention(d, heads, bias=True)  # qkv in_proj + out_proj.
    self.mlp = nn.Sequential(nn.Linear(d, mlp), nn.GELU(), nn.Linear(mlp, d))


class ViT(nn.Module):

  def __init__(self, image, patch, d, depth, heads, mlp, num_classes):
    super().__init__()
    self.embedding = nn.Conv2d(3, d, patch, stride=patch)
    self.cls = nn.Parameter(torch.zeros(1, 1, d))
    self.pos = nn.Parameter(torch.zeros(1, 1 + (image // patch) ** 2, d))
    self.blocks = nn.Sequential(*[ViTBlock(d, heads, mlp) for _ in range(depth)])
    self.norm = nn.LayerNorm(d)
    self.head = nn.Linear(d, num_classes)


def variants(d=HEAD_DIM):
  vit = lambda image, patch, w, heads: ViT(image, patch, w, 12, heads, 4 * w, d)
  return {
      **{f'resnet{depth}': lambda depth=depth: CifarResNet(depth, d)
         for depth in (20, 32, 44, 56, 110)},
      'resnet32_64': lambda: CifarResNet(32, d),  # Only AvgPool 8 -> 16 differs.
      'resnet18': lambda: ResNet(BasicBlock, [2, 2, 2, 2], d),
      'resnet34': lambda: ResNet(BasicBlock, [3, 4, 6, 3], d),
      'resnet50': lambda: ResNet(Bottleneck, [3, 4, 6, 3], d),
      'densenet121': lambda: DenseNet([6, 12, 24, 16], 32, d),
      'densenet121_64': lambda: DenseNet([6, 12, 24, 16], 32, d),  # AvgPool 4 -> 8.
      'vit_ti4': lambda: vit(32, 4, 192, 3),
      'vit_s4': lambda: vit(32, 4, 384, 6),
      'vit_ti16': lambda: vit(224, 16, 192, 3),
      'vit_s16': lambda: vit(224, 16, 384, 6),
      'vit_b16': lambda: vit(224, 16, 768, 12),
  }


def main():
  print(f'{"variant":16s} {"backbone":>12s} {"total (d=10)":>14s}')
  for name, make in variants().items():
    model = make()
    total = sum(p.numel() for p in model.parameters())
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    backbone = total - sum(p.numel() for p in head.parameters())
    print(f'{name:16s} {backbone:12,d} {total:14,d}')


if __name__ == '__main__':
  main()
