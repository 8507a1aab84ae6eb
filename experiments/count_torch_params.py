"""Parameter counts of the original PyTorch networks, for the constants in models_test.py.

The ResNets and the DenseNet are the original HPN modules as rebuilt in
experiments/torch_hpn.py (github.com/psmmettes/hpn `models/cifar/resnet.py`,
`models/imagenet200/resnet.py`, `models/cub/resnet.py`, `models/cifar/densenet.py`), also
used by experiments/parity_torch.py. The ViT (no original) is the standard pre-LN ViT
with a class token (vision_transformer / timm layout: qkv and out projections with bias,
LayerNorm with scale and bias). torch is NOT a dependency of hyperproto: run this in a
separate environment:

  python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install torch==2.13.0 numpy
  /work/torchvenv/bin/python experiments/count_torch_params.py

It prints, per variant, the backbone's parameters (everything but the final Linear) and
the total with a Linear head to d = 10 outputs. BatchNorm running statistics are buffers,
not parameters, in both frameworks.
"""

import torch
from torch import nn

import torch_hpn

HEAD_DIM = 10


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
      **{name: lambda make=make: make(d) for name, make in torch_hpn.VARIANTS.items()},
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
