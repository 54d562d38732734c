r"""The Oja check: does a rate rule find the first principal component, at unit norm?

One linear neuron, Gaussian inputs with a known covariance, the same inputs and initial
weights for every rule (:class:`OjaCheck`); after ``steps`` steps the alignment
``|cos(w, PC1)|`` and the norm ``|w|`` are recorded (:func:`oja_metrics`), and

.. math:: d = \sqrt{\Delta a^2 + (\Delta |w| / \max |w|)^2}

(``inf`` if exactly one of the two rules made the weights diverge; :func:`oja_distance`).

References:
  Oja 1982, J. Math. Biol. 15:267.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .base import CHECKS, Check, equation_rule

OJA_PC1 = "oja_pc1"


@CHECKS.register(OJA_PC1)
@dataclass(frozen=True)
class OjaCheck(Check):
    """Settings of the Oja behaviour check: one linear neuron, Gaussian inputs.

    The input covariance has eigenvalues ``eigenvalues`` along the columns of a random
    orthogonal matrix (seeded); every rule sees the same ``steps`` input vectors and the
    same initial weights (uniform in [0.2, 0.8], as the ``oja_pca`` task).
    """

    name = OJA_PC1
    title = "Oja behaviour check"

    eigenvalues: tuple[float, ...] = (2.0, 1.0, 0.5, 0.25, 0.125)
    steps: int = 1500
    seed: int = 0

    def data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X [steps, n], W0 [1, n], pc1 [n])``."""
        n = len(self.eigenvalues)
        rng = np.random.default_rng(self.seed)
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        lam = np.asarray(self.eigenvalues, np.float64)
        X = rng.normal(size=(self.steps, n)) @ (q * np.sqrt(lam)).T
        W0 = rng.uniform(0.2, 0.8, size=(1, n))
        return X, W0, q[:, int(np.argmax(lam))]

    def applies(self, names: set[str], network_kind: str) -> bool:
        return network_kind == "rate"

    def measure_rule(self, rule, params=None) -> tuple[float, float]:
        return oja_metrics(rule, self, params)

    def distance(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        return oja_distance(a, b)

    def columns(self, eq, can: Mapping[str, tuple[float, float]], names: Sequence[str]) -> dict:
        return {"pc1_alignment_equation": eq[0], "weight_norm_equation": eq[1],
                "pc1_alignment_canonical": [can[n][0] for n in names],
                "weight_norm_canonical": [can[n][1] for n in names],
                "behaviour_note": ["weights diverged" if not math.isfinite(can[n][1]) else "" for n in names]}

    def notes(self, eq, can: Mapping[str, tuple[float, float]], names: Sequence[str]) -> list[str]:
        diverged = [n for n in names if not math.isfinite(can[n][1])]
        if not math.isfinite(eq[1]):
            diverged.insert(0, "the equation")
        if not diverged:
            return []
        return [f"Weights diverged in the Oja check for {', '.join(diverged)} "
                f"({self.steps} steps; behaviour distance inf or n/a)."]


def oja_metrics(rule, check: OjaCheck = OjaCheck(), params=None) -> tuple[float, float]:
    """``(|cos(w, PC1)|, |w|)`` after ``check.steps`` steps of ``rule`` (NaN, inf if diverged)."""
    import jax
    import jax.numpy as jnp

    from discover.networks import RateNetwork
    from discover.rollout import final_weights

    from .base import default_params

    X, W0, pc1 = check.data()
    net = RateNetwork(n_pre=X.shape[1], n_post=1, activation="linear")
    params = default_params(rule, params)
    final = jax.jit(lambda params, X, W0: final_weights(net, rule, params, W0, {"x": X}))
    w = np.asarray(final(params, jnp.asarray(X, jnp.float32), jnp.asarray(W0, jnp.float32)), np.float64)[0]
    norm = float(np.linalg.norm(w))
    if not (np.all(np.isfinite(w)) and math.isfinite(norm)):
        return math.nan, math.inf
    align = float(abs(w @ pc1) / norm) if norm > 0 else 0.0
    return align, norm


def oja_distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    r"""Behaviour distance of two ``(alignment, norm)`` pairs (module docstring)."""
    fa, fb = math.isfinite(a[1]), math.isfinite(b[1])
    if not (fa and fb):
        return math.inf if fa != fb else math.nan
    top = max(a[1], b[1])
    dn = abs(a[1] - b[1]) / top if top > 0 else 0.0
    return math.hypot(a[0] - b[0], dn)


def oja_behaviour(equation: str, names: Sequence[str], timescales: Mapping[str, float] | None = None,
                  check: OjaCheck = OjaCheck()) -> tuple[tuple[float, float], dict[str, tuple[float, float]]]:
    """Oja-check metrics of ``equation`` and of each canonical rule in ``names``."""
    return check.measure_rule(equation_rule(equation, timescales)), {n: check.canonical(n) for n in names}


__all__ = ["OJA_PC1", "OjaCheck", "oja_metrics", "oja_distance", "oja_behaviour"]
