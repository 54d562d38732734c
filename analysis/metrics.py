r"""Equation-level comparison: a distilled equation against each canonical rule, term by term.

Both are expanded into additive terms ``{monomial: coefficient}``
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
larger :math:`J`, then smaller behaviour distance; :func:`mark_closest`).

discover and distill are imported inside the functions, so ``import analysis`` stays light.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

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

class CompareUnavailable(ValueError):
    """The comparison cannot run for this run directory; the message says why and what to do."""


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


def canonical_names(network: str, population: str = "") -> list[str]:
    """Names of the canonical rules of a network kind (``"rate"`` or ``"lif"``): those for
    every synapse, and those for ``population``'s (``"inh"``: Vogels et al.'s inhibitory STDP)."""
    from discover.rules import CANONICAL

    return [n for n, c in CANONICAL.items() if c.network == network and c.population in ("", population)]


def population(config: Mapping[str, Any] | None) -> str:
    """The synapses a run's rule is for, as :class:`discover.rules.canonical.Canonical` names
    them: ``"inh"`` where ``[network] plastic = "inh"``, else ``""`` (every synapse)."""
    net = (config or {}).get("network") if isinstance(config, Mapping) else None
    return "inh" if isinstance(net, Mapping) and net.get("plastic") == "inh" else ""


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


def short_text(expr, digits: int = 4) -> str:
    """The equation text of ``comparison.csv`` (:func:`distill.simplify.format_equation`)."""
    from distill.simplify import format_equation

    return format_equation(expr, digits)


def _latex(expr) -> str:
    from .latex import expr_latex

    return expr_latex(expr)


def equation_comparison(equation: str, network: str, population: str = "") -> pd.DataFrame:
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
    names = canonical_names(network, population)
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
            "canonical_equation": short_text(cexpr),
            "canonical_latex": _latex(cexpr),
            "equation_id": "",
            "equation": short_text(expr),
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


__all__ = ["COLUMNS", "CompareUnavailable", "normalized_coefficients", "term_jaccard", "coefficient_distance",
           "parse", "expression_terms", "canonical_expression", "canonical_names", "population", "network_kind",
           "short_text", "equation_comparison", "mark_closest"]
