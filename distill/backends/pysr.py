"""Adapter to PySR (Cranmer 2023, arXiv:2305.01582), where a Julia runtime exists.

PySR runs SymbolicRegression.jl through ``juliacall``; on import it resolves, and if need
be downloads, Julia and its packages. On machines without internet that import fails or
hangs (DESIGN.md section 7), so availability is decided *before* importing: the ``pysr``
package must be installed and a Julia executable must already be on this machine. PySR
is never a hard dependency (``pip install 'plasticity-discovery[pysr]'``).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from discover.vocabulary import reduce_binary

from ..simplify import complexity, evaluate, finite_at_spikes, symbols_for
from .base import BackendUnavailable, Candidate, check_data, weighted_mse

__all__ = ["PySRBackend", "julia_executable", "unavailable_reason"]


def julia_executable() -> str | None:
    """A Julia executable already on this machine, or ``None`` (never downloads anything).

    Looks at ``PYTHON_JULIAPKG_EXE`` (juliapkg's override), ``julia`` on the ``PATH``, and
    the places juliapkg installs Julia to (``<env>/julia_env/pyjuliapkg/install/bin``).
    """
    exe = os.environ.get("PYTHON_JULIAPKG_EXE")
    if exe and (os.path.isfile(exe) or shutil.which(exe)):
        return exe
    exe = shutil.which("julia")
    if exe:
        return exe
    patterns = [os.path.join(sys.prefix, "julia_env", "pyjuliapkg", "install", "bin", "julia"),
                os.path.expanduser(os.path.join("~", ".julia", "juliaup", "*", "bin", "julia"))]
    for pattern in patterns:
        found = sorted(glob.glob(pattern))
        if found:
            return found[-1]
    return None


def unavailable_reason() -> str | None:
    """Why PySR cannot be used here, or ``None`` if it may be tried."""
    missing = []
    if importlib.util.find_spec("pysr") is None:
        missing.append("the `pysr` package is not installed (`pip install 'plasticity-discovery[pysr]'`)")
    if julia_executable() is None:
        missing.append("no Julia executable was found (no `julia` on PATH, PYTHON_JULIAPKG_EXE unset); "
                       "PySR would try to download Julia and SymbolicRegression.jl at import, which "
                       "cannot work without internet")
    if missing:
        return "PySR needs a Julia runtime with SymbolicRegression.jl: " + "; ".join(missing)
    return None


@dataclass(frozen=True)
class PySRBackend:
    """``pysr.PySRRegressor`` behind the backend interface.

    Attributes:
      binary_operators: PySR binary operators.
      unary_operators: PySR unary operators (e.g. ``("exp", "tanh")``).
      niterations: PySR iterations.
      timeout_in_seconds: wall-clock budget of one fit.
      offline: set ``PYTHON_JULIAPKG_OFFLINE=yes`` (unless already set) before importing
        PySR, so a missing Julia package is an error instead of a download attempt.
    """

    name: str = "pysr"
    binary_operators: tuple[str, ...] = ("+", "-", "*", "/")
    unary_operators: tuple[str, ...] = ()
    niterations: int = 40
    timeout_in_seconds: float = 60.0
    offline: bool = True

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
        """Fit with PySR; see :meth:`distill.backends.base.Backend.fit`.

        Raises:
          BackendUnavailable: if ``pysr`` is not installed, no Julia runtime is present,
            or importing PySR fails; the message names the other backends.
        """
        del max_degree
        reason = unavailable_reason()
        if reason is not None:
            raise BackendUnavailable(self.name, reason)
        if self.offline:
            os.environ.setdefault("PYTHON_JULIAPKG_OFFLINE", "yes")
        try:
            import pysr
        except Exception as e:  # juliacall raises many kinds of errors when Julia is broken
            raise BackendUnavailable(
                self.name, f"PySR needs a Julia runtime with SymbolicRegression.jl, and importing it failed: {e}"
            ) from e

        X, y, sample_weight = check_data(X, y, names, sample_weight)
        names = tuple(names)
        model = pysr.PySRRegressor(
            binary_operators=list(self.binary_operators),
            unary_operators=list(self.unary_operators),
            niterations=self.niterations,
            maxsize=max_complexity,
            timeout_in_seconds=self.timeout_in_seconds,
            random_state=seed,
            deterministic=True,
            parallelism="serial",
            progress=False,
            verbosity=0,
        )
        model.fit(X, y, weights=sample_weight, variable_names=list(names))
        ours = {s.name: s for s in symbols_for(names)}
        out = []
        for expr in model.equations_["sympy_format"]:
            expr = sympy.sympify(expr)
            expr = expr.xreplace({s: ours[s.name] for s in expr.free_symbols if s.name in ours})
            if not expr.free_symbols or not finite_at_spikes(expr, names, X):
                continue
            try:
                loss = weighted_mse(evaluate(expr, X, names), y, sample_weight)
            except (TypeError, ValueError):
                continue
            if np.isfinite(loss):
                out.append(Candidate(expr, complexity(reduce_binary(sympy.expand(expr))), loss, self.name))
        return out
