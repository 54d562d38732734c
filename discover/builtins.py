"""Importing this module registers every built-in task, network, rule and meta-optimizer."""

from . import networks, optimizers  # noqa: F401
from .rules import mlp, polynomial, symbolic  # noqa: F401
from .tasks import oja_pca  # noqa: F401  (the default task first: `plasticity list` order)

from .tasks import imitate  # noqa: F401  # isort: skip
