r"""Discovered vs canonical rules: is the selected equation Oja, pair STDP, triplet STDP...?

A run's selected equation (:func:`discover.io.selected_equation`, its ``sympy`` column)
is compared with each canonical rule of the same network kind
(:data:`discover.rules.CANONICAL`, at its published parameters) at two levels:

- **equation level** (:mod:`analysis.metrics`): term Jaccard index and distance of the
  normalized coefficients; the closest canonical rule;
- **behaviour level**: every registered behaviour check that applies
  (:mod:`analysis.checks`: the STDP pairing window and the frequency protocol of
  Sjöström et al. 2001 for spiking rules, the Oja and BCM checks for rate rules) runs the
  equation and each canonical rule in the simulator. Distances of checks that share a
  column (``behaviour_distance``, ``frequency_distance``) are averaged, a NaN part left
  out, an ``inf`` one making the mean ``inf``.

:func:`run` writes ``comparison.csv`` (one row per canonical rule) and each check's table
(``comparison_windows.csv``, ``comparison_frequency.csv``); for those tables the run's
neural rule (``rule/``) and its teacher (``[task.teacher]``) are simulated too. jax,
discover and distill are imported inside the functions.

References:
  Oja 1982, J. Math. Biol. 15:267; Song, Miller & Abbott 2000, Nat. Neurosci. 3:919;
  Pfister & Gerstner 2006, J. Neurosci. 26:9673; Bienenstock, Cooper & Munro 1982,
  J. Neurosci. 2:32.
"""

from __future__ import annotations

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
from .metrics import (
    COLUMNS,
    CompareUnavailable,
    coefficient_distance,
    equation_comparison,
    mark_closest,
    network_kind,
    normalized_coefficients,
    parse,
    population,
    term_jaccard,
)

COMPARISON = rundir.COMPARISON

#: Variables whose value depends on a time constant of the rule (traces, BCM threshold, means).
TRACE_VARIABLES: tuple[str, ...] = ("tr_pre", "tr_post", "tr_pre_slow", "tr_post_slow", "theta", "x_mean", "y_mean")


@dataclass
class Comparison:
    """What :func:`compare_equation` / :func:`run` found.

    ``table`` is ``comparison.csv``; ``frames`` the checks' tables by file name
    (``comparison_windows.csv``: the pairing windows, ``comparison_frequency.csv``: the
    frequency-protocol curves; spiking rules); ``notes`` say what was skipped and why;
    ``paths`` the files written.
    """

    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def closest(self) -> str:
        return str(self.table.loc[self.table["closest"], "canonical"].iloc[0])

    @property
    def windows(self) -> pd.DataFrame | None:
        return self.frames.get(rundir.COMPARISON_WINDOWS)

    @property
    def frequency(self) -> pd.DataFrame | None:
        return self.frames.get(rundir.COMPARISON_FREQUENCY)


def default_checks() -> list:
    """One instance (default settings) of every registered behaviour check, in registry order."""
    from .checks import CHECKS

    return [CHECKS.get(name)() for name in CHECKS.names()]


def _mean(parts: list[float]) -> float:
    parts = [p for p in parts if not math.isnan(p)]
    return float(np.mean(parts)) if parts else math.nan


