"""Coefficient uncertainty by a cluster (episode) bootstrap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy

from .simplify import evaluate, scaled_lstsq, terms


def coefficient_ci(
    expr: sympy.Expr,
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    groups: np.ndarray | None,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
) -> dict[str, tuple[float, float, float]]:
    r"""Percentile bootstrap confidence intervals of an equation's coefficients.

    The term set of ``expr`` is fixed (:func:`distill.simplify.terms`); its coefficients
    are refitted by (weighted) least squares on the data, and on ``n_boot`` resamples that
    draw whole *groups* (episodes) with replacement, since samples of one episode are not
    independent (the cluster bootstrap, Davison & Hinkley 1997, Sec. 3.8). The interval
    is the percentile interval of the resampled coefficients,

    .. math:: [\hat c^*_{(\alpha/2)}, \hat c^*_{(1-\alpha/2)}], \quad \alpha = 1 - \mathrm{level}.

    Percentile intervals run narrow when few episodes dominate the fit. Measured on the
    synthetic Oja data of ``tests/test_distill_backends.py`` (episode input scales
    lognormal(0, 0.6), 5 % noise, 300 repeats), nominal 95 % intervals covered the true
    coefficients 89-91 % of the time with 40 episodes and 93-94 % with 100 episodes.

    Args:
      expr: the equation; its additive terms define the model.
      X: data, shape ``[n, len(names)]``.
      y: targets (``dw``), shape ``[n]``.
      names: the variable name of each column of ``X``.
      groups: group (episode) label of each sample, shape ``[n]``; ``None`` resamples
        single samples.
      n_boot: number of bootstrap resamples.
      level: coverage of the interval, in ``(0, 1)``.
      seed: seed of the resampling.
      sample_weight: optional weights of the least-squares fits.

    Returns:
      ``{str(term): (value, low, high)}``, ``value`` the fit on all the data.

    Example:
      >>> coefficient_ci(parse_equation("0.01*x*y - 0.01*w*y**2"), X, dw, names, episode)
      {'x*y': (0.0100, 0.0098, 0.0102), 'w*y**2': (-0.0100, -0.0103, -0.0097)}
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    basis = list(terms(expr))
    if not basis:
        return {}
    B = np.stack([evaluate(b, X, names) for b in basis], axis=1)
    sw = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    root = np.sqrt(sw)
    Bw, yw = B * root[:, None], y * root

    def fit(idx):
        return scaled_lstsq(Bw[idx], yw[idx])

    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    if groups.shape != y.shape:
        raise ValueError(f"groups has shape {groups.shape}, expected one label per sample {y.shape}")
    labels, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(labels))]
    rng = np.random.default_rng(seed)
    value = fit(np.arange(len(y)))
    draws = np.empty((n_boot, len(basis)))
    for r in range(n_boot):
        pick = rng.integers(0, len(labels), len(labels))
        draws[r] = fit(np.concatenate([members[k] for k in pick]))
    alpha = 1.0 - level
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0)
    return {str(b): (float(v), float(lo), float(hi)) for b, v, lo, hi in zip(basis, value, low, high)}
