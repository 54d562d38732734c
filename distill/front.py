"""The Pareto front of candidate equations: complexity against loss, as a DataFrame.

Columns follow PySR's ``equations_`` table where they overlap (``complexity, loss,
score, equation, sympy``), so PySR users feel at home (DESIGN.md section 5).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sympy
from sympy.polys.polyerrors import PolynomialError

from .backends.base import Candidate, nondominated, weighted_mse
from .simplify import complexity, evaluate, format_equation, latex_equation, polish, round_expr, terms

COLUMNS = ["id", "backend", "complexity", "loss", "score", "equation", "sympy", "latex", "coefficients"]


def _scores(complexities: Sequence[int], losses: Sequence[float]) -> list[float]:
    """PySR's score: ``-d log(loss) / d complexity`` between consecutive rows, first 0.

    A loss of exactly 0 is clipped to the smallest positive float, so scores stay finite.
    """
    out = [0.0]
    tiny = np.finfo(np.float64).tiny
    for i in range(1, len(losses)):
        dl = math.log(max(losses[i], tiny)) - math.log(max(losses[i - 1], tiny))
        dc = complexities[i] - complexities[i - 1]
        out.append(-dl / dc if dc > 0 else 0.0)
    return out


def pareto_front(
    candidates: Sequence[Candidate],
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    sample_weight: np.ndarray | None = None,
    rel_tol: float = 0.01,
) -> pd.DataFrame:
    r"""Polish, deduplicate and keep the non-dominated candidates.

    Every candidate is polished (:func:`distill.simplify.polish`) and re-scored on
    ``(X, y)``, so the loss and complexity of every engine are measured the same way;
    candidates that are not finite on the data are dropped. A row is kept if no other
    row is at most as complex and strictly more accurate. The score of row :math:`i` is
    that of PySR's ``equations_`` table (``pysr/sr.py``; Cranmer 2023, arXiv:2305.01582),

    .. math:: \mathrm{score}_i = -\frac{\log L_i - \log L_{i-1}}{C_i - C_{i-1}},
              \quad \mathrm{score}_0 = 0.

    Args:
      candidates: from one or several backends.
      X: data, shape ``[n, len(names)]``.
      y: targets (``dw``), shape ``[n]``.
      names: the variable name of each column of ``X``.
      sample_weight: optional weights for polishing and the loss.
      rel_tol: share of the signal under which :func:`polish` drops a term.

    Returns:
      A DataFrame sorted by complexity with columns ``id, backend, complexity, loss,
      score, equation`` (4 significant figures), ``sympy`` (full precision, parseable by
      :func:`discover.equations.parse_equation`), ``latex`` (3 significant figures) and
      ``coefficients`` (JSON ``{term: coefficient}``).

    Example:
      >>> df = pareto_front(get_backend("sparse").fit(X, dw, names), X, dw, names)
      >>> df.loc[select(df, "best"), "equation"]
      '-0.009987*w*y**2 + 0.009995*x*y'
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    best: dict[str, tuple[int, float, sympy.Expr, str]] = {}
    for cand in candidates:
        try:
            expr = polish(cand.expr, X, y, names, rel_tol=rel_tol, sample_weight=sample_weight)
            loss = weighted_mse(evaluate(expr, X, names), y, sample_weight)
        except (TypeError, ValueError, ArithmeticError, PolynomialError):
            continue  # e.g. zoo coefficients, or a function the numpy evaluator lacks
        if expr == 0 or not math.isfinite(loss):
            continue
        key = str(round_expr(expr, 6))  # same structure and (nearly) same coefficients
        row = (complexity(expr), loss, expr, cand.backend)
        if key not in best or loss < best[key][1]:
            best[key] = row

    front = nondominated(list(best.values()))
    scores = _scores([r[0] for r in front], [r[1] for r in front])
    records = []
    for i, ((cx, loss, expr, backend), score) in enumerate(zip(front, scores)):
        coeffs = {str(k): v for k, v in terms(expr).items()}
        records.append({
            "id": i,
            "backend": backend,
            "complexity": cx,
            "loss": loss,
            "score": score,
            "equation": format_equation(expr),
            "sympy": str(expr),
            "latex": latex_equation(expr),
            "coefficients": json.dumps(coeffs),
        })
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def extra_rows(front: pd.DataFrame, exprs: Sequence[sympy.Expr], X: np.ndarray, y: np.ndarray,
               names: Sequence[str], backend: str) -> pd.DataFrame:
    """``front`` with rows for ``exprs`` appended as they are (not polished against ``y``:
    they were fitted to something else, e.g. a task's data), scored on ``(X, y)`` for
    reference, duplicates of existing term sets left out, ids continuing, sorted by
    complexity. Such rows need not be on the Pareto front of ``(X, y)``."""
    from discover.equations import parse_equation

    seen = {frozenset(str(t) for t in terms(parse_equation(e, variables=names))) for e in front["sympy"]}
    records, next_id = [], int(front["id"].max()) + 1 if len(front) else 0
    for expr in exprs:
        key = frozenset(str(t) for t in terms(expr))
        if key in seen:
            continue
        seen.add(key)
        loss = weighted_mse(evaluate(expr, np.asarray(X, np.float64), names), np.asarray(y, np.float64))
        records.append({"id": next_id, "backend": backend, "complexity": complexity(expr), "loss": loss,
                        "score": 0.0, "equation": format_equation(expr), "sympy": str(expr),
                        "latex": latex_equation(expr),
                        "coefficients": json.dumps({str(k): v for k, v in terms(expr).items()})})
        next_id += 1
    out = pd.concat([front, pd.DataFrame.from_records(records, columns=COLUMNS)], ignore_index=True)
    return out.sort_values(["complexity", "id"], kind="stable").reset_index(drop=True)