def compare_equation(equation: str, network: str | None = None, timescales: Mapping[str, float] | None = None,
                     behaviour: bool = True, checks: Sequence | None = None, population: str = "") -> Comparison:
    """Compare one equation with the canonical rules of its network kind, at both levels.

    Args:
      equation: the equation text, e.g. ``"-0.0149*w*y**2 + 0.0141*x*y"``.
      network: ``"rate"`` or ``"lif"``; ``None`` infers it from the variables used.
      timescales: trace time constants of the equation (default: discover's defaults).
      behaviour: run the behaviour checks too (JAX; a few seconds).
      checks: the behaviour checks (:class:`analysis.checks.BehaviourCheck`); default
        :func:`default_checks`. Those that apply to the equation run in order; one whose
        ``requires`` did not succeed is skipped.
      population: the synapses the equation is for (``"inh"``: canonical rules of
        inhibitory synapses join the comparison; :func:`analysis.metrics.population`).

    Returns:
      A :class:`Comparison`; a check that cannot run (:func:`analysis.checks.simulation_errors`,
      or a module it needs that does not import) leaves NaN distances and a note (in
      ``notes``, and for the first check of the ``behaviour_distance`` column in the
      ``behaviour_note`` column).

    Example::

      >>> compare_equation("-0.0149*w*y**2 + 0.0141*x*y", "rate", behaviour=False).closest
      'oja'
    """
    expr = parse(equation)
    network = network or network_kind(expr)
    table = equation_comparison(equation, network, population)
    if not behaviour:
        return Comparison(table)
    from .checks import simulation_errors

    variables = {s.name for s in expr.free_symbols}
    active = [c for c in (default_checks() if checks is None else checks) if c.applies(variables, network)]
    primary = next((c for c in active if c.column == "behaviour_distance"), None)
    if primary is not None:
        table["behaviour"] = primary.name
    every = table["canonical"].tolist()
    # rules that read a reward, an eligibility trace or a teaching potential have no
    # behaviour in pairing protocols (which give none of them): equation level only
    names = [n for n in every if not set(canonical_rule_inputs(n)) & {"m", "elig", "u_target"}]
    at = [every.index(n) for n in names]

    def full(value):
        if isinstance(value, (list, tuple, np.ndarray)) and len(value) == len(names) and len(names) != len(every):
            out = [math.nan] * len(every)
            for i, v in zip(at, value):
                out[i] = v
            return out
        return value
    notes: list[str] = []
    frames: dict[str, pd.DataFrame] = {}
    parts: dict[str, list[list[float]]] = {}
    done: set[str] = set()
    for check in active:
        if not set(check.requires) <= done:
            continue
        try:
            eq = check.measure(equation, timescales=timescales)
            can = {n: check.canonical(n) for n in names}
        except ImportError as e:
            note = f"{check.title} skipped: {e.name or 'a module it needs'} cannot be imported ({e})."
        except simulation_errors() as e:  # a rule the check cannot simulate: keep the equation level
            note = f"{check.title} failed: {type(e).__name__}: {e}"
        else:
            done.add(check.name)
            for col, value in check.columns(eq, can, names).items():
                table[col] = full(value)
            per_rule = parts.setdefault(check.column, [[] for _ in every])
            for i, n in zip(at, names):
                per_rule[i].extend(check.parts(eq, can[n]))
            notes += check.notes(eq, can, names)
            if check.output is not None:
                frames[check.output] = check.frame(eq, can, names)
            continue
        notes.append(note)
        if check is primary:
            table["behaviour_note"] = note
    for col, per_rule in parts.items():
        table[col] = [_mean(p) for p in per_rule]
    return Comparison(mark_closest(table), notes, frames=frames)


# ----------------------------------------------------------------------------- run directory


def canonical_rule_inputs(name: str) -> tuple[str, ...]:
    """The local variables the canonical rule ``name`` reads."""
    from discover.rules import canonical_rule

    return tuple(canonical_rule(name).inputs)


def equation_text(row: pd.Series) -> str:
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
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:  # unreadable or not of that shape
        return {}, f"time constants of `rule/` unreadable ({type(e).__name__}: {e}); defaults used"


def compare_run(run_dir: str | os.PathLike, behaviour: bool = True) -> Comparison:
    """Compare a run's selected equation with the canonical rules (nothing is written).

    Args:
      run_dir: the run directory (needs ``config.toml`` and ``equations.csv``).
      behaviour: run the behaviour checks too.

    Returns:
      A :class:`Comparison` whose table has ``equation_id`` filled in.

    Raises:
      CompareUnavailable: if ``equations.csv`` is missing or the equation cannot be
        parsed; discover.io.RunDirError: if an input is malformed.
    """
    run_dir = Path(run_dir)
    config, _ = rundir.read_config(run_dir)
    equations = rundir.read_equations(run_dir)
    if equations is None:
        raise CompareUnavailable(rundir.missing_note(rundir.EQUATIONS))
    row = rundir.selected_row(equations)  # the run's pick (discover.io.selected_equation)
    text = equation_text(row)
    from discover.equations import EquationError

    try:
        expr = parse(text)
    except EquationError as e:
        raise CompareUnavailable(f"the selected equation cannot be parsed: {e}") from None
    network = network_kind(expr, config)
    timescales, ts_note = run_timescales(run_dir) if behaviour else ({}, "")
    if not {s.name for s in expr.free_symbols} & set(TRACE_VARIABLES):
        ts_note = ""  # the equation reads no trace: its time constants do not matter
    result = compare_equation(text, network, timescales, behaviour=behaviour, population=population(config))
    result.table["equation_id"] = str(row["id"])
    if ts_note:
        result.notes.append(ts_note[0].upper() + ts_note[1:] + ".")
    if result.frames:
        checks = [c for c in default_checks() if c.output in result.frames]
        extra, notes = run_protocol_curves(run_dir, config, checks)
        result.notes += notes
        for name, df in result.frames.items():  # the equation, the neural rule and the teacher, the canonical rules
            eq = df["rule"] == "equation"
            result.frames[name] = pd.concat([df[eq], *extra.get(name, []), df[~eq]],
                                            ignore_index=True)[list(df.columns)]
    return result


