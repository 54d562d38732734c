"""Genetic-programming symbolic regression with pyoperon (runs offline, no Julia).

Operon (Burlacu, Kronberger & Kommenda 2020, GECCO Companion, "Operon C++: an efficient
genetic programming framework for symbolic regression") evolves expression trees with
NSGA-II and tunes their constants by Levenberg-Marquardt. DESIGN.md section 7 records the
configuration that works for plasticity rules: objectives ``gauss`` (Gaussian likelihood)
and ``length``, no model intercept or scale term (with pyoperon's defaults every noisy
fit gains a spurious intercept), constant optimization on; it recovered 17 of 18
canonical rules at about 25 CPU-seconds each. Each model of its final Pareto front
becomes a candidate; equations that divide by ``(s - 1)`` or similar for a spike
indicator are rejected (:func:`distill.simplify.finite_at_spikes`).

Spiking data are searched per event type (:mod:`distill.backends.events`): ``f`` on the
rows with only a postsynaptic spike, ``g`` on those with only a presynaptic one and ``h``
on those with none, and the members of the three fronts combined into event-driven
equations. Where every time step is sampled the rows with a spike are a few per cent of
them, and a search over all rows sees almost only ``h``, often just noise.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from discover.equations import EquationError, parse_equation
from discover.vocabulary import reduce_binary

from ..simplify import complexity, evaluate, finite_at_spikes
from .base import BackendUnavailable, Candidate, check_data, weighted_mse
from .events import compose_events, event_cells, event_front, fit_by_event

# Operon primitives whose printed form discover.equations.parse_equation can read back.
PARSEABLE_SYMBOLS = frozenset({
    "add", "sub", "mul", "div", "aq", "constant", "variable", "exp", "log", "logabs", "log1p",
    "tanh", "sqrt", "sqrtabs", "abs", "square", "pow", "powabs",
})

__all__ = [
    "PARSEABLE_SYMBOLS", "OperonBackend", "compose_events", "event_cells", "event_front", "finite_at_spikes",
    "unavailable_reason",
]


def unavailable_reason() -> str | None:
    """Why pyoperon cannot be used here, or ``None`` if it can."""
    try:
        import pyoperon.sklearn  # noqa: F401
    except ImportError as e:  # no wheel for this platform (needs Linux/macOS x86_64 + AVX2)
        return (f"pyoperon cannot be imported ({e}); `pip install pyoperon` needs CPython 3.10-3.13 "
                "and a CPU with AVX2")
    return None


@contextlib.contextmanager
def _tolerate_nonfinite_front(module):
    """pyoperon 0.6.2's ``fit`` scores its final front with sklearn's
    ``mean_squared_error``, which raises on a model that is ``nan``/``inf`` on the training
    data (e.g. ``x/(s_pre - 1)`` where ``s_pre = 1``), losing the whole run. Such models are
    scored ``inf`` here instead and dropped afterwards."""
    original = module.mean_squared_error

    def mse(y_true, y_pred):
        y_pred = np.asarray(y_pred, dtype=np.float64)
        return float(np.mean((y_true - y_pred) ** 2)) if np.all(np.isfinite(y_pred)) else float("inf")

    module.mean_squared_error = mse
    try:
        yield
    finally:
        module.mean_squared_error = original


@dataclass(frozen=True)
class OperonBackend:
    """pyoperon's ``SymbolicRegressor`` with the configuration of DESIGN.md section 7.

    Attributes:
      allowed_symbols: Operon primitives, comma separated; e.g. add ``exp,tanh``.
        Must be a subset of :data:`PARSEABLE_SYMBOLS`.
      generations: generation budget. A fixed number of generations keeps a fit
        reproducible for a given seed; 25 generations of 1,000 on 4,000 samples take
        17-22 CPU-seconds here (measured on the canonical rules of the tests).
      max_time: wall-clock cap of one fit, seconds, in case the machine is slow or busy
        (a fit stopped by it is no longer reproducible).
      population_size: NSGA-II population size.
      optimizer_iterations: Levenberg-Marquardt iterations per individual (> 0).
      max_samples: search on at most this many samples (drawn with the seed), for speed;
        candidates are scored on all of them.
      noise: noise standard deviation of the Gaussian likelihood, in units of the RMS of
        ``dw`` (``dw`` is scaled to unit RMS before fitting); it rescales the likelihood
        but does not change which of two models fits better.
      event_split: with spike indicators among the names, search each event type on
        its own rows (module docstring); one search per type, each with the budget
        above (canonical STDP rules, 10,000 samples: ~2-3 s for each spike type, ~12 s
        for the rows without spikes). Rules with an ``s_pre*s_post`` term are outside this form;
        turn it off for them.
      min_event_rows: fewest rows with a single spike of each kind the split needs
        (otherwise all rows are searched at once); the rows without spikes are searched
        only if there are this many, else ``h = 0``.

    Example:
      >>> cands = OperonBackend(generations=10).fit(X, dw, ["x", "y", "w"], seed=1)
    """

    name: str = "operon"
    allowed_symbols: str = "add,sub,mul,div,constant,variable"
    generations: int = 25
    max_time: int = 60
    population_size: int = 1000
    optimizer_iterations: int = 10
    max_samples: int = 4_000
    noise: float = 0.1
    event_split: bool = True
    min_event_rows: int = 50

    def __post_init__(self):
        symbols = [s.strip() for s in self.allowed_symbols.split(",") if s.strip()]
        unknown = [s for s in symbols if s not in PARSEABLE_SYMBOLS]
        if unknown:
            raise ValueError(f"operon symbols {unknown} cannot be read back into equations; "
                             f"use a subset of {', '.join(sorted(PARSEABLE_SYMBOLS))}")
        if "variable" not in symbols:
            raise ValueError("allowed_symbols must contain 'variable'")
        if self.optimizer_iterations <= 0:
            raise ValueError("optimizer_iterations must be > 0: without constant optimization Operon "
                             "rarely finds the coefficients (DESIGN.md section 7)")

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
        """Evolve candidates; see :meth:`distill.backends.base.Backend.fit`.

        ``max_degree`` is not enforced (Operon searches expressions, not a library);
        ``max_complexity`` bounds Operon's tree length and the sympy node count of the
        returned (expanded) candidates. ``sample_weight`` is honoured by resampling the
        rows with probability proportional to the weights. With spike indicators among
        ``names`` and ``event_split`` on, the search runs per event type
        (:func:`event_cells`, :func:`event_front`, :func:`compose_events`).

        Raises:
          BackendUnavailable: if pyoperon cannot be imported.
        """
        del max_degree
        reason = unavailable_reason()
        if reason is not None:
            raise BackendUnavailable(self.name, reason)
        X, y, sample_weight = check_data(X, y, names, sample_weight)
        names = tuple(names)
        cells = event_cells(X, names, self.min_event_rows) if self.event_split else None
        if cells is None:
            return self._search(X, y, names, max_complexity, sample_weight, seed)
        return self._fit_events(X, y, names, cells, max_complexity, sample_weight, seed)

    def _fit_events(self, X, y, names, cells, max_complexity, sample_weight, seed) -> list[Candidate]:
        """One search per event type (:func:`distill.backends.events.fit_by_event`)."""
        return fit_by_event(lambda Xs, ys, sub, w, sd, _event: self._search(Xs, ys, sub, max_complexity, w, sd),
                            X, y, names, cells, max_complexity, sample_weight, seed, self.min_event_rows, self.name)

    def _search(self, X, y, names, max_complexity, sample_weight, seed) -> list[Candidate]:
        """One Operon run on ``(X, y)``; its Pareto front as candidates scored on all rows."""
        import pyoperon as op
        import pyoperon.sklearn as op_sklearn

        rng = np.random.default_rng(seed)
        n = len(y)
        if sample_weight is not None:
            rows = rng.choice(n, size=min(n, self.max_samples), p=sample_weight / sample_weight.sum())
        elif n > self.max_samples:
            rows = rng.choice(n, size=self.max_samples, replace=False)
        else:
            rows = np.arange(n)
        Xf, yf = X[rows], y[rows]
        scale = float(np.sqrt(np.mean(yf**2)))
        if scale == 0.0:
            return []

        reg = op_sklearn.SymbolicRegressor(
            allowed_symbols=self.allowed_symbols,
            objectives=["gauss", "length"],
            add_model_intercept_term=False,
            add_model_scale_term=False,
            optimizer_iterations=self.optimizer_iterations,
            max_length=max(10, max_complexity),
            population_size=self.population_size,
            generations=self.generations,
            max_time=int(self.max_time),
            uncertainty=[float(self.noise)],
            n_threads=1,
            random_state=int(seed),
        )
        with warnings.catch_warnings(), _tolerate_nonfinite_front(op_sklearn):
            warnings.simplefilter("ignore")
            reg.fit(Xf, yf / scale)

        hash_to_name = {h: names[i] for i, h in enumerate(reg.variables_)}
        out = []
        for model in reg.pareto_front_:
            text = op.InfixFormatter.Format(model["tree"], hash_to_name, 12)
            try:
                expr = sympy.Float(scale) * parse_equation(text, variables=names)
            except EquationError:
                continue
            if not expr.free_symbols or not finite_at_spikes(expr, names, X):
                continue
            cx = complexity(reduce_binary(sympy.expand(expr)))
            if cx > max_complexity:
                continue
            loss = weighted_mse(evaluate(expr, X, names), y, sample_weight)
            if np.isfinite(loss):
                out.append(Candidate(expr, cx, loss, self.name))
        return out
