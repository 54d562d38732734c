"""Distillation engines behind one interface: ``fit(X, y, names) -> list[Candidate]``.

- ``sparse`` (default): sequentially thresholded least squares over Hebbian monomials.
- ``operon``: genetic programming with pyoperon (offline, C++).
- ``pysr``: PySR, where a Julia runtime exists.
"""

from __future__ import annotations

from .base import Backend, BackendUnavailable, Candidate
from .operon import OperonBackend
from .pysr import PySRBackend
from .sparse import SparseBackend

BACKENDS: dict[str, type] = {
    "sparse": SparseBackend,
    "operon": OperonBackend,
    "pysr": PySRBackend,
}
DEFAULT_BACKEND = "sparse"


def get_backend(name: str = DEFAULT_BACKEND, **options) -> Backend:
    """The backend registered as ``name``, configured with ``options``.

    Args:
      name: one of :data:`BACKENDS` (``sparse``, ``operon``, ``pysr``).
      **options: fields of that backend's dataclass (e.g. ``max_time=10`` for operon).

    Returns:
      A backend instance; availability (pyoperon, Julia) is checked when it fits.

    Raises:
      ValueError: on an unknown name, listing the available ones.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown distillation backend {name!r}; available backends: "
                         f"{', '.join(BACKENDS)} (default: {DEFAULT_BACKEND})")
    return BACKENDS[name](**options)


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Backend", "BackendUnavailable", "Candidate", "get_backend",
           "SparseBackend", "OperonBackend", "PySRBackend"]
