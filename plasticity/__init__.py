"""plasticity-discovery: ``import plasticity as pl`` (the public API, :mod:`plasticity.api`).

Attributes load on first use, so that the command line starts without importing JAX.
"""

from __future__ import annotations

import importlib


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    api = importlib.import_module("plasticity.api")
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'plasticity' has no attribute {name!r}")


def __dir__():
    return sorted(importlib.import_module("plasticity.api").__all__)
