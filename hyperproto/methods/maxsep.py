"""`maxsep`: the closed-form matrix of maximum class separation before softmax.

Kasarla et al., "Maximum Class Separation as Inductive Bias in One Matrix", NeurIPS 2022;
reference code tkasarla/max-separation-as-inductive-bias.

The network outputs z in R^(C-1); the fixed (C-1) x C matrix P (placement `maxsep`,
`prototypes.closed_form.maxsep_matrix`; its columns are our prototypes) maps it to the
logits r z P, trained with softmax cross-entropy and predicted by their argmax
(LT_CIFAR/train_cifar.py: `outputs = torch.mm(outputs, prototypes)` after
`prototypes *= args.radius`, in both `train` and `test`). z is not normalised.

Hyper-parameters: `radius` r (their `-r`, default 1.0; their help text says "use 1 for
alexnet and 0.1 for resnet", their run_code.sh uses 1.0 with a ResNet-34).
The paper and the code agree here.
"""

import jax
import jax.numpy as jnp
import optax

from hyperproto.methods import Method

Array = jax.Array


def maxsep_scores(z_BxD: Array, protos, *, radius: float = 1.0) -> Array:
  """The logits r z P, B x C float32."""
  z_BxD = jnp.asarray(z_BxD, jnp.float32)
  return z_BxD @ (radius * jnp.asarray(protos['classes'], jnp.float32)).T


def maxsep_loss(z_BxD: Array, protos, labels_B: Array, *, radius: float = 1.0) -> Array:
  """Per-example softmax cross-entropy of the logits (B,)."""
  return optax.softmax_cross_entropy_with_integer_labels(
      maxsep_scores(z_BxD, protos, radius=radius), labels_B)


def _check(num_classes: int, dim: int):
  if dim != num_classes - 1:
    return (f'the max-separation matrix maps a (C-1)-d output to C logits; set '
            f'dim={num_classes - 1}.')
  return None


METHOD = Method(
    name='maxsep',
    paper='Kasarla et al., NeurIPS 2022 (tkasarla/max-separation-as-inductive-bias)',
    placement='maxsep',
    loss=maxsep_loss,
    scores=maxsep_scores,
    defaults=dict(radius=1.0),
    check=_check,
    default_dim=lambda num_classes, dim: num_classes - 1,
)
