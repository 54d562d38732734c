r"""The BCM check: a sliding threshold between depression and potentiation, and selectivity.

* threshold: ``dw`` evaluated directly from the rule (its compiled function, no
  simulation) at ``x = 1``, ``theta = 1``, ``w = 0.5`` (means 0) on a grid ``y`` in
  [0, 2]; ``threshold_y`` is the first ``y`` where ``dw`` turns from depression to
  potentiation (linear interpolation; BCM: ``y = theta = 1``; NaN if there is no such
  crossing, e.g. Oja, whose ``dw`` turns from potentiation to depression at ``y = 1/w``);
* selectivity: one linear neuron with ``w >= 0`` (clipped at 0), the patterns
  ``A = [1, 0.2]`` and ``B = [0.2, 1]`` presented in a random order (seeded, the same for
  every rule), ``steps`` steps of the rule with the RateNetwork's ``theta`` trace from
  ``w = [0.5, 0.5]``; ``selectivity = |r_A - r_B| / (r_A + r_B)`` of the final responses,
  divided by its largest possible value (a neuron that keeps one weight only,
  ``(1 - 0.2) / (1 + 0.2)``), so 1 is fully selective (BCM) and 0 not at all (Oja, Hebb
  with decay); 0 if both responses are 0, NaN if the weights diverged.

Its distance parts are :math:`|\Delta s|` and :math:`d_\theta = |\Delta y_\theta| / 2`
(the grid width) when both rules have a threshold, 1 when exactly one has, 0 when
neither has; averaged with the Oja check's distance they make a rate rule's behaviour
distance (:func:`rate_distance`).

References:
  Bienenstock, Cooper & Munro 1982, J. Neurosci. 2:32.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .base import CHECKS, Check, default_params, equation_rule
from .oja import OJA_PC1

BCM_THRESHOLD = "bcm_threshold"


@CHECKS.register(BCM_THRESHOLD)
@dataclass(frozen=True)
class BCMCheck(Check):
    """Settings of the BCM check (module docstring): threshold grid and selectivity run."""

    name = BCM_THRESHOLD
    title = "BCM behaviour check"
    requires = (OJA_PC1,)

    y_max: float = 2.0
    points: int = 201
    w: float = 0.5
    pattern_a: tuple[float, float] = (1.0, 0.2)
    pattern_b: tuple[float, float] = (0.2, 1.0)
    steps: int = 3000
    w0: float = 0.5
    seed: int = 0

    def grid(self) -> np.ndarray:
        return np.linspace(0.0, self.y_max, self.points)

    def patterns(self) -> np.ndarray:
        return np.asarray([self.pattern_a, self.pattern_b], np.float64)

    def data(self) -> np.ndarray:
        """``X [steps, 2]``: the patterns in a seeded random order."""
        idx = np.random.default_rng(self.seed).integers(0, 2, self.steps)
        return self.patterns()[idx]

    def max_selectivity(self) -> float:
        """Selectivity of a neuron that keeps the weight of its stronger input only."""
        p = self.patterns()
        r = p[:, int(np.argmax(p[0] - p[1]))]
        return float(abs(r[0] - r[1]) / (r[0] + r[1]))

    def applies(self, names: set[str], network_kind: str) -> bool:
        """Rate rules that read ``theta``, or any rate rule when ``bcm`` is a canonical rule to compare with."""
        from ..metrics import canonical_names

        return network_kind == "rate" and ("theta" in names or "bcm" in canonical_names(network_kind))

    def measure_rule(self, rule, params=None) -> tuple[float, float]:
        return bcm_metrics(rule, self, params)

    def parts(self, a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
        """``(|Δselectivity|, threshold distance)``; a selectivity NaN on exactly one side (diverged) counts 1."""
        sa, sb = a[0], b[0]
        fa, fb = math.isfinite(sa), math.isfinite(sb)
        ds = abs(sa - sb) if fa and fb else (1.0 if fa != fb else math.nan)
        return ds, threshold_distance(a[1], b[1], self)

    def distance(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        parts = [p for p in self.parts(a, b) if not math.isnan(p)]
        return float(np.mean(parts)) if parts else math.nan

    def columns(self, eq, can: Mapping[str, tuple[float, float]], names: Sequence[str]) -> dict:
        return {"selectivity": eq[0], "threshold_y": eq[1], "selectivity_canonical": [can[n][0] for n in names],
                "threshold_y_canonical": [can[n][1] for n in names]}


def threshold_crossing(y: np.ndarray, dw: np.ndarray) -> float:
    """First ``y`` where ``dw`` turns from negative to positive (NaN if it never does).

    Values within ``1e-6`` of the largest ``|dw|`` count as 0. Between a negative and a
    positive grid point the crossing is interpolated linearly; if zeros lie between
    them, it is the middle of those zeros (BCM on a grid through ``y = theta``).
    """
    y, dw = np.asarray(y, np.float64), np.asarray(dw, np.float64)
    if not (len(dw) and np.all(np.isfinite(dw))):
        return math.nan
    tol = 1e-6 * float(np.max(np.abs(dw)))
    nonzero = np.flatnonzero(np.abs(dw) > tol)
    for i, j in zip(nonzero[:-1], nonzero[1:]):
        if dw[i] < 0 < dw[j]:
            if j > i + 1:
                return float(np.mean(y[i + 1:j]))
            return float(y[i] - dw[i] * (y[j] - y[i]) / (dw[j] - dw[i]))
    return math.nan


def bcm_metrics(rule, check: BCMCheck = BCMCheck(), params=None) -> tuple[float, float]:
    """``(selectivity, threshold_y)`` of ``rule`` (module docstring)."""
    import jax
    import jax.numpy as jnp

    from discover.networks import RateNetwork
    from discover.rollout import final_weights

    params = default_params(rule, params)
    # threshold: dw on the y grid, one postsynaptic unit per grid point
    y = check.grid()
    g = len(y)
    f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
    local = {"x": f32(np.ones((1, 1))), "y": f32(y[:, None]), "w": f32(np.full((g, 1), check.w)),
             "theta": f32(np.ones((g, 1))), "x_mean": f32(np.zeros((1, 1))), "y_mean": f32(np.zeros((g, 1))),
             "m": f32(0.0)}
    dw = np.broadcast_to(np.asarray(rule(params, local), np.float64), (g, 1))[:, 0]
    threshold = threshold_crossing(y, dw)
    # selectivity: two patterns, w >= 0
    net = RateNetwork(n_pre=2, n_post=1, activation="linear", w_min=0.0)
    final = jax.jit(lambda params, X: final_weights(net, rule, params, jnp.full((1, 2), check.w0, jnp.float32),
                                                    {"x": X}))
    w = np.asarray(final(params, f32(check.data())), np.float64)[0]
    r = check.patterns() @ w
    if not np.all(np.isfinite(r)):
        return math.nan, threshold
    total = float(r.sum())
    sel = abs(float(r[0] - r[1])) / total / check.max_selectivity() if total > 0 else 0.0
    return sel, threshold


def threshold_distance(a: float, b: float, check: BCMCheck = BCMCheck()) -> float:
    """``|a - b| / y_max`` if both thresholds exist, 1 if exactly one does, 0 if neither."""
    fa, fb = math.isfinite(a), math.isfinite(b)
    if fa and fb:
        return min(abs(a - b) / check.y_max, 1.0)
    return 1.0 if fa != fb else 0.0


def rate_distance(oja: float, a: tuple[float, float], b: tuple[float, float], check: BCMCheck = BCMCheck()) -> float:
    r"""Rate behaviour distance: mean of the Oja-check distance, ``|Δselectivity|`` and the threshold distance.

    ``a``, ``b`` are ``(selectivity, threshold_y)`` (:func:`bcm_metrics`). A NaN part is
    left out of the mean (NaN if all are); an ``inf`` part makes the distance ``inf``.
    """
    parts = [p for p in (oja, *check.parts(a, b)) if not math.isnan(p)]
    return float(np.mean(parts)) if parts else math.nan


def bcm_behaviour(equation: str, names: Sequence[str], timescales: Mapping[str, float] | None = None,
                  check: BCMCheck = BCMCheck()) -> tuple[tuple[float, float], dict[str, tuple[float, float]]]:
    """BCM-check metrics ``(selectivity, threshold_y)`` of ``equation`` and of each canonical rule in ``names``."""
    return check.measure_rule(equation_rule(equation, timescales)), {n: check.canonical(n) for n in names}


__all__ = ["BCM_THRESHOLD", "BCMCheck", "threshold_crossing", "bcm_metrics", "threshold_distance", "rate_distance",
           "bcm_behaviour"]
