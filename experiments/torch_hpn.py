"""The original HPN networks, losses and placement, rebuilt in PyTorch (for comparisons).

Rebuilt, not copied, from github.com/psmmettes/hpn (Python 2; it no longer runs as is),
keeping what decides the numbers: layers, shapes, shortcuts, initialisation, forward
passes and module names (so that a state_dict maps one-to-one onto our parameters):
  - `CifarResNet`: `models/cifar/resnet.py` ResNet (also `models/imagenet200/resnet.py`,
    the same network with AvgPool2d(16));
  - `ResNet`: `models/cub/resnet.py` ResNet (= `models/omniart/resnet.py`);
  - `DenseNet`: `models/cifar/densenet.py` DenseNet (kuangliu), `DenseNet121`;
  - `classification_loss`: the loss of `hpn_cifar.py` main_train;
    `regression_loss`, `joint_loss`: `hpn_omniart.py` main_train (task 0 and 2);
  - `prototype_loss`, `place_prototypes`: `prototypes.py` (`prototype_loss` and the loop
    of its `__main__`).
The `polars` attribute and `predict` (prototype matching at test time) are left out.

torch is NOT a dependency of hyperproto: use it from a separate environment (see
experiments/parity_torch.py and experiments/count_torch_params.py).
"""

import math

import torch
from torch import nn
from torch import optim
import torch.nn.functional as F


def conv3x3(cin, cout, stride=1):
  """models/cifar/resnet.py conv3x3 (identical in models/cub/resnet.py)."""
  return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
  """models/{cifar,cub}/resnet.py BasicBlock."""
  expansion = 1

  def __init__(self, cin, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1, self.bn1 = conv3x3(cin, planes, stride), nn.BatchNorm2d(planes)
    self.relu = nn.ReLU(inplace=True)
    self.conv2, self.bn2 = conv3x3(planes, planes), nn.BatchNorm2d(planes)
    self.downsample = downsample
    self.stride = stride

  def forward(self, x):
    residual = x
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    if self.downsample is not None:
      residual = self.downsample(x)
    out += residual
    return self.relu(out)


class Bottleneck(nn.Module):
  """models/{cifar,cub}/resnet.py Bottleneck (stride on the 3x3 conv)."""
  expansion = 4

  def __init__(self, cin, planes, stride=1, downsample=None):
    super().__init__()
    self.conv1, self.bn1 = nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes)
    self.conv2, self.bn2 = conv3x3(planes, planes, stride), nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample
    self.stride = stride

  def forward(self, x):
    residual = x
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    if self.downsample is not None:
      residual = self.downsample(x)
    out += residual
    return self.relu(out)


def make_layer(block, cin, planes, blocks, stride, shortcut_kernel):
  """ResNet._make_layer of both files; the shortcut is `Conv2d(kernel_size=3, padding=1)`
  in models/cifar/resnet.py (its 1x1 is commented out) and 1x1 in models/cub/resnet.py."""
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
  """models/cifar/resnet.py ResNet(depth, output_dims, multiplier): BasicBlocks only."""

  def __init__(self, depth, output_dims=10, multiplier=1, pool_size=8):
    super().__init__()
    assert (depth - 2) % 6 == 0, 'depth should be 6n+2'
    n = (depth - 2) // 6
    c = 16 * multiplier
    self.conv1 = nn.Conv2d(3, c, kernel_size=3, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(c)
    self.relu = nn.ReLU(inplace=True)
    self.layer1, c = make_layer(BasicBlock, c, 16 * multiplier, n, 1, 3)
    self.layer2, c = make_layer(BasicBlock, c, 32 * multiplier, n, 2, 3)
    self.layer3, c = make_layer(BasicBlock, c, 64 * multiplier, n, 2, 3)
    self.avgpool = nn.AvgPool2d(pool_size)  # 16 in models/imagenet200/resnet.py.
    self.fc = nn.Linear(c, output_dims)
    for m in self.modules():
      if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
        m.weight.data.normal_(0, math.sqrt(2. / fan_out))
      elif isinstance(m, nn.BatchNorm2d):
        m.weight.data.fill_(1)
        m.bias.data.zero_()

  def forward(self, x):
    x = self.relu(self.bn1(self.conv1(x)))
    x = self.layer3(self.layer2(self.layer1(x)))
    x = self.avgpool(x)
    return self.fc(x.view(x.size(0), -1))


class ResNet(nn.Module):
  """models/cub/resnet.py ResNet(block, layers, nr_outputs): torchvision-style."""

  def __init__(self, block, layers, nr_outputs):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    c = 64
    self.layer1, c = make_layer(block, c, 64, layers[0], 1, 1)
    self.layer2, c = make_layer(block, c, 128, layers[1], 2, 1)
    self.layer3, c = make_layer(block, c, 256, layers[2], 2, 1)
    self.layer4, c = make_layer(block, c, 512, layers[3], 2, 1)
    self.avgpool = nn.AvgPool2d(7, stride=1)
    self.fc = nn.Linear(c, nr_outputs)
    for m in self.modules():
      if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
      elif isinstance(m, nn.BatchNorm2d):
        nn.init.constant_(m.weight, 1)
        nn.init.constant_(m.bias, 0)

  def forward(self, x):
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    x = self.avgpool(x)
    return self.fc(x.view(x.size(0), -1))


class DenseBottleneck(nn.Module):
  """models/cifar/densenet.py Bottleneck: new features concatenated in front."""

  def __init__(self, cin, growth):
    super().__init__()
    self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, 4 * growth, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(4 * growth)
    self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

  def forward(self, x):
    out = self.conv1(F.relu(self.bn1(x)))
    out = self.conv2(F.relu(self.bn2(out)))
    return torch.cat([out, x], 1)


class Transition(nn.Module):
  """models/cifar/densenet.py Transition."""

  def __init__(self, cin, cout):
    super().__init__()
    self.bn, self.conv = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 1, bias=False)

  def forward(self, x):
    return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
  """models/cifar/densenet.py DenseNet (PyTorch's default initialisation)."""

  def __init__(self, nblocks, growth_rate=12, reduction=0.5, num_classes=10,
               pool_size=4):
    super().__init__()
    self.growth_rate = growth_rate
    c = 2 * growth_rate
    self.conv1 = nn.Conv2d(3, c, kernel_size=3, padding=1, bias=False)
    for i, nb in enumerate(nblocks):
      setattr(self, f'dense{i + 1}', nn.Sequential(
          *[DenseBottleneck(c + k * growth_rate, growth_rate) for k in range(nb)]))
      c += nb * growth_rate
      if i < len(nblocks) - 1:
        out = int(math.floor(c * reduction))
        setattr(self, f'trans{i + 1}', Transition(c, out))
        c = out
    self.bn = nn.BatchNorm2d(c)
    self.linear = nn.Linear(c, num_classes)
    self.pool_size = pool_size  # 8 in models/imagenet200/densenet.py.

  def forward(self, x):
    out = self.conv1(x)
    out = self.trans1(self.dense1(out))
    out = self.trans2(self.dense2(out))
    out = self.trans3(self.dense3(out))
    out = self.dense4(out)
    out = F.avg_pool2d(F.relu(self.bn(out)), self.pool_size)
    return self.linear(out.view(out.size(0), -1))


