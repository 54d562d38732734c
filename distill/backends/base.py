"""The interface every distillation engine implements: ``fit(X, y, names) -> candidates``.

An engine (DESIGN.md section 7) takes samples of the local variables ``X`` (one column
per vocabulary name) and the neural rule's ``dw`` at those samples, and returns candidate
equations over the same names. It does not build the Pareto front, simplify or select:
:mod:`distill.front`, :mod:`distill.simplify` and :mod:`distill.select` do that, the same
way for every engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import sympy


@dataclass
class Candidate:
    """One candidate equation found by a backend.

    Attributes:
      expr: the equation, a sympy expression over the vocabulary symbols.
      complexity: sympy node count of ``expr`` (:func:`distill.simplify.complexity`).
      loss: mean squared error on the data it was fitted to (weighted, if weights given).
      backend: the name of the backend that produced it.
    """

    expr: sympy.Expr
    complexity: int
    loss: float
    backend: str


@runtime_checkable
class Backend(Protocol):
    """A distillation engine.

    Attributes:
      name: the registry name (``"sparse"``, ``"operon"``, ``"pysr"``).
    """

    name: str

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        names: Sequence[str],
        *,
        max_complexity: int = 30,
        max_degree: int = 3,
        sample_weight: np.ndarray | None = None,
        seed: int = 0,
    ) -> list[Candidate]:
        """Fit candidate equations ``dw = f(X)``.

        Args:
          X: samples of the local variables, shape ``[n, d]``.
          y: the rule's ``dw`` at those samples, shape ``[n]``.
          names: vocabulary name of each column of ``X`` (``len(names) == d``).
          max_complexity: largest sympy node count of a returned candidate.
          max_degree: largest total polynomial degree the engine should consider.
          sample_weight: optional non-negative weight per sample, shape ``[n]``.
          seed: seed of any randomness in the engine.

        Returns:
          Candidates, in no particular order.
        """
        ...


class BackendUnavailable(RuntimeError):
    """A backend that cannot run on this machine; the message says why and what to use.

    Args:
      backend: the backend's name.
      reason: why it cannot run, and how to make it run.
    """

    def __init__(self, backend: str, reason: str):
        try:
            from . import BACKENDS

            others = [n for n in BACKENDS if n != backend]
        except ImportError:  # pragma: no cover - only while the package is half-imported
            others = [n for n in ("sparse", "operon", "pysr") if n != backend]
        self.backend = backend
        self.reason = reason
        super().__init__(
            f"backend {backend!r} is unavailable: {reason}. Use another backend instead: "
            f"{', '.join(others)} (e.g. `plasticity distill DIR --backend {others[0]}`)."
        )


def check_data(X: np.ndarray, y: np.ndarray, names: Sequence[str],
               sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate and convert the arguments of :meth:`Backend.fit` to float64 arrays.

    Raises:
      ValueError: on mismatched shapes, non-finite values or negative weights, with the fix.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    names = list(names)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D [samples, variables], got shape {X.shape}")
    if X.shape[1] != len(names):
        raise ValueError(f"X has {X.shape[1]} columns but {len(names)} names were given ({names}); "
                         "give one name per column")
    if len(set(names)) != len(names):
        raise ValueError(f"names must be distinct, got {names}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; give one dw per sample")
    bad = ~np.isfinite(X).all(axis=1) | ~np.isfinite(y)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} of {len(y)} samples contain nan/inf; drop them before fitting")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if sample_weight.shape != y.shape:
            raise ValueError(f"sample_weight has shape {sample_weight.shape}, expected {y.shape}")
        if not np.all(np.isfinite(sample_weight)) or np.any(sample_weight < 0) or sample_weight.sum() <= 0:
            raise ValueError("sample_weight must be finite, non-negative and not all zero")
    return X, y, sample_weight


def weighted_mse(pred: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Mean squared error, weighted by ``sample_weight`` when given (``inf`` if not finite)."""
    r2 = (np.asarray(pred, dtype=np.float64) - y) ** 2
    loss = float(np.mean(r2)) if sample_weight is None else float(np.sum(sample_weight * r2) / np.sum(sample_weight))
    return loss if np.isfinite(loss) else float("inf")


def nondominated(rows: Sequence[tuple]) -> list[tuple]:
    """The rows ``(complexity, loss, ...)`` that no other row dominates.

    Sorted by complexity (then loss); a row is kept if it is strictly more accurate than
    every simpler kept row, so of rows with equal complexity only the most accurate (the
    first of equals, in input order) survives. The Pareto front of
    :func:`distill.front.pareto_front` and of operon's event combinations.
    """
    front: list[tuple] = []
    for r in sorted(rows, key=lambda r: (r[0], r[1])):
        if not front or r[1] < front[-1][1]:
            front.append(r)
    return front
