"""Distillation engines behind one interface: ``fit(X, y, names) -> list[Candidate]``.

- ``sparse`` (default): sequentially thresholded least squares over Hebbian monomials.
- ``operon``: genetic programming with pyoperon (offline, C++).
- ``pysr``: PySR, where a Julia runtime exists.
"""

from __future__ import annotations

from discover.registry import Registry

from .base import Backend, BackendUnavailable, Candidate
from .operon import OperonBackend
from .pysr import PySRBackend
from .sparse import SparseBackend

#: ``[distill] backend`` names one of these, or a user's class by import path ("my_module:MyBackend"),
#: or one an installed package registers in the entry-point group ``plasticity.backends``.
BACKENDS = Registry("plasticity.backends", "distillation backend", "[distill] backend")
for _name, _cls in (("sparse", SparseBackend), ("operon", OperonBackend), ("pysr", PySRBackend)):
    BACKENDS.register(_name)(_cls)
DEFAULT_BACKEND = "sparse"


def get_backend(name: str = DEFAULT_BACKEND, **options) -> Backend:
    """The backend registered as ``name``, configured with ``options``.

    Args:
      name: one of :data:`BACKENDS` (``sparse``, ``operon``, ``pysr``).
      **options: fields of that backend's dataclass (e.g. ``max_time=10`` for operon).

    Returns:
      A backend instance; availability (pyoperon, Julia) is checked when it fits.

    Raises:
      discover.registry.PluginError: on an unknown name, listing the available ones.
    """
    return BACKENDS.get(name)(**options)


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Backend", "BackendUnavailable", "Candidate", "get_backend",
           "SparseBackend", "OperonBackend", "PySRBackend"]
