"""Importing this module registers every built-in task, network, rule and meta-optimizer
(each package's ``__init__`` fixes its own order)."""

from . import layers, networks, optimizers, rules, tasks  # noqa: F401
