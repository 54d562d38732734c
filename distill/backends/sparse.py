"""Sparse regression over a library of Hebbian monomials (the default backend).

Sequentially thresholded least squares (STLSQ), the algorithm of SINDy (Brunton, Proctor
& Kutz 2016, PNAS 113:3932, Sec. "Sparse identification"), over all monomials of the
given local variables up to a total degree, with ``s**k == s`` for spike indicators so
the library has no duplicate columns (:func:`discover.monomials.monomial_exponents`).
Columns and target are scaled to unit RMS, so a normalized coefficient is the share of
the signal its term carries; a sweep of thresholds gives candidates of every sparsity,
and each support is refitted by plain least squares. DESIGN.md section 7 records that
this recovered Oja, BCM and pair STDP in 18 of 18 runs at 2-8 CPU-seconds each.

On spiking samples the library is also fitted per event type (``event_split``,
:mod:`distill.backends.events`): ``s_post*f + s_pre*g + h`` with ``f``, ``g`` (one degree
less, the indicator is the last) and ``h`` fitted on their own rows; those candidates join
the ones over all rows, and the Pareto front keeps the better of each complexity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from discover.monomials import evaluate_monomials, monomial_exponents, monomial_exprs

from ..simplify import complexity, scaled_lstsq
from .base import Candidate, check_data, weighted_mse
from .events import event_cells, fit_by_event


def _solve(G: np.ndarray, g: np.ndarray, S: np.ndarray, ridge: float) -> np.ndarray:
    """Least squares on support ``S`` from the Gram matrix: ``(G_SS + ridge*I) c = g_S``."""
    Gs = G[np.ix_(S, S)] + ridge * np.eye(len(S))
    try:
        return np.linalg.solve(Gs, g[S])
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(Gs, g[S], rcond=None)[0]


def stlsq(G: np.ndarray, g: np.ndarray, threshold: float, ridge: float = 1e-10,
          max_iter: int = 25) -> np.ndarray:
    r"""Sequentially thresholded least squares on normalized columns.

    Repeat until the support stops changing:

    .. math:: \xi = \arg\min_\xi \|b - A_S \xi\|^2, \qquad S \leftarrow \{k : |\xi_k| \ge \lambda\}

    (Brunton, Proctor & Kutz 2016), solved through the Gram matrix
    :math:`G = A^\top A / n`, :math:`g = A^\top b / n` with a tiny ridge for stability.

    Args:
      G: Gram matrix of the normalized library, ``[p, p]``.
      g: ``A^T b / n``, ``[p]``.
      threshold: :math:`\lambda`, in units of the RMS of the target.
      ridge: Tikhonov term added to ``G_SS``.
      max_iter: iterations at most.

    Returns:
      The indices of the support (possibly empty), sorted.
    """
    S = np.arange(len(g))
    for _ in range(max_iter):
        if len(S) == 0:
            break
        xi = _solve(G, g, S, ridge)
        big = np.abs(xi) >= threshold
        if big.all():
            break
        S = S[big]
    return S


def backward_path(G: np.ndarray, g: np.ndarray, max_terms: int, ridge: float = 1e-10) -> list[np.ndarray]:
    """Supports from removing, one at a time, the term with the smallest normalized coefficient."""
    S = np.arange(len(g))
    out = []
    while len(S) > 0:
        xi = _solve(G, g, S, ridge)
        if len(S) <= max_terms:
            out.append(S.copy())
        S = np.delete(S, int(np.argmin(np.abs(xi))))
    return out


def best_small_supports(G: np.ndarray, g: np.ndarray, term_complexity: np.ndarray) -> list[np.ndarray]:
    """For every equation complexity, the best support of one or two terms (exhaustively).

    Thresholding and backward elimination can both miss a small but real second term:
    with Hebb+decay, ``-0.005*w`` carries a small share of ``dw`` and is pruned before
    spurious terms that carry more. Every one- and two-term support is solved in closed
    form from the Gram matrix (normalized residual ``1 - c . g_S``); per complexity
    (``sum of the terms' + 1`` for the ``Add``) the lowest residual is kept, so the
    front's low end is complete whatever the thresholds found.
    """
    p = len(g)
    d = np.diag(G)
    ok = d > 0
    best: dict[int, tuple[float, tuple[int, ...]]] = {}

    def offer(cx, rss, S):
        if cx not in best or rss < best[cx][0]:
            best[cx] = (rss, S)

    for i in np.flatnonzero(ok):
        offer(int(term_complexity[i]), 1.0 - g[i] ** 2 / d[i], (int(i),))
    i, j = np.triu_indices(p, k=1)
    det = d[i] * d[j] - G[i, j] ** 2
    good = det > 1e-9 * d[i] * d[j]  # drop collinear pairs (e.g. w and w**2 over a narrow range)
    i, j, det = i[good], j[good], det[good]
    ci = (d[j] * g[i] - G[i, j] * g[j]) / det
    cj = (d[i] * g[j] - G[i, j] * g[i]) / det
    rss = 1.0 - (ci * g[i] + cj * g[j])
    cx = term_complexity[i] + term_complexity[j] + 1
    for c in np.unique(cx):
        k = np.flatnonzero(cx == c)
        m = k[np.argmin(rss[k])]
        offer(int(c), float(rss[m]), (int(i[m]), int(j[m])))
    return [np.array(S) for _, S in best.values()]


def _distinct(A: np.ndarray, usable: np.ndarray, norms: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """The columns of ``usable`` that are not a multiple of an earlier one on every sample
    (the library is ordered by degree: a monomial equal to a simpler one on the data, such
    as ``m**2 = 1`` where the reward ``m`` is +1 or -1, is left out, so that one term is not
    split between two equal columns)."""
    if len(usable) < 2:
        return usable
    U = A[:, usable] / (norms[usable] * np.sqrt(len(A)))
    C = np.abs(U.T @ U)
    keep = []
    for j in range(len(usable)):
        if not any(C[j, i] > 1.0 - tol for i in keep):
            keep.append(j)
    return usable[keep]


@dataclass(frozen=True)
class SparseBackend:
    r"""STLSQ over monomials of the local variables (fast, deterministic, polynomial only).

    Candidates have the form :math:`\Delta w = \sum_{k \in S} c_k \prod_j v_j^{e_{kj}}`.

    Attributes:
      thresholds: normalized thresholds to sweep (share of the target's RMS); default
        ``geomspace(1e-3, 1, 49)``.
      include_constant: offer a constant column (plasticity rules have none by default).
      ridge: Tikhonov term of the thresholding solves (normalized units).
      backward: also add the supports of a one-term-at-a-time backward elimination, which
        fills the Pareto front between the thresholds' supports.
      small: also add the best one- and two-term support of every complexity, found
        exhaustively (:func:`best_small_supports`).
      event_split: with spike indicators among the names, also fit each event type on
        its own rows and add the event-driven combinations
        (:func:`distill.backends.events.fit_by_event`).
      min_event_rows: fewest rows of each single-spike type the split needs.

    Example:
      >>> cands = SparseBackend().fit(X, dw, ["x", "y", "w"])
    """

    name: str = "sparse"
    thresholds: tuple[float, ...] | None = None
    include_constant: bool = False
    ridge: float = 1e-10
    backward: bool = True
    small: bool = True
    event_split: bool = True
    min_event_rows: int = 50

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
        """Fit sparse polynomial candidates; see :meth:`distill.backends.base.Backend.fit`.

        ``seed`` is unused (the method is deterministic).
        """
        del seed
        X, y, sample_weight = check_data(X, y, names, sample_weight)
        names = tuple(names)
        if max_degree < 1:
            raise ValueError(f"max_degree must be >= 1, got {max_degree}")
        out = self._fit(X, y, names, max_complexity, max_degree, sample_weight)
        cells = event_cells(X, names, self.min_event_rows) if self.event_split and max_degree > 1 else None
        if cells is not None:
            def search(Xs, ys, sub, w, _seed, event):  # a spike type's part has one degree less
                return self._fit(Xs, ys, sub, max_complexity, max_degree - (event is not None), w)

            out += fit_by_event(search, X, y, names, cells, max_complexity, sample_weight, 0, self.min_event_rows,
                                self.name)
        return out

    def _fit(self, X, y, names, max_complexity, max_degree, sample_weight) -> list[Candidate]:
        """Candidates over all rows of ``X`` (the library of every monomial of ``names``)."""
        exps = monomial_exponents(names, max_degree, include_constant=self.include_constant)
        library = monomial_exprs(names, exps)
        theta = evaluate_monomials(X, exps)
        sw = np.ones_like(y) if sample_weight is None else sample_weight / sample_weight.mean()
        root = np.sqrt(sw)
        A = theta * root[:, None]
        b = y * root
        n = len(y)
        norms = np.sqrt(np.mean(A**2, axis=0))
        # columns that are not all 0 (e.g. s_pre*s_post never 1); not relative to the largest column:
        # variables of other units differ by many decades (an eligibility trace ~1e-7, w ~1e3)
        usable = np.flatnonzero(norms > 1e-300)
        usable = _distinct(A, usable, norms)  # e.g. m**2 = 1 where m is +1 or -1
        b_rms = float(np.sqrt(np.mean(b**2)))
        if b_rms == 0.0 or len(usable) == 0:
            return []
        An = A[:, usable] / norms[usable]
        bn = b / b_rms
        G = An.T @ An / n
        g = An.T @ bn / n

        thresholds = self.thresholds if self.thresholds is not None else tuple(np.geomspace(1e-3, 1.0, 49))
        supports: dict[tuple[int, ...], None] = {}
        for lam in thresholds:
            S = stlsq(G, g, float(lam), self.ridge)
            if len(S):
                supports[tuple(int(k) for k in S)] = None
        if self.backward:
            for S in backward_path(G, g, max_terms=max(1, max_complexity // 2), ridge=self.ridge):
                supports[tuple(int(k) for k in S)] = None

        if self.small:
            tcx = np.array([complexity(sympy.Float(0.5) * library[k]) for k in usable])
            for S in best_small_supports(G, g, tcx):
                supports[tuple(sorted(int(k) for k in S))] = None

        out = []
        for S in supports:
            cols = usable[list(S)]
            # refit on the support (columns scaled: raw columns of other units differ by decades)
            c = scaled_lstsq(A[:, cols], b)
            expr = sympy.Add(*[sympy.Float(float(ck)) * library[k] for ck, k in zip(c, cols)])
            cx = complexity(expr)
            if cx > max_complexity:
                continue
            pred = theta[:, cols] @ c
            out.append(Candidate(expr, cx, weighted_mse(pred, y, sample_weight), self.name))
        return out
