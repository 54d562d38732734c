"""Spiking data, searched per event type (both backends).

A spike rule changes ``w`` mostly at spikes, ``dw = s_post*f(z) + s_pre*g(z) + h(z)``
(DESIGN.md section 3). Searched over all rows at once, a term that only one event type
carries and that is small beside the others enters the front last: with ``s_pre`` rows
as many as ``s_post`` rows and the presynaptic part larger, sparse regression over all
rows added two near-collinear ``s_pre*tr_pre**k`` corrections before a real
``s_post*tr_pre*w`` (benchmarks/random_rules.py, spiking open loop, rule 10). So each
event type is searched on its own rows, over the variables other than the spike
indicators (:func:`event_cells`); the members of the per-type fronts are combined
(:func:`event_front`) into event-driven equations (:func:`compose_events`), which are
scored on all rows (:func:`fit_by_event`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import sympy

from discover.vocabulary import BINARY

from ..simplify import complexity, evaluate, symbols_for
from .base import Candidate, nondominated, weighted_mse


def fit_by_event(search: Callable, X: np.ndarray, y: np.ndarray, names: Sequence[str], cells: dict,
                 max_complexity: int, sample_weight: np.ndarray | None, seed: int, min_event_rows: int,
                 backend: str) -> list[Candidate]:
    """One ``search(X_rows, y_rows, sub_names, weights, seed, event) -> [Candidate]`` per
    event type of :func:`event_cells` (``event``: the spike indicator, ``None`` between
    spikes), on the non-spike variables; the members of the per-type fronts (each with
    "no change", 0) are combined by :func:`event_front` and :func:`compose_events`, and
    each combination is scored on all rows.

    ``h(z)``, ``dw`` between spikes (e.g. a weight decay), is searched only if at least
    ``min_event_rows`` rows show it; a type whose rows all weigh 0 is left out (``f = 0``
    for a spike type, ``h = 0``).
    """
    names = tuple(names)
    sub_names = tuple(n for n in names if n not in BINARY)
    cols = [names.index(n) for n in sub_names]
    weight = np.ones(len(y)) if sample_weight is None else sample_weight
    keys = [k for k, rows in cells.items() if (k is not None or rows.sum() >= min_event_rows)
            and weight[rows].sum() > 0]
    seeds = np.random.SeedSequence(seed).generate_state(len(keys))
    fronts, shares = [], []
    for key, sub_seed in zip(keys, seeds):
        rows = cells[key]
        w = None if sample_weight is None else sample_weight[rows]
        members = [(sympy.Integer(0), 0, weighted_mse(np.zeros(rows.sum()), y[rows], w))]  # "no change"
        found = search(X[rows][:, cols], y[rows], sub_names, w, int(sub_seed), key)
        fronts.append(members + [(c.expr, c.complexity, c.loss) for c in found])
        shares.append(float(weight[rows].sum() / weight.sum()))

    out = []
    for combo in event_front([[(cx, loss) for _, cx, loss in f] for f in fronts], shares):
        expr = compose_events({k: fronts[i][j][0] for i, (k, j) in enumerate(zip(keys, combo))})
        if expr == 0:
            continue
        cx = complexity(expr)
        loss = weighted_mse(evaluate(expr, X, names), y, sample_weight)
        if cx <= max_complexity and np.isfinite(loss):
            out.append(Candidate(expr, cx, loss, backend))
    return out


def at_spikes(expr: sympy.Expr, names: Sequence[str]) -> sympy.Expr:
    """``expr`` with every term that has no spike factor multiplied by the sum of the spike
    indicators among ``names``: the same values on rows with one spike, and no change
    between spikes. For data sampled at spike events only (a task whose ``between_spikes``
    is false), where a term without a spike factor is only the shared part of the spike
    terms, not a change between spikes."""
    from discover.vocabulary import SYMBOLS

    spikes = [SYMBOLS[n] for n in names if n in BINARY]
    if not spikes:
        return expr
    out = []
    for t in sympy.Add.make_args(sympy.expand(expr)):
        out.append(t if t.free_symbols & set(spikes) else t * sympy.Add(*spikes))
    from discover.vocabulary import reduce_binary

    return reduce_binary(sympy.Add(*out))


def event_cells(X: np.ndarray, names: Sequence[str], min_rows: int = 50) -> dict[str | None, np.ndarray] | None:
    """Row masks of the event types of spiking samples, or ``None`` where no split applies.

    For each spike indicator ``s`` (:data:`discover.vocabulary.BINARY`) among ``names``:
    the rows where ``s = 1`` and every other indicator is 0; key ``None``: the rows
    without a spike. Rows with two spikes at once belong to no cell.

    Args:
      X: data, shape ``[n, len(names)]``.
      names: the variable name of each column.
      min_rows: fewest rows each single-spike cell needs.

    Returns:
      ``{indicator name or None: boolean mask [n]}``; ``None`` if ``names`` has no spike
      indicator or nothing else, an indicator column is not 0/1, or a single-spike cell
      has fewer than ``min_rows`` rows.
    """
    spikes = [j for j, n in enumerate(names) if n in BINARY]
    if not spikes or len(spikes) == len(names):
        return None
    S = X[:, spikes]
    if not np.all((S == 0) | (S == 1)):
        return None
    n_spikes = S.sum(axis=1)
    cells: dict[str | None, np.ndarray] = {names[j]: (X[:, j] == 1) & (n_spikes == 1) for j in spikes}
    if min(int(m.sum()) for m in cells.values()) < min_rows:
        return None
    cells[None] = n_spikes == 0
    return cells


def compose_events(parts: dict[str | None, sympy.Expr]) -> sympy.Expr:
    r"""The event-driven rule whose value on each event type's rows is that type's part.

    With :math:`F_i` fitted where only spike indicator :math:`s_i` is 1 and :math:`H`
    where no indicator is 1 (``parts[None]``, 0 if absent),

    .. math:: \Delta w = \sum_i s_i\,(F_i - H) + H,

    the form :math:`\sum_i s_i f_i + h` of DESIGN.md section 3 with :math:`f_i = F_i - H`,
    :math:`h = H` (on a row where both ``s_pre`` and ``s_post`` are 1 it gives
    :math:`F_\mathrm{pre} + F_\mathrm{post} - H`).

    Args:
      parts: ``{spike indicator name or None: expression over the other variables}``.

    Returns:
      The expanded expression.

    Example:
      >>> compose_events({"s_post": 0.01*tr_pre, "s_pre": -0.0105*tr_post})
      0.01*s_post*tr_pre - 0.0105*s_pre*tr_post
    """
    h = parts.get(None, sympy.Integer(0))
    spikes = [n for n in parts if n is not None]
    return sympy.expand(sum((s * (parts[n] - h) for s, n in zip(symbols_for(spikes), spikes)),
                            sympy.Integer(0)) + h)


def event_front(fronts: Sequence[Sequence[tuple[float, float]]], shares: Sequence[float]) -> list[tuple[int, ...]]:
    r"""Combinations of one member per event type that no other combination dominates.

    Member :math:`j` of type :math:`i` has complexity :math:`c_{ij}` and loss
    :math:`L_{ij}` on that type's rows; a combination :math:`(j_1, \dots)` is counted as
    complexity :math:`\sum_i c_{ij_i}` and loss :math:`\sum_i p_i L_{ij_i}`, with
    :math:`p_i` the type's share of the rows (its exact loss on those rows). A
    combination is kept if no other is at most as complex and strictly more accurate,
    the least complex first; of equal ones, the first in enumeration order.

    Args:
      fronts: per event type, ``(complexity, loss)`` of each member.
      shares: per event type, its share of the (weighted) rows.

    Returns:
      Index tuples ``(j_1, j_2, ...)``, by increasing complexity and decreasing loss.
    """
    combos = []
    for combo in itertools.product(*(range(len(f)) for f in fronts)):
        cx = sum(fronts[i][j][0] for i, j in enumerate(combo))
        loss = sum(p * fronts[i][j][1] for i, (j, p) in enumerate(zip(combo, shares)))
        combos.append((cx, loss, combo))
    return [combo for _, _, combo in nondominated(combos)]