def run_rules(run_dir: str | os.PathLike, config: Mapping[str, Any]) -> tuple[list[tuple[str, Any, Any]], list[str]]:
    """The run's neural rule and its teacher, to simulate in the protocols, with notes.

    The neural rule is read with :func:`discover.build.load_rule` (``rule/rule.json`` and
    ``rule/params.npz``), with its own (possibly learned) time constants; the teacher is
    ``[task.teacher]`` of ``config.toml``, built as discover builds it
    (:func:`discover.rules.make_symbolic_rule`), or ``None`` params meaning a canonical
    rule as published. A rule that is absent or cannot be built is left out, with a note.

    Returns:
      ``([(label, rule, params), ...], notes)`` with labels ``"neural"``, ``"teacher"``;
      a teacher given as a canonical rule at its published parameters is its name.
    """
    from .checks import simulation_errors

    run_dir = Path(run_dir)
    rules: list[tuple[str, Any, Any]] = []
    notes: list[str] = []
    rule_dir = run_dir / "rule"
    if (rule_dir / "rule.json").is_file() and (rule_dir / "params.npz").is_file():
        try:
            from discover.build import load_rule

            rule, params = load_rule(run_dir)
            rules.append(("neural", rule, params))
        except (OSError, *simulation_errors()) as e:  # RunDirError, a spec of another version, a bad file
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
        except simulation_errors() as e:  # an equation that does not parse, a parameter that is not a number
            notes.append(f"The teacher cannot be built ({type(e).__name__}: {e}); the protocol figures leave it out.")
    return rules, notes


def run_protocol_curves(run_dir: str | os.PathLike, config: Mapping[str, Any], checks: Sequence
                        ) -> tuple[dict[str, list[pd.DataFrame]], list[str]]:
    """Each check's table (pairing windows, frequency curves) for the run's neural rule and teacher.

    Args:
      run_dir, config: the run directory and its config.
      checks: the behaviour checks with an ``output`` file to add the two rules to.

    Returns:
      ``({output file: [DataFrame, ...]}, notes)``: each DataFrame has the columns of
      that file with ``rule`` ``"neural"`` or ``"teacher"``; a rule whose protocol fails
      is left out, with a note.
    """
    from .checks import simulation_errors

    rules, notes = run_rules(run_dir, config)
    out: dict[str, list[pd.DataFrame]] = {c.output: [] for c in checks}
    for label, rule, params in rules:
        for check in checks:
            try:
                df = check.canonical(rule) if isinstance(rule, str) else check.measure(rule, params)
            except simulation_errors() as e:
                notes.append(f"The {check.title} of the {label} rule failed ({type(e).__name__}: {e}); "
                             "its curve is left out.")
                continue
            out[check.output].append(check.frame(df, {}, ()).assign(rule=label))
    return out, notes


def run(run_dir: str | os.PathLike, behaviour: bool = True) -> Comparison:
    """Write ``comparison.csv`` and each behaviour check's table (spiking rules: windows, frequency curves).

    An output this comparison cannot produce (a rate rule, a protocol that failed) is
    deleted with its figure, so no stale file of an earlier equation survives.

    Args:
      run_dir: the run directory.
      behaviour: run the behaviour checks too.

    Returns:
      The :class:`Comparison`, with ``paths`` set.

    Raises:
      CompareUnavailable: if the comparison cannot run (see :func:`compare_run`).
    """
    from discover.io import atomic_write_text

    run_dir = Path(run_dir)
    result = compare_run(run_dir, behaviour=behaviour)
    paths = [atomic_write_text(run_dir / COMPARISON, result.table.to_csv(index=False))]
    for name, stem in _check_outputs():
        if name in result.frames:
            paths.append(atomic_write_text(run_dir / name, result.frames[name].to_csv(index=False)))
        else:  # stale output of an earlier selected equation
            _unlink(run_dir / name, *_figure_files(run_dir, stem))
    result.paths = paths
    return result


def _check_outputs() -> list[tuple[str, str | None]]:
    """``(file, figure stem)`` of every registered check that writes a file."""
    from .checks import CHECKS

    outs = [(c.output, c.figure) for c in map(CHECKS.get, CHECKS.names()) if c.output is not None]
    return list(dict.fromkeys(outs))


def _figure_files(run_dir: Path, stem: str | None) -> list[Path]:
    return [run_dir / "figures" / f"{stem}.{ext}" for ext in ("png", "pdf")] if stem else []


def _unlink(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def remove_outputs(run_dir: str | os.PathLike) -> None:
    """Delete comparison outputs of an earlier run (when the comparison cannot run now)."""
    run_dir = Path(run_dir)
    _unlink(run_dir / COMPARISON, run_dir / "tables" / "comparison.tex", *_figure_files(run_dir, "comparison"),
            *(p for name, stem in _check_outputs() for p in (run_dir / name, *_figure_files(run_dir, stem))))


from .checks.frequency import frequency_distance  # noqa: E402  (re-exported: tests/test_recovery.py)
from .checks.window import window_distance  # noqa: E402
from .runs import compare_runs, runs_table  # noqa: E402  (re-exported: `plasticity compare`)

__all__ = ["COLUMNS", "Comparison", "CompareUnavailable", "TRACE_VARIABLES", "compare_equation", "compare_run",
           "default_checks", "equation_text", "run", "run_rules", "run_protocol_curves", "run_timescales",
           "remove_outputs", "runs_table", "compare_runs", "normalized_coefficients", "term_jaccard",
           "coefficient_distance", "equation_comparison", "mark_closest", "window_distance", "frequency_distance"]
