"""hyperproto: Hyperspherical Prototype Networks in JAX/Flax."""

__version__ = "0.1.0"