def DenseNet121(nr_outputs, pool_size=4):  # pylint: disable=invalid-name
  return DenseNet([6, 12, 24, 16], growth_rate=32, num_classes=nr_outputs,
                  pool_size=pool_size)


# Constructors by hyperproto.models name (the variants that have an original).
VARIANTS = {
    **{f'resnet{depth}': lambda d, depth=depth: CifarResNet(depth, d)
       for depth in (20, 32, 44, 56, 110)},
    'resnet32_64': lambda d: CifarResNet(32, d, pool_size=16),
    'resnet18': lambda d: ResNet(BasicBlock, [2, 2, 2, 2], d),
    'resnet34': lambda d: ResNet(BasicBlock, [3, 4, 6, 3], d),
    'resnet50': lambda d: ResNet(Bottleneck, [3, 4, 6, 3], d),
    'densenet121': lambda d: DenseNet121(d),
    'densenet121_64': lambda d: DenseNet121(d, pool_size=8),
}


# --- Losses -----------------------------------------------------------------------------


def cosine():
  """The original's `f_loss = nn.CosineSimilarity(eps=1e-9)`."""
  return nn.CosineSimilarity(eps=1e-9)


def classification_loss(output, target_protos):
  """hpn_cifar.py main_train: `(1 - f_loss(output, target)).pow(2).sum()` with
  `target = model.polars[target]`."""
  return (1 - cosine()(output, target_protos)).pow(2).sum()


def regression_loss(output, upper, r):
  """hpn_omniart.py main_train, loss1: the regression prototype repeated over the batch;
  `r` = 2 ((year - lb) / (ub - lb)) - 1, computed beforehand (`trainy`)."""
  upp = upper.view(-1, 1).repeat(1, output.shape[0]).t()
  return (r - cosine()(output, upp)).pow(2).sum()


def joint_loss(output, upper, r, target_protos, weight=0.5):
  """hpn_omniart.py main_train, task 2: classes on output[:, 1:]."""
  loss1 = regression_loss(output, upper, r)
  loss2 = (1 - cosine()(output[:, 1:], target_protos)).pow(2).sum()
  return (1. - weight) * loss1 + weight * loss2


def train_step(model, optimizer, data, target_protos):
  """One step of hpn_cifar.py main_train (on CPU; the original moves tensors to CUDA)."""
  model.train()
  output = model(data)
  loss = classification_loss(output, target_protos)
  optimizer.zero_grad()
  loss.backward()
  optimizer.step()
  return loss.item()


def sgd(params, lr=0.01, momentum=0.9, decay=1e-4):
  """helper.py get_optimizer('sgd', ...): coupled weight decay on every parameter."""
  return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=decay)


# --- Prototype placement ----------------------------------------------------------------


def prototype_loss(prototypes):
  """prototypes.py prototype_loss: mean over rows of max_{j != i} (cos_ij + 1)."""
  product = torch.matmul(prototypes, prototypes.t()) + 1
  product -= 2. * torch.diag(torch.diag(product))
  loss = product.max(dim=1)[0]
  return loss.mean(), product.max()


def place_prototypes(init, epochs=10000, learning_rate=0.1, momentum=0.9):
  """The loop of prototypes.py `__main__` without word vectors, from the initial points
  `init` (the original draws them with `torch.randn(classes, dims)` after
  `torch.manual_seed(seed)`). The optimiser is re-created after every step, so its
  momentum buffer never acts."""
  prototypes = nn.Parameter(F.normalize(init, p=2, dim=1))
  optimizer = optim.SGD([prototypes], lr=learning_rate, momentum=momentum)
  for _ in range(epochs):
    loss, _ = prototype_loss(prototypes)
    loss.backward()
    optimizer.step()
    prototypes = nn.Parameter(F.normalize(prototypes, p=2, dim=1))
    optimizer = optim.SGD([prototypes], lr=learning_rate, momentum=momentum)
  return prototypes.data


def original_init(classes, dims, seed=300):
  """prototypes.py: `torch.manual_seed(seed)` then `torch.randn(classes, dims)`."""
  torch.manual_seed(seed)
  return torch.randn(classes, dims)
