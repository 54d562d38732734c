r"""Discovered vs canonical rules: is the selected equation Oja, pair STDP, triplet STDP...?

Two levels of comparison between a run's selected equation (``equations.csv``, the
``selected`` row, its ``sympy`` column) and each canonical rule of the same network kind
(:data:`discover.rules.CANONICAL`, at its published parameters):

**Equation level.** Both are expanded into additive terms ``{monomial: coefficient}``
(:func:`distill.simplify.terms`, ``s**k -> s`` applied) and each coefficient vector is
normalized by its largest absolute coefficient, so an overall learning rate does not
count:

.. math::

   \hat c_k = c_k / \max_j |c_j|,\qquad
   J = \frac{|T_\mathrm{eq} \cap T_\mathrm{can}|}{|T_\mathrm{eq} \cup T_\mathrm{can}|},\qquad
   d_\mathrm{coef} = \Big(\sum_{k \in T_\mathrm{eq} \cup T_\mathrm{can}}
                     (\hat c^\mathrm{eq}_k - \hat c^\mathrm{can}_k)^2\Big)^{1/2}

(a term absent from one side has coefficient 0 there). For Oja's rule,
``eta*(x*y - y**2*w)`` normalizes to ``{x*y: 1, w*y**2: -1}`` whatever ``eta`` is. The
**closest** canonical rule is the one with the smallest :math:`d_\mathrm{coef}` (ties:
larger :math:`J`, then smaller behaviour distance).

**Behaviour level.** The equation and each canonical rule run in the simulator:

- spiking rules (``s_pre``/``s_post`` in the vocabulary): the STDP pairing window of
  :func:`analysis.protocols.pairing_protocol` (single pairings at lags -100..100 ms, and
  5 pairings at 20 Hz at lags -20..20 ms, where triplet rules differ from pair rules);
  in each protocol a rule's ``dw`` values are divided by their own largest ``|dw|``, and
  :math:`d_\mathrm{beh}` is the root-mean-square difference, averaged over the two
  protocols (0: same window shapes, 2: opposite; :func:`window_distance`); the windows
  are written to ``comparison_windows.csv``; and the frequency dependence of Sjöström,
  Turrigiano & Nelson 2001 (:data:`FREQUENCY_PROTOCOL`: 60 pairings at 1..50 Hz, lags
  +10 and -10 ms; :func:`analysis.protocols.frequency_protocol`), where pair and triplet
  rules part ways: each rule's ``dw`` values (both lags) are divided by their own largest
  ``|dw|`` and :math:`d_\mathrm{freq}` is the root-mean-square difference
  (``frequency_distance``, :func:`frequency_distance`). The curves of the equation, the
  run's neural rule (``rule/``), its teacher (``[task.teacher]`` of ``config.toml``) and
  the canonical rules are written to ``comparison_frequency.csv``;
- rate rules: an Oja check (:class:`OjaCheck`): one linear neuron, Gaussian inputs with a
  known covariance, the same inputs and initial weights for every rule; after
  ``steps`` steps the alignment ``|cos(w, PC1)|`` and the norm ``|w|`` are recorded, and
  :math:`d_\mathrm{beh} = \sqrt{\Delta a^2 + (\Delta |w| / \max |w|)^2}` (``inf`` if
  exactly one of the two rules made the weights diverge); and a BCM check
  (:class:`BCMCheck`, :func:`bcm_metrics`) of threshold behaviour and selectivity:

  * threshold: ``dw`` evaluated directly from the rule (its compiled function, no
    simulation) at ``x = 1``, ``theta = 1``, ``w = 0.5`` (means 0) on a grid
    ``y`` in [0, 2]; ``threshold_y`` is the first ``y`` where ``dw`` turns from
    depression to potentiation (linear interpolation; BCM: ``y = theta = 1``; NaN if
    there is no such crossing, e.g. Oja, whose ``dw`` turns from potentiation to
    depression at ``y = 1/w``);
  * selectivity: one linear neuron with ``w >= 0`` (clipped at 0), the patterns
    ``A = [1, 0.2]`` and ``B = [0.2, 1]`` presented in a random order (seeded, the same
    for every rule), ``steps`` steps of the rule with the RateNetwork's ``theta`` trace
    from ``w = [0.5, 0.5]``; ``selectivity = |r_A - r_B| / (r_A + r_B)`` of the final
    responses, divided by its largest possible value (a neuron that keeps one weight only,
    ``(1 - 0.2) / (1 + 0.2)``), so 1 is fully selective (BCM) and 0 not at all (Oja,
    Hebb with decay); 0 if both responses are 0, NaN if the weights diverged.

  For rate rules the behaviour distance averages the three parts:
  :math:`d_\mathrm{beh} = (d_\mathrm{Oja} + |\Delta s| + d_\theta) / 3`, with
  :math:`d_\theta = |\Delta y_\theta| / 2` (the grid width) when both rules have a
  threshold, 1 when exactly one has, 0 when neither has (:func:`rate_distance`; a NaN
  part is left out of the mean, an ``inf`` one makes it ``inf``). The equation's
  ``selectivity`` and ``threshold_y`` and the canonical rules' ``selectivity_canonical``
  and ``threshold_y_canonical`` are columns of ``comparison.csv``.

:func:`run` writes ``comparison.csv`` (one row per canonical rule). jax, discover and
distill are imported inside the functions, so ``import analysis`` stays light.

References:
  Oja 1982, J. Math. Biol. 15:267; Song, Miller & Abbott 2000, Nat. Neurosci. 3:919;
  Pfister & Gerstner 2006, J. Neurosci. 26:9673; Bienenstock, Cooper & Munro 1982,
  J. Neurosci. 2:32 (selectivity, sliding threshold).
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import rundir

COMPARISON = rundir.COMPARISON
WINDOWS = rundir.COMPARISON_WINDOWS
FREQUENCY = rundir.COMPARISON_FREQUENCY
#: Columns of ``comparison_windows.csv``.
WINDOW_COLUMNS: tuple[str, ...] = rundir.REQUIRED_COLUMNS[WINDOWS]

#: Columns of ``comparison.csv``, in order.
COLUMNS: tuple[str, ...] = (
    "canonical",
    "network",
    "canonical_equation",
    "canonical_latex",
    "equation_id",
    "equation",
    "equation_latex",
    "term_jaccard",
    "shared_terms",
    "missing_terms",
    "extra_terms",
    "coef_distance",
    "coefficients_equation",
    "coefficients_canonical",
    "behaviour",
    "behaviour_distance",
    "frequency_distance",
    "pc1_alignment_equation",
    "pc1_alignment_canonical",
    "weight_norm_equation",
    "weight_norm_canonical",
    "selectivity",
    "selectivity_canonical",
    "threshold_y",
    "threshold_y_canonical",
    "behaviour_note",
    "closest",
)

#: Variables whose value depends on a time constant of the rule (traces, BCM threshold, means).
TRACE_VARIABLES: tuple[str, ...] = ("tr_pre", "tr_post", "tr_pre_slow", "tr_post_slow", "theta", "x_mean", "y_mean")

STDP_WINDOW = "stdp_window"
OJA_PC1 = "oja_pc1"


class CompareUnavailable(ValueError):
    """The comparison cannot run for this run directory; the message says why and what to do."""


# ----------------------------------------------------------------------------- equation level


def normalized_coefficients(coefs: Mapping[str, float]) -> dict[str, float]:
    r"""Coefficients divided by the largest absolute coefficient, largest first.

    .. math:: \hat c_k = c_k / \max_j |c_j|

    Args:
      coefs: ``{term: coefficient}``, e.g. ``{"x*y": 0.0141, "w*y**2": -0.0149}``.

    Returns:
      The normalized dict sorted by decreasing ``|c|`` (then by term), e.g.
      ``{"w*y**2": -1.0, "x*y": 0.946...}``; ``{}`` if every coefficient is 0.
    """
    items = [(str(k), float(v)) for k, v in coefs.items() if float(v) != 0.0]
    if not items:
        return {}
    scale = max(abs(v) for _, v in items)
    items.sort(key=lambda kv: (-abs(kv[1]), kv[0]))
    return {k: v / scale for k, v in items}


def term_jaccard(a: Mapping[str, float] | Sequence[str], b: Mapping[str, float] | Sequence[str]) -> float:
    """Jaccard index of two term sets, ``|A & B| / |A | B|`` (1.0 when both are empty)."""
    sa, sb = set(a), set(b)
    union = sa | sb
    return len(sa & sb) / len(union) if union else 1.0


def coefficient_distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    r"""L2 distance between two normalized coefficient vectors over the union of their terms.

    .. math:: d = \big(\sum_{k \in A \cup B} (a_k - b_k)^2\big)^{1/2},\ \text{absent terms} = 0

    Args:
      a, b: normalized coefficients (:func:`normalized_coefficients`).

    Returns:
      The distance: 0 for the same normalized rule; ``sqrt(2)`` for two one-term rules
      with different terms.
    """
    keys = set(a) | set(b)
    return math.sqrt(sum((float(a.get(k, 0.0)) - float(b.get(k, 0.0))) ** 2 for k in keys))


def parse(text: str):
    """A sympy expression from an equation string, with the restricted parser of discover."""
    from discover.equations import parse_equation

    return parse_equation(str(text))


def expression_terms(expr) -> dict[str, float]:
    """``{str(term): coefficient}`` of an expanded sympy expression (``s**k -> s``)."""
    from distill.simplify import terms

    return {str(k): float(v) for k, v in terms(expr).items()}


def canonical_expression(name: str):
    """The canonical rule ``name`` at its published parameters, expanded (sympy)."""
    import sympy

    from discover.rules import canonical_rule

    return sympy.expand(canonical_rule(name).bound_expr())


def canonical_names(network: str) -> list[str]:
    """Names of the canonical rules of a network kind (``"rate"`` or ``"lif"``)."""
    from discover.rules import CANONICAL

    return [n for n, c in CANONICAL.items() if c.network == network]


def network_kind(expr, config: Mapping[str, Any] | None = None) -> str:
    """``"lif"`` or ``"rate"``: ``[network] kind`` of the config, else from the variables used.

    An equation that uses a spiking-only variable (``s_pre``, ``tr_post``, ...) is ``lif``.
    """
    kind = ((config or {}).get("network") or {}).get("kind") if isinstance(config, Mapping) else None
    if kind in ("rate", "lif"):
        return str(kind)
    from discover.vocabulary import VARIABLES

    used = {s.name for s in expr.free_symbols}
    return "lif" if any(VARIABLES[n].networks == ("lif",) for n in used if n in VARIABLES) else "rate"


def _short(expr, digits: int = 4) -> str:
    from distill.simplify import round_expr

    return str(round_expr(expr, digits))


def _latex(expr) -> str:
    from .tables import expr_latex

    return expr_latex(expr)


def equation_comparison(equation: str, network: str) -> pd.DataFrame:
    """Equation-level comparison of one equation with every canonical rule of ``network``.

    Args:
      equation: the equation text (sympy syntax over the vocabulary).
      network: ``"rate"`` or ``"lif"``.

    Returns:
      One row per canonical rule with the :data:`COLUMNS` of the equation level filled in
      (behaviour columns NaN / empty) and ``closest`` set by :func:`mark_closest`.

    Raises:
      CompareUnavailable: if no canonical rule exists for ``network``.
      discover.equations.EquationError: if ``equation`` cannot be parsed.
    """
    expr = parse(equation)
    eq_terms = expression_terms(expr)
    eq_norm = normalized_coefficients(eq_terms)
    names = canonical_names(network)
    if not names:
        raise CompareUnavailable(f"no canonical rule is defined for network kind {network!r}")
    rows = []
    for name in names:
        cexpr = canonical_expression(name)
        c_terms = expression_terms(cexpr)
        c_norm = normalized_coefficients(c_terms)
        rows.append({
            "canonical": name,
            "network": network,
            "canonical_equation": _short(cexpr),
            "canonical_latex": _latex(cexpr),
            "equation_id": "",
            "equation": _short(expr),
            "equation_latex": _latex(expr),
            "term_jaccard": term_jaccard(eq_terms, c_terms),
            "shared_terms": "; ".join(k for k in eq_norm if k in c_norm),
            "missing_terms": "; ".join(k for k in c_norm if k not in eq_norm),
            "extra_terms": "; ".join(k for k in eq_norm if k not in c_norm),
            "coef_distance": coefficient_distance(eq_norm, c_norm),
            "coefficients_equation": json.dumps(eq_norm),
            "coefficients_canonical": json.dumps(c_norm),
            "behaviour": "",
            "behaviour_distance": math.nan,
            "frequency_distance": math.nan,
            "pc1_alignment_equation": math.nan,
            "pc1_alignment_canonical": math.nan,
            "weight_norm_equation": math.nan,
            "weight_norm_canonical": math.nan,
            "selectivity": math.nan,
            "selectivity_canonical": math.nan,
            "threshold_y": math.nan,
            "threshold_y_canonical": math.nan,
            "behaviour_note": "",
            "closest": False,
        })
    return mark_closest(pd.DataFrame(rows, columns=list(COLUMNS)))


def mark_closest(df: pd.DataFrame) -> pd.DataFrame:
    """Set ``closest`` on the row with the smallest ``coef_distance``.

    Ties (within 1e-9) go to the larger ``term_jaccard``, then the smaller finite
    ``behaviour_distance``. Returns a copy.
    """
    df = df.copy()
    df["closest"] = False
    if df.empty:
        return df
    beh = pd.to_numeric(df["behaviour_distance"], errors="coerce").to_numpy(float)
    beh = np.where(np.isfinite(beh), beh, np.inf)
    key = [(round(float(c), 9), -float(j), b, i)
           for i, (c, j, b) in enumerate(zip(df["coef_distance"], df["term_jaccard"], beh))]
    best = min(key)[3]
    df.loc[df.index[best], "closest"] = True
    return df


# ----------------------------------------------------------------------------- behaviour: spiking

#: The pairing protocols of the window comparison: (name, pairs, frequency Hz, lags ms).
PAIRING_PROTOCOLS: tuple[tuple[str, int, float, tuple[float, ...]], ...] = (
    ("single pairing", 1, 1.0, tuple(float(x) for x in range(-100, 101, 10))),
    ("5 pairings at 20 Hz", 5, 20.0, tuple(float(x) for x in range(-20, 21, 5))),
)


def _windows(rule, params=None) -> pd.DataFrame:
    from .protocols import pairing_protocol

    parts = []
    for name, pairs, freq, lags in PAIRING_PROTOCOLS:
        df = pairing_protocol(rule, params, dt_ms_list=lags, pairs=pairs, freq_hz=freq)
        dw = df["dw"].to_numpy(float)
        scale = float(np.max(np.abs(dw))) if len(dw) else 0.0
        norm = dw / scale if scale > 0 and math.isfinite(scale) else np.where(np.isfinite(dw), 0.0, np.nan)
        parts.append(df.assign(protocol=name, dw_normalized=norm))
    return pd.concat(parts, ignore_index=True)[["protocol", "dt_ms", "dw", "dw_normalized"]]


@functools.lru_cache(maxsize=32)
def _canonical_windows(name: str) -> pd.DataFrame:
    from discover.rules import canonical_rule

    return _windows(canonical_rule(name))


def window_distance(a: pd.DataFrame, b: pd.DataFrame) -> float:
    r"""Distance of two sets of normalized windows (``protocol, dt_ms, dw_normalized``).

    The root-mean-square difference of ``dw_normalized`` over the lags of each protocol,
    averaged over the protocols (each protocol counts equally, whatever its lag count):

    .. math:: d = \frac{1}{P}\sum_p \Big(\frac{1}{L_p}\sum_{\Delta t}
              (\hat w^a_p(\Delta t) - \hat w^b_p(\Delta t))^2\Big)^{1/2}

    Returns NaN if the lags differ or a value is not finite.
    """
    if len(a) != len(b) or not np.array_equal(a["dt_ms"].to_numpy(float), b["dt_ms"].to_numpy(float)):
        return math.nan
    x, y = a["dw_normalized"].to_numpy(float), b["dw_normalized"].to_numpy(float)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return math.nan
    protocol = a["protocol"].to_numpy()
    return float(np.mean([np.sqrt(np.mean((x[protocol == p] - y[protocol == p]) ** 2))
                          for p in dict.fromkeys(protocol)]))


def stdp_behaviour(equation: str, names: Sequence[str], timescales: Mapping[str, float] | None = None
                   ) -> tuple[dict[str, float], pd.DataFrame]:
    """Pairing-window distance between ``equation`` and each canonical rule in ``names``.

    Args:
      equation: the equation text.
      names: canonical rule names (spiking).
      timescales: trace time constants for the equation (the neural rule's); canonical
        rules use their published ones.

    Returns:
      ``({name: distance}, windows)``; ``windows`` has columns ``rule, protocol, dt_ms,
      dw, dw_normalized`` for the equation (``rule == "equation"``) and every rule.
    """
    from discover.rules import SymbolicRule

    rule = SymbolicRule.from_string(str(equation), {}, timescales=dict(timescales or {}), label="equation")
    eq = _windows(rule)
    dist, frames = {}, [eq.assign(rule="equation")]
    for name in names:
        can = _canonical_windows(name)
        dist[name] = window_distance(eq, can)
        frames.append(can.assign(rule=name))
    windows = pd.concat(frames, ignore_index=True)[list(WINDOW_COLUMNS)]
    return dist, windows


@dataclass(frozen=True)
class FrequencyProtocol:
    """Settings of the pairing-frequency protocol (Sjöström, Turrigiano & Nelson 2001).

    ``pairs`` pre/post pairings at each frequency in ``freqs_hz`` and each lag
    ``t_post - t_pre`` in ``lags_ms``, simulated with step ``dt`` (ms); the weight starts
    at 1 and is not clipped (:func:`analysis.protocols.frequency_protocol`).
    """

    freqs_hz: tuple[float, ...] = (1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0)
    lags_ms: tuple[float, ...] = (10.0, -10.0)
    pairs: int = 60
    dt: float = 0.1

    def run(self, rule, params=None) -> pd.DataFrame:
        """``freq_hz, lag_ms, dw`` of ``rule`` (``params`` ``None``: ``rule.init``)."""
        from .protocols import frequency_protocol

        return frequency_protocol(rule, params, freqs_hz=self.freqs_hz, lags_ms=self.lags_ms, pairs=self.pairs,
                                  dt=self.dt)


#: The frequency protocol of the comparison.
FREQUENCY_PROTOCOL = FrequencyProtocol()

#: Columns of ``comparison_frequency.csv``.
FREQUENCY_COLUMNS: tuple[str, ...] = rundir.REQUIRED_COLUMNS[FREQUENCY]


@functools.lru_cache(maxsize=32)
def _canonical_frequency(name: str, protocol: FrequencyProtocol) -> pd.DataFrame:
    from discover.rules import canonical_rule

    return protocol.run(canonical_rule(name))


def _normalized(dw: np.ndarray) -> np.ndarray:
    scale = float(np.max(np.abs(dw))) if len(dw) else 0.0
    if not math.isfinite(scale):
        return np.full_like(dw, np.nan)
    return dw / scale if scale > 0 else np.zeros_like(dw)


def frequency_distance(a: pd.DataFrame, b: pd.DataFrame) -> float:
    r"""Distance of two frequency curves (``freq_hz, lag_ms, dw``), each normalized by its own max.

    Each rule's ``dw`` values, over all frequencies and lags together, are divided by its
    largest ``|dw|`` (so a learning rate does not count, but the ratio of potentiation at
    +10 ms to depression at -10 ms does); the distance is the root-mean-square difference:

    .. math:: d = \Big(\frac{1}{N}\sum_{f, \Delta t}
              (\hat w^a(f, \Delta t) - \hat w^b(f, \Delta t))^2\Big)^{1/2},
              \qquad \hat w = \Delta w / \max |\Delta w|

    0 for the same curve shapes, at most 2 (opposite curves). Returns NaN if the two tables hold
    different (frequency, lag) points or a value is not finite.
    """
    keys = ["freq_hz", "lag_ms"]
    a = a.sort_values(keys, kind="stable")
    b = b.sort_values(keys, kind="stable")
    if len(a) != len(b) or not np.array_equal(a[keys].to_numpy(float), b[keys].to_numpy(float)):
        return math.nan
    x, y = _normalized(a["dw"].to_numpy(float)), _normalized(b["dw"].to_numpy(float))
    if not (len(x) and np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return math.nan
    return float(np.sqrt(np.mean((x - y) ** 2)))


def frequency_behaviour(equation: str, names: Sequence[str], timescales: Mapping[str, float] | None = None,
                        protocol: FrequencyProtocol = FREQUENCY_PROTOCOL) -> tuple[dict[str, float], pd.DataFrame]:
    """Frequency-protocol distance between ``equation`` and each canonical rule in ``names``.

    Args:
      equation: the equation text.
      names: canonical rule names (spiking).
      timescales: trace time constants for the equation (the neural rule's); canonical
        rules use their published ones.
      protocol: the protocol's settings.

    Returns:
      ``({name: distance}, curves)``; ``curves`` has columns ``rule, freq_hz, lag_ms, dw``
      for the equation (``rule == "equation"``) and every rule.
    """
    from discover.rules import SymbolicRule

    rule = SymbolicRule.from_string(str(equation), {}, timescales=dict(timescales or {}), label="equation")
    eq = protocol.run(rule)
    dist, frames = {}, [eq.assign(rule="equation")]
    for name in names:
        can = _canonical_frequency(name, protocol)
        dist[name] = frequency_distance(eq, can)
        frames.append(can.assign(rule=name))
    return dist, pd.concat(frames, ignore_index=True)[list(FREQUENCY_COLUMNS)]


# ----------------------------------------------------------------------------- behaviour: rate


@dataclass(frozen=True)
class OjaCheck:
    """Settings of the Oja behaviour check: one linear neuron, Gaussian inputs.

    The input covariance has eigenvalues ``eigenvalues`` along the columns of a random
    orthogonal matrix (seeded); every rule sees the same ``steps`` input vectors and the
    same initial weights (uniform in [0.2, 0.8], as the ``oja_pca`` task).
    """

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


def oja_metrics(rule, check: OjaCheck = OjaCheck()) -> tuple[float, float]:
    """``(|cos(w, PC1)|, |w|)`` after ``check.steps`` steps of ``rule`` (NaN, inf if diverged)."""
    import jax
    import jax.numpy as jnp

    from discover.networks import RateNetwork

    X, W0, pc1 = check.data()
    net = RateNetwork(n_pre=X.shape[1], n_post=1, activation="linear")
    params = rule.init(jax.random.key(0))

    @jax.jit
    def final(params, X, W0):
        def body(state, x):
            return net.step(rule, params, state, {"x": x})[0], None

        state, _ = jax.lax.scan(body, net.init_state(W0), X)
        return state["W"]

    w = np.asarray(final(params, jnp.asarray(X, jnp.float32), jnp.asarray(W0, jnp.float32)), np.float64)[0]
    norm = float(np.linalg.norm(w))
    if not (np.all(np.isfinite(w)) and math.isfinite(norm)):
        return math.nan, math.inf
    align = float(abs(w @ pc1) / norm) if norm > 0 else 0.0
    return align, norm


@functools.lru_cache(maxsize=32)
def _canonical_oja(name: str, check: OjaCheck) -> tuple[float, float]:
    from discover.rules import canonical_rule

    return oja_metrics(canonical_rule(name), check)


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
    from discover.rules import SymbolicRule

    rule = SymbolicRule.from_string(str(equation), {}, timescales=dict(timescales or {}), label="equation")
    return oja_metrics(rule, check), {n: _canonical_oja(n, check) for n in names}


@dataclass(frozen=True)
class BCMCheck:
    """Settings of the BCM check (module docstring): threshold grid and selectivity run."""

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


def bcm_metrics(rule, check: BCMCheck = BCMCheck()) -> tuple[float, float]:
    """``(selectivity, threshold_y)`` of ``rule`` (module docstring)."""
    import jax
    import jax.numpy as jnp

    from discover.networks import RateNetwork

    params = rule.init(jax.random.key(0))
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

    @jax.jit
    def final(params, X):
        def body(state, x):
            return net.step(rule, params, state, {"x": x})[0], None

        state, _ = jax.lax.scan(body, net.init_state(jnp.full((1, 2), check.w0, jnp.float32)), X)
        return state["W"]

    w = np.asarray(final(params, f32(check.data())), np.float64)[0]
    r = check.patterns() @ w
    if not np.all(np.isfinite(r)):
        return math.nan, threshold
    total = float(r.sum())
    sel = abs(float(r[0] - r[1])) / total / check.max_selectivity() if total > 0 else 0.0
    return sel, threshold


@functools.lru_cache(maxsize=32)
def _canonical_bcm(name: str, check: BCMCheck) -> tuple[float, float]:
    from discover.rules import canonical_rule

    return bcm_metrics(canonical_rule(name), check)


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
    A selectivity that is NaN on exactly one side (diverged) counts 1.
    """
    sa, sb = a[0], b[0]
    ds = abs(sa - sb) if math.isfinite(sa) and math.isfinite(sb) else (1.0 if math.isfinite(sa) != math.isfinite(sb)
                                                                       else math.nan)
    parts = [p for p in (oja, ds, threshold_distance(a[1], b[1], check)) if not math.isnan(p)]
    return float(np.mean(parts)) if parts else math.nan


def bcm_behaviour(equation: str, names: Sequence[str], timescales: Mapping[str, float] | None = None,
                  check: BCMCheck = BCMCheck()) -> tuple[tuple[float, float], dict[str, tuple[float, float]]]:
    """BCM-check metrics ``(selectivity, threshold_y)`` of ``equation`` and of each canonical rule in ``names``."""
    from discover.rules import SymbolicRule

    rule = SymbolicRule.from_string(str(equation), {}, timescales=dict(timescales or {}), label="equation")
    return bcm_metrics(rule, check), {n: _canonical_bcm(n, check) for n in names}


# ----------------------------------------------------------------------------- one equation


@dataclass
class Comparison:
    """What :func:`compare_equation` / :func:`run` found.

    ``table`` is ``comparison.csv``; ``windows`` the pairing windows and ``frequency``
    the frequency-protocol curves (``comparison_frequency.csv``; spiking rules, else
    ``None``); ``notes`` say what was skipped and why; ``paths`` the files written.
    """

    table: pd.DataFrame
    windows: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    frequency: pd.DataFrame | None = None

    @property
    def closest(self) -> str:
        return str(self.table.loc[self.table["closest"], "canonical"].iloc[0])


def compare_equation(equation: str, network: str | None = None, timescales: Mapping[str, float] | None = None,
                     behaviour: bool = True, check: OjaCheck = OjaCheck(),
                     frequency: FrequencyProtocol | None = FREQUENCY_PROTOCOL,
                     bcm: BCMCheck | None = BCMCheck()) -> Comparison:
    """Compare one equation with the canonical rules of its network kind, at both levels.

    Args:
      equation: the equation text, e.g. ``"-0.0149*w*y**2 + 0.0141*x*y"``.
      network: ``"rate"`` or ``"lif"``; ``None`` infers it from the variables used.
      timescales: trace time constants of the equation (default: discover's defaults).
      behaviour: run the behaviour-level check too (JAX; a few seconds).
      check: settings of the Oja check (rate rules).
      frequency: settings of the pairing-frequency protocol (spiking rules); ``None``
        skips it.
      bcm: settings of the BCM check (rate rules that read ``theta``, or compared with
        ``bcm``); ``None`` skips it (then the behaviour distance is the Oja check's).

    Returns:
      A :class:`Comparison`; a behaviour check that cannot run leaves NaN distances and
      a note (in ``notes``, and for the pairing window and the Oja check in the
      ``behaviour_note`` column).

    Example::

      >>> compare_equation("-0.0149*w*y**2 + 0.0141*x*y", "rate", behaviour=False).closest
      'oja'
    """
    expr = parse(equation)
    network = network or network_kind(expr)
    table = equation_comparison(equation, network)
    notes: list[str] = []
    windows = None
    if not behaviour:
        return Comparison(table, None, notes)
    names = table["canonical"].tolist()
    if network == "lif":
        table["behaviour"] = STDP_WINDOW
        try:
            from . import protocols  # noqa: F401  (written beside this module; may be absent)
        except ImportError as e:
            note = f"STDP window comparison skipped: analysis.protocols cannot be imported ({e})."
            notes.append(note)
            table["behaviour_note"] = note
            return Comparison(table, None, notes)
        try:
            dist, windows = stdp_behaviour(equation, names, timescales)
            table["behaviour_distance"] = [dist.get(n, math.nan) for n in names]
        except Exception as e:  # a rule the protocol cannot simulate: keep the equation level
            note = f"STDP window comparison failed: {type(e).__name__}: {e}"
            notes.append(note)
            table["behaviour_note"] = note
        curves = None
        if frequency is not None:
            try:
                fdist, curves = frequency_behaviour(equation, names, timescales, frequency)
                table["frequency_distance"] = [fdist.get(n, math.nan) for n in names]
            except Exception as e:
                notes.append(f"Pairing-frequency protocol failed: {type(e).__name__}: {e}")
        return Comparison(mark_closest(table), windows, notes, frequency=curves)
    else:
        table["behaviour"] = OJA_PC1
        try:
            eq_m, can_m = oja_behaviour(equation, names, timescales, check)
        except Exception as e:
            note = f"Oja behaviour check failed: {type(e).__name__}: {e}"
            notes.append(note)
            table["behaviour_note"] = note
            return Comparison(table, None, notes)
        table["pc1_alignment_equation"] = eq_m[0]
        table["weight_norm_equation"] = eq_m[1]
        table["pc1_alignment_canonical"] = [can_m[n][0] for n in names]
        table["weight_norm_canonical"] = [can_m[n][1] for n in names]
        oja_d = [oja_distance(eq_m, can_m[n]) for n in names]
        table["behaviour_distance"] = oja_d
        if bcm is not None and ("theta" in {s.name for s in expr.free_symbols} or "bcm" in names):
            try:
                eq_b, can_b = bcm_behaviour(equation, names, timescales, bcm)
            except Exception as e:
                notes.append(f"BCM behaviour check failed: {type(e).__name__}: {e}")
            else:
                table["selectivity"] = eq_b[0]
                table["threshold_y"] = eq_b[1]
                table["selectivity_canonical"] = [can_b[n][0] for n in names]
                table["threshold_y_canonical"] = [can_b[n][1] for n in names]
                table["behaviour_distance"] = [rate_distance(d, eq_b, can_b[n], bcm) for d, n in zip(oja_d, names)]
        diverged = [n for n in names if not math.isfinite(can_m[n][1])]
        if not math.isfinite(eq_m[1]):
            diverged.insert(0, "the equation")
        if diverged:
            notes.append(f"Weights diverged in the Oja check for {', '.join(diverged)} "
                         f"({check.steps} steps; behaviour distance inf or n/a).")
        table.loc[[not math.isfinite(can_m[n][1]) for n in names], "behaviour_note"] = "weights diverged"
    return Comparison(mark_closest(table), windows, notes)


# ----------------------------------------------------------------------------- run directory


def selected_row(equations: pd.DataFrame) -> pd.Series:
    """The selected row of ``equations.csv`` (as read by :func:`analysis.rundir.read_equations`)."""
    return equations[equations["selected"]].iloc[0]


def selected_equation(row: pd.Series) -> str:
    """The equation text of a row: its ``sympy`` cell (full precision), else ``equation``."""
    for col in ("sympy", "equation"):
        v = row.get(col, "")
        if isinstance(v, str) and v.strip() and v.strip().lower() != "nan":
            return v.strip()
    raise CompareUnavailable(f"equation {row.get('id', '?')} has neither a `sympy` nor an `equation` text")


def run_timescales(run_dir: str | os.PathLike) -> tuple[dict[str, float], str]:
    """Trace time constants of the run's neural rule (``rule/rule.json``), with a note.

    Equations fit the neural rule's ``dw``, so they are simulated with its traces. Learned
    time constants (``learn_timescales``) are read from ``rule/params.npz`` through
    :func:`discover.build.load_rule`. Without a rule, discover's defaults are used.
    """
    path = Path(run_dir) / "rule" / "rule.json"
    if not path.is_file():
        return {}, "no `rule/rule.json`: the equation is simulated with the default trace time constants"
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        if spec.get("learn_timescales"):
            from discover.build import load_rule

            rule, params = load_rule(run_dir)
            return {k: float(v) for k, v in rule.tau(params).items()}, ""
        return {k: float(v) for k, v in dict(spec.get("timescales") or {}).items()}, ""
    except Exception as e:
        return {}, f"time constants of `rule/` unreadable ({type(e).__name__}: {e}); defaults used"


def compare_run(run_dir: str | os.PathLike, behaviour: bool = True) -> Comparison:
    """Compare a run's selected equation with the canonical rules (nothing is written).

    Args:
      run_dir: the run directory (needs ``config.toml`` and ``equations.csv``).
      behaviour: run the behaviour-level check too.

    Returns:
      A :class:`Comparison` whose table has ``equation_id`` filled in.

    Raises:
      CompareUnavailable: if ``equations.csv`` is missing or the equation cannot be
        parsed; RunDirectoryError: if an input is malformed.
    """
    run_dir = Path(run_dir)
    config, _ = rundir.read_config(run_dir)
    equations = rundir.read_equations(run_dir)
    if equations is None:
        raise CompareUnavailable(rundir.missing_note(rundir.EQUATIONS))
    row = selected_row(equations)
    text = selected_equation(row)
    from discover.equations import EquationError

    try:
        expr = parse(text)
    except EquationError as e:
        raise CompareUnavailable(f"the selected equation cannot be parsed: {e}") from None
    network = network_kind(expr, config)
    timescales, ts_note = run_timescales(run_dir) if behaviour else ({}, "")
    if not {s.name for s in expr.free_symbols} & set(TRACE_VARIABLES):
        ts_note = ""  # the equation reads no trace: its time constants do not matter
    result = compare_equation(text, network, timescales, behaviour=behaviour)
    result.table["equation_id"] = str(row["id"])
    if ts_note:
        result.notes.append(ts_note[0].upper() + ts_note[1:] + ".")
    if result.frequency is not None or result.windows is not None:
        win, freq, notes = run_protocol_curves(run_dir, config, windows=result.windows is not None,
                                               protocol=FREQUENCY_PROTOCOL if result.frequency is not None else None)
        result.notes += notes
        for attr, extra in (("windows", win), ("frequency", freq)):
            df = getattr(result, attr)
            if df is not None:  # the equation first, then the neural rule and the teacher, then the canonical rules
                eq = df["rule"] == "equation"
                setattr(result, attr, pd.concat([df[eq], *extra, df[~eq]], ignore_index=True)[list(df.columns)])
    return result


def run_rules(run_dir: str | os.PathLike, config: Mapping[str, Any]) -> tuple[list[tuple[str, Any, Any]], list[str]]:
    """The run's neural rule and its teacher, to simulate in the protocols, with notes.

    The neural rule is read with :func:`discover.build.load_rule` (``rule/rule.json`` and
    ``rule/params.npz``), with its own (possibly learned) time constants; the teacher is
    ``[task.teacher]`` of ``config.toml``, built as discover builds it
    (:func:`discover.rules.make_symbolic_rule`), or ``None`` params meaning a canonical
    rule as published. A rule that is absent or cannot be built is left out, with a note.

    Returns:
      ``([(label, rule, params), ...], notes)`` with labels ``"neural"``, ``"teacher"``.
    """
    run_dir = Path(run_dir)
    rules: list[tuple[str, Any, Any]] = []
    notes: list[str] = []
    rule_dir = run_dir / "rule"
    if (rule_dir / "rule.json").is_file() and (rule_dir / "params.npz").is_file():
        try:
            from discover.build import load_rule

            rule, params = load_rule(run_dir)
            rules.append(("neural", rule, params))
        except Exception as e:
            notes.append(f"The neural rule cannot be loaded ({type(e).__name__}: {e}); the protocol figures "
                         "leave it out.")
    else:
        notes.append("No trained neural rule (`rule/rule.json` and `rule/params.npz`): the protocol figures "
                     "leave it out.")
    task = config.get("task") if isinstance(config, Mapping) else None
    teacher = task.get("teacher") if isinstance(task, Mapping) else None
    if isinstance(teacher, Mapping):
        try:
            from discover.rules import CANONICAL, make_symbolic_rule

            spec = str(teacher.get("rule", "oja"))
            params = {str(k): float(v) for k, v in dict(teacher.get("params") or {}).items()}
            published = dict(CANONICAL[spec].params + CANONICAL[spec].timescales) if spec in CANONICAL else None
            if published is not None and all(published.get(k) == v for k, v in params.items()):
                rules.append(("teacher", spec, None))  # a canonical rule as published: simulated once (cached)
            else:
                rules.append(("teacher", make_symbolic_rule(spec, params, label="teacher"), None))
        except Exception as e:
            notes.append(f"The teacher cannot be built ({type(e).__name__}: {e}); the protocol figures leave it out.")
    return rules, notes


def run_protocol_curves(run_dir: str | os.PathLike, config: Mapping[str, Any], windows: bool = True,
                        protocol: FrequencyProtocol | None = FREQUENCY_PROTOCOL
                        ) -> tuple[list[pd.DataFrame], list[pd.DataFrame], list[str]]:
    """Pairing windows and frequency-protocol curves of the run's neural rule and teacher.

    Returns:
      ``(windows, frequency, notes)``: DataFrames with columns ``rule, protocol, dt_ms, dw,
      dw_normalized`` and ``rule, freq_hz, lag_ms, dw`` (``rule`` is ``"neural"`` or
      ``"teacher"``); a rule whose protocol fails is left out, with a note.
    """
    rules, notes = run_rules(run_dir, config)
    win: list[pd.DataFrame] = []
    freq: list[pd.DataFrame] = []
    runs = []  # (name, output list, columns, simulate(rule or canonical name, params))
    if windows:
        runs.append(("pairing", win, WINDOW_COLUMNS,
                     lambda r, p: _canonical_windows(r) if isinstance(r, str) else _windows(r, p)))
    if protocol is not None:
        runs.append(("pairing-frequency", freq, FREQUENCY_COLUMNS,
                     lambda r, p: _canonical_frequency(r, protocol) if isinstance(r, str) else protocol.run(r, p)))
    for label, rule, params in rules:
        for kind, out, columns, simulate in runs:
            try:
                out.append(simulate(rule, params).assign(rule=label)[list(columns)])
            except Exception as e:
                notes.append(f"The {kind} protocol of the {label} rule failed ({type(e).__name__}: {e}); "
                             "its curve is left out.")
    return win, freq, notes


def run(run_dir: str | os.PathLike, behaviour: bool = True) -> Comparison:
    """Write ``comparison.csv`` (and ``comparison_windows.csv``, ``comparison_frequency.csv`` for spiking rules).

    An output this comparison cannot produce (a rate rule, a protocol that failed) is
    deleted with its figure, so no stale file of an earlier equation survives.

    Args:
      run_dir: the run directory.
      behaviour: run the behaviour-level check too.

    Returns:
      The :class:`Comparison`, with ``paths`` set.

    Raises:
      CompareUnavailable: if the comparison cannot run (see :func:`compare_run`).
    """
    run_dir = Path(run_dir)
    result = compare_run(run_dir, behaviour=behaviour)
    paths = [rundir.atomic_write_text(run_dir / COMPARISON, result.table.to_csv(index=False))]
    if result.windows is not None:
        paths.append(rundir.atomic_write_text(run_dir / WINDOWS, result.windows.to_csv(index=False)))
    else:  # stale windows of an earlier, spiking selected equation
        _unlink(run_dir / WINDOWS, run_dir / "figures" / "comparison_window.png",
                run_dir / "figures" / "comparison_window.pdf")
    if result.frequency is not None:
        paths.append(rundir.atomic_write_text(run_dir / FREQUENCY, result.frequency.to_csv(index=False)))
    else:
        _unlink(run_dir / FREQUENCY, run_dir / "figures" / "comparison_frequency.png",
                run_dir / "figures" / "comparison_frequency.pdf")
    result.paths = paths
    return result


def _unlink(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def remove_outputs(run_dir: str | os.PathLike) -> None:
    """Delete comparison outputs of an earlier run (when the comparison cannot run now)."""
    run_dir = Path(run_dir)
    figs = run_dir / "figures"
    _unlink(run_dir / COMPARISON, run_dir / WINDOWS, run_dir / FREQUENCY, run_dir / "tables" / "comparison.tex",
            *(figs / f"{n}.{ext}" for n in ("comparison", "comparison_window", "comparison_frequency")
              for ext in ("png", "pdf")))


# ----------------------------------------------------------------------------- several runs


def _verified(verification: pd.DataFrame | None, row: pd.Series) -> pd.Series | None:
    if verification is None:
        return None
    hit = verification[verification["rule"] == f"eq{row['id']}"]
    if hit.empty and "equation" in verification.columns:
        hit = verification[(verification["kind"] == "equation") & (verification["equation"] == str(row["equation"]))]
    return hit.iloc[0] if len(hit) else None


def runs_table(run_dirs: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per run: selected equation, its normalized coefficients, closest rule, verification.

    Columns: ``run, path, task, network, equation_id, equation, latex, closest,
    coef_distance, term_jaccard, behaviour_distance, objective_mean, relative_to_neural,
    relative_ci_low, relative_ci_high, coefficients`` (JSON of the normalized
    coefficients) and ``coef[TERM]`` for every term of any run (0 where a run lacks the
    term; the first run's terms first, largest first). The closest canonical
    rule comes from the run's ``comparison.csv`` when it exists (``plasticity report``),
    else from the equation level alone.

    Raises:
      RunDirectoryError: if a run directory or one of its files is missing or malformed.
    """
    rows, names = [], []
    for d in run_dirs:
        d = Path(d)
        config, _ = rundir.read_config(d)
        equations = rundir.read_equations(d)
        if equations is None:
            raise rundir.RunDirectoryError(
                f"{d / rundir.EQUATIONS}: file is missing, and `plasticity compare` needs the selected "
                f"equation of every run; write it with `plasticity distill {d}`")
        row = selected_row(equations)
        try:
            text = selected_equation(row)
        except CompareUnavailable as e:
            raise rundir.RunDirectoryError(f"{d / rundir.EQUATIONS}: {e}; write it with `plasticity distill {d}`"
                                           ) from None
        expr = parse(text)
        coefs = normalized_coefficients(expression_terms(expr))
        comp = rundir.read_comparison(d)
        if comp is None or comp.empty or str(comp["equation_id"].iloc[0]) != str(row["id"]):
            comp = equation_comparison(text, network_kind(expr, config))
        best = comp[comp["closest"]].iloc[0]
        verification = rundir.read_verification(d)
        ver = _verified(verification, row)
        neural = math.nan
        if verification is not None:
            nrow = verification[verification["kind"] == "neural"]
            neural = float(nrow["objective_mean"].iloc[0]) if len(nrow) else math.nan
        rel = float(ver["relative_to_neural"]) if ver is not None else math.nan
        lo = hi = math.nan
        if ver is not None and math.isfinite(neural) and neural != 0:
            lo, hi = sorted((float(ver["objective_ci_low"]) / neural, float(ver["objective_ci_high"]) / neural))
        name = d.resolve().name
        names.append(name)
        task = config.get("task", {}).get("name", "") if isinstance(config.get("task"), dict) else ""
        rows.append({
            "run": name,
            "path": str(d),
            "task": task,
            "network": network_kind(expr, config),
            "equation_id": str(row["id"]),
            "equation": str(row["equation"]) or _short(expr),
            "latex": str(row.get("latex", "") or "") or _latex(expr),
            "closest": str(best["canonical"]),
            "coef_distance": float(best["coef_distance"]),
            "term_jaccard": float(best["term_jaccard"]),
            "behaviour_distance": float(best["behaviour_distance"]),
            "objective_mean": float(ver["objective_mean"]) if ver is not None else math.nan,
            "relative_to_neural": rel,
            "relative_ci_low": lo,
            "relative_ci_high": hi,
            "coefficients": json.dumps(coefs),
            **{f"coef[{k}]": v for k, v in coefs.items()},
        })
    if len(set(names)) < len(names):  # same folder name in different places: use the paths
        for r in rows:
            r["run"] = r["path"]
    df = pd.DataFrame(rows)
    base = [c for c in df.columns if not c.startswith("coef[")]
    coef_cols = [c for c in df.columns if c.startswith("coef[")]  # first run's terms first
    df = df[base + coef_cols]
    df[coef_cols] = df[coef_cols].fillna(0.0)
    return df


def compare_runs(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike) -> dict[str, Path]:
    """``plasticity compare``: one table and one figure comparing several runs.

    Writes into ``out``: ``runs_comparison.csv`` (:func:`runs_table`),
    ``runs_comparison.tex`` (booktabs, :func:`analysis.tables.runs_table_latex`),
    ``preview.tex`` (compiles alone with pdflatex) and ``runs_comparison.png|pdf``
    (:func:`analysis.figures.runs_figure`), each atomically.

    Args:
      run_dirs: the run directories (at least one).
      out: output folder (created).

    Returns:
      ``{"csv": Path, "tex": Path, "preview": Path, "png": Path, "pdf": Path}``.
    """
    from . import figures, tables

    if not run_dirs:
        raise rundir.RunDirectoryError("no run directory given; pass one or more, e.g. "
                                       "`plasticity compare runs/a runs/b --out runs/comparison`")
    out = Path(out)
    df = runs_table(run_dirs)
    csv = rundir.atomic_write_text(out / "runs_comparison.csv", df.to_csv(index=False))
    tex = rundir.atomic_write_text(out / "runs_comparison.tex", tables.runs_table_latex(df))
    preview = rundir.atomic_write_text(out / "preview.tex", tables.preview_document([tex.name]))
    png, pdf = figures.save_figure(figures.runs_figure(df), out / "runs_comparison")
    return {"csv": csv, "tex": tex, "preview": preview, "png": png, "pdf": pdf}


__all__ = ["COLUMNS", "Comparison", "CompareUnavailable", "OjaCheck", "PAIRING_PROTOCOLS", "FrequencyProtocol",
           "FREQUENCY_PROTOCOL", "FREQUENCY_COLUMNS", "WINDOW_COLUMNS", "frequency_behaviour", "frequency_distance",
           "run_protocol_curves", "run_rules", "normalized_coefficients",
           "term_jaccard", "coefficient_distance", "equation_comparison", "mark_closest", "compare_equation",
           "compare_run", "run", "runs_table", "compare_runs", "stdp_behaviour", "oja_behaviour", "oja_metrics",
           "window_distance", "oja_distance", "BCMCheck", "bcm_metrics", "bcm_behaviour", "threshold_crossing",
           "threshold_distance", "rate_distance"]
