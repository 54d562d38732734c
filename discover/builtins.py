"""Importing this module registers every built-in task, network, rule and meta-optimizer."""

from . import networks, optimizers  # noqa: F401
from .rules import mlp, polynomial, symbolic  # noqa: F401
from .tasks import imitate, oja_pca  # noqa: F401
