"""The sections of a run's report, each a list of blocks (:mod:`analysis.blocks`).

One function per section (task, meta-training, selected equation, fit to data, front,
verification, comparison, manifest) takes what :mod:`analysis.rundir` read and the
figures written, and says in a note what is missing and which command writes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import rundir, tables
from .blocks import (
    Block,
    Code,
    FigureBlock,
    Heading,
    Math,
    Note,
    Para,
    Table,
    code,
    equation_image,
    interval,
    number,
    seconds,
)
from .cells import has_values
from .contract import regenerate
from .latex import row_timescales, timescales_text


def task_section(config: dict[str, Any], config_text: str) -> list[Block]:
    blocks: list[Block] = [Heading("Task and network")]
    known = [
        ("task", "name", "task"),
        ("network", "kind", "network"),
        ("rule", "kind", "rule parameterization"),
        ("meta", "steps", "meta-training steps"),
        ("meta", "batch", "meta-batch (episodes)"),
        ("meta", "learning_rate", "meta learning rate"),
        ("meta", "seed", "seed"),
        ("distill", "backend", "distillation backend"),
    ]
    rows = []
    for section, key, label in known:
        value = config.get(section, {})
        if isinstance(value, dict) and key in value:
            rows.append([label, code(value[key])])
    if rows:
        blocks.append(Table(["setting", "value"], rows))
    else:
        blocks.append(Note("`config.toml` names no task, network or rule; its full text follows."))
    blocks.append(Code(config_text.rstrip("\n"), "toml", "config.toml (as run)"))
    return blocks


def meta_section(history: pd.DataFrame | None, figs: dict[str, FigureBlock]) -> list[Block]:
    blocks: list[Block] = [Heading("Meta-training")]
    if history is None:
        return blocks + [Note(rundir.missing_note(rundir.META_HISTORY))]
    if history.empty:
        return blocks + [Note("`meta_history.csv` has no rows: meta-training recorded no step.")]
    last = history.iloc[-1]
    facts = [
        f"{len(history)} recorded steps (last step {int(last['step'])})",
        f"final meta-loss {number(last['meta_loss'])}",
    ]
    val = history.dropna(subset=["val_loss"])
    if len(val):
        best = val.loc[val["val_loss"].idxmin()]
        last_val = val.iloc[-1]
        facts.append(f"final validation loss {number(last_val['val_loss'])} (step {int(last_val['step'])})")
        facts.append(f"best validation loss {number(best['val_loss'])} (step {int(best['step'])})")
    else:
        facts.append("no validation loss recorded")
    wall = history["wall_s"].dropna()
    if len(wall):
        facts.append(f"wall time {seconds(wall.iloc[-1])}")
    blocks.append(Para("; ".join(facts) + "."))
    if "meta_loss" in figs:
        blocks.append(figs["meta_loss"])
    return blocks


def selected_section(equations: pd.DataFrame | None, figs: dict[str, FigureBlock] | None = None) -> list[Block]:
    blocks: list[Block] = [Heading("Selected equation")]
    if equations is None:
        return blocks + [Note(rundir.missing_note(rundir.EQUATIONS))]
    if "synapse" in equations.columns:  # one rule per synapse type: each type's pick
        picks = equations[equations["selected"].astype(bool)]
        blocks.append(Para(f"One rule per plastic synapse type ({', '.join(code(t) for t in picks['synapse'])}); "
                           "each equation was distilled from its type's neural rule, with the other types' "
                           "neural rules running beside it (verification row `equations`: all of them at once)."))
        for _, row in picks.iterrows():
            blocks += _selected_blocks(row, equations, f"Synapse type {code(row['synapse'])}: equation ")
        return blocks
    row = rundir.selected_row(equations)  # the run's pick (discover.io.selected_equation)
    blocks += _selected_blocks(row, equations)
    if figs and "coefficients" in figs:
        blocks.append(figs["coefficients"])
    return blocks


def _selected_blocks(row, equations: pd.DataFrame, lead: str = "Equation ") -> list[Block]:
    """One selected equation: where it comes from, the equation, its time constants and coefficients."""
    blocks: list[Block] = []
    latex = tables.equation_latex(row)
    blocks.append(
        Para(
            f"{lead}{code(row['id'])} (backend {code(row['backend'])}, complexity "
            f"{int(row['complexity'])}, loss {number(row['loss'])}, score {number(row['score'])}):"
        )
    )
    blocks.append(Math(rf"\Delta w = {latex}", row["equation"], equation_image(latex)))
    ts = row_timescales(row)
    if ts:  # an equation of traces is complete only with the time constants it was found with
        blocks.append(Para(f"Trace time constants it was found with: {timescales_text(ts)}."))
    coefs = row.get("coefficients_parsed") if "coefficients_parsed" in equations else None
    if coefs:
        has_ci = any(not math.isnan(c["ci_low"]) for c in coefs.values())
        header = ["term", "coefficient", *(["confidence interval"] if has_ci else [])]
        rows = [
            [code(term), number(c["value"]), *([interval(c["ci_low"], c["ci_high"])] if has_ci else [])]
            for term, c in coefs.items()
        ]
        blocks.append(Table(header, rows))
        if not has_ci:
            blocks.append(Note("No confidence intervals were recorded for the coefficients."))
    return blocks


def data_fit_section(
    fit: pd.DataFrame | None,
    data: pd.DataFrame | None,
    equations: pd.DataFrame | None = None,
    figs: dict[str, FigureBlock] | None = None,
) -> list[Block]:
    """The fit of the equations and the published rules to the task's measured data.

    Only for tasks fitted to measured experiments (``fit_protocols``), which write
    ``fit.csv`` and ``data_fit.csv``: the data sets and the error measure in words, which
    model Akaike's criterion selects, a table of every model sorted by AIC (the
    selected one in bold) and the ``data_fit`` figure. Nothing when neither file exists.

    Args:
      fit: ``fit.csv`` as :func:`analysis.rundir.read_fit` returns it (sorted by AIC,
        ``selected`` on the equation of least AIC), or ``None``.
      data: ``data_fit.csv`` as :func:`analysis.rundir.read_data_fit` returns it, or ``None``.
      equations: ``equations.csv`` (its ``selected`` row is the run's pick), to check that
        the pick is the AIC's; ``None`` skips the check.
      figs: the figures written (``data_fit`` is shown).

    Returns:
      The blocks of the section, or ``[]``.
    """
    if fit is None and data is None:
        return []
    blocks: list[Block] = [Heading("Fit to data")]
    facts = []
    if data is not None:
        counts = data["dataset"].value_counts(sort=False)
        sets = ", ".join(code(d) + (f" ({n})" if len(counts) > 1 else "") for d, n in counts.items())
        pairing = int(np.isfinite(data["lag_ms"].to_numpy(float)).sum())
        other = len(data) - pairing
        kinds = ("all pairings" if not other else "none a pairing" if not pairing
                 else f"{pairing} pairing{'s' if pairing != 1 else ''}, {other} other")
        facts.append(f"Measured weight changes of {sets}: N = {len(data)} experiments ({kinds}).")
    facts.append("Error measure E: the mean over the experiments of ((Δw_model − Δw_data) / SEM)², the mean "
                 "squared deviation from the data in units of the SEM (Pfister & Gerstner 2006);")
    facts[-1] += " " + (_default_sem_text(data) if data is not None else "the SEM used is in `data_fit.csv`.")
    facts.append("k counts a model's free parameters (its coefficients and learned time constants); "
                 "χ² = N·E and AIC = χ² + 2k (Akaike 1974): the equation of least AIC is selected.")
    blocks.append(Para(" ".join(facts)))
    if fit is None:
        blocks.append(Note(rundir.missing_note(rundir.FIT)))
    else:
        blocks += _fit_choice(fit, equations)
        rows = [
            [
                f"**{r['rule']}** (selected)" if r["selected"] else code(r["rule"]),
                r["kind"],
                code(r["equation"]) if r["equation"] else "",
                number(r["loss"]),
                str(int(r["free_parameters"])),
                number(r["aic"]),
            ]
            for _, r in fit.iterrows()
        ]
        blocks.append(Table(["rule", "kind", "equation", "E", "k", "AIC"], rows))
    if data is None:
        blocks.append(Note(rundir.missing_note(rundir.DATA_FIT)))
    if figs and "data_fit" in figs:
        blocks.append(figs["data_fit"])
    files = [f for f, df in ((rundir.FIT, fit), (rundir.DATA_FIT, data)) if df is not None]
    latex = "LaTeX: `tables/fit.tex`; " if fit is not None else ""
    blocks.append(Para(f"{latex}data: {', '.join(code(f) for f in files)}."))
    return blocks


def _default_sem_text(data: pd.DataFrame) -> str:
    """How experiments without a SEM were weighted, from ``data_fit.csv``'s ``sem`` and ``sigma``."""
    missing = data[~np.isfinite(data["sem"].to_numpy(float))]
    if missing.empty:
        return "every experiment has a measured SEM."
    values = sorted(set(missing["sigma"].astype(float)))
    value = f", {number(values[0])}" if len(values) == 1 else ""
    n = len(missing)
    return (f"the {n} experiment{'s' if n != 1 else ''} without a SEM {'are' if n != 1 else 'is'} weighted by the "
            f"task's default SEM{value} (column `sigma` of `data_fit.csv`).")


def _fit_choice(fit: pd.DataFrame, equations: pd.DataFrame | None) -> list[Block]:
    """Which model the AIC selects, how the best published fit compares, and a note when
    the run's selected equation is another one."""
    sel = fit[fit["selected"]]
    if sel.empty:
        return [Note("`fit.csv` has no equation with a finite AIC, so none is selected.")]
    row = sel.iloc[0]
    text = (f"Akaike's criterion selects **{row['rule']}** (E = {number(row['loss'])}, k = "
            f"{int(row['free_parameters'])}, AIC = {number(row['aic'])})")
    published = fit[(fit["kind"] == "published") & fit["aic"].notna()]
    if len(published):
        best = published.iloc[0]  # fit is sorted by AIC
        delta = float(best["aic"]) - float(row["aic"])
        text += (f"; the best published fit, {code(best['rule'])}, has AIC = {number(best['aic'])} "
                 f"(ΔAIC = {'+' if delta >= 0 else '−'}{number(abs(delta))}"
                 f"{', lower than the selected equation' if delta < 0 else ''})")
    blocks: list[Block] = [Para(text + ".")]
    if equations is not None:
        pick = f"eq{rundir.selected_row(equations)['id']}"
        if pick != row["rule"]:
            blocks.append(Note(f"The run's selected equation ({code(pick)}, section Selected equation) is not the "
                               f"equation of least AIC in `fit.csv` ({code(row['rule'])}): `fit.csv` may be stale; "
                               f"{regenerate(rundir.FIT)}."))
    return blocks


def data_fit_caption(data: pd.DataFrame | None) -> str:
    """Caption of the fit-to-data figure (``data_fit.csv``): which panels it has, what is drawn."""
    if data is None:
        return ""
    from .figures import MAX_PUBLISHED, pairing_axis, published_columns, published_label

    lag = np.isfinite(data["lag_ms"].to_numpy(float))
    published = published_columns(data)[:MAX_PUBLISHED]
    models = "the selected equation" if "dw_selected" in data else ""
    if published:
        names = ", ".join(published_label(c, published) for c in published)
        pub = f"the published fit{'s' if len(published) > 1 else ''} ({names})"
        models = f"{models} and {pub}" if models else pub
    parts = []
    if lag.any():
        by_freq = pairing_axis(data[lag]) == "freq_hz"
        against, colour = (("pairing frequency", "lag t_post − t_pre") if by_freq
                           else ("lag t_post − t_pre", "pairing frequency"))
        lines = ("; solid: the selected equation" if "dw_selected" in data else "") + (
            "; thin dashed: the published fits, one dash pattern each" if published else "")
        parts.append(f"{'Left: p' if (~lag).any() else 'P'}airings, Δw against {against}, one colour per "
                     f"{colour}{lines}.")
    if (~lag).any():
        parts.append(f"{'Right: o' if lag.any() else 'O'}ther protocols, one position per experiment; "
                     "markers: the models.")
    open_points = ("; open points: experiments without a SEM, at the task's default"
                   if not np.isfinite(data["sem"].to_numpy(float)).all() else "")
    pg = "; P&G: Pfister & Gerstner 2006's triplet rule at a published parameter set" if published else ""
    return (f"Measured weight change (points; error bars: the SEM the fit used{open_points}) beside "
            f"{models or 'the data alone'}{pg}. " + " ".join(parts))


#: how the report names a task's behaviour metrics (``behaviour.csv``), and the unit of a curve's points
BEHAVIOUR_NAMES = {"rate_hz": "output rate (Hz)", "tuning_correlation": "E/I tuning correlation",
                   "overlap": "subspace overlap", "row_norm": "mean row norm of W", "snr": "SNR"}


def behaviour_section(behaviour: pd.DataFrame | None) -> list[Block]:
    """The task's own measures of each rule (``behaviour.csv``): single numbers as one table
    (a row per rule, a column per metric), each curve as a table over its points (a column
    per rule). Nothing when the task writes none."""
    if behaviour is None or behaviour.empty:
        return []
    blocks: list[Block] = [Heading("Task behaviour")]
    blocks.append(Para("What each rule does on held-out episodes besides its objective: mean and 95 % bootstrap "
                       "interval over episodes (`behaviour.csv`)."))
    rules = list(dict.fromkeys(behaviour["rule"]))
    single = behaviour[behaviour["at"].isna()]
    if len(single):
        metrics = list(dict.fromkeys(single["metric"]))
        rows = []
        for r in rules:
            row = [code(r)]
            for m in metrics:
                hit = single[(single["rule"] == r) & (single["metric"] == m)]
                row.append(f"{number(hit['mean'].iloc[0])} {interval(hit['ci_low'].iloc[0], hit['ci_high'].iloc[0])}"
                           if len(hit) else "")
            rows.append(row)
        blocks.append(Table(["rule", *(BEHAVIOUR_NAMES.get(m, m) for m in metrics)], rows))
    curves = behaviour[behaviour["at"].notna()]
    for m in dict.fromkeys(curves["metric"]):
        c = curves[curves["metric"] == m]
        points = sorted(set(c["at"]))
        rows = []
        for a in points:
            row = [f"{a:g}"]
            for r in rules:
                hit = c[(c["rule"] == r) & (c["at"] == a)]
                row.append(number(hit["mean"].iloc[0]) if len(hit) else "")
            rows.append(row)
        blocks.append(Para(f"{BEHAVIOUR_NAMES.get(m, m)[:1].upper()}{BEHAVIOUR_NAMES.get(m, m)[1:]} during learning "
                           "(mean over episodes):"))
        blocks.append(Table(["at", *(code(r) for r in rules)], rows))
    return blocks


#: The claim of Shervani-Tabar & Rosenbaum 2023 (Nat. Commun. 14:1805) that the verdict of the
#: classification section tests: a meta-learned rule at least this many points (of query
#: accuracy, %) above feedback alignment, and at most this many below backprop (SGD).
CLAIM_ABOVE_FEEDBACK_ALIGNMENT = 5.0
CLAIM_WITHIN_BACKPROP = 2.0


def percent(x: Any) -> str:
    """A fraction as percent with one decimal (``0.6124`` -> ``"61.2"``), ``n/a`` for NaN."""
    x = float(x)
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}"


def accuracy_text(mean: Any, lo: Any, hi: Any) -> str:
    """``"61.2 % [59.3, 62.6]"`` from fractions; the interval left out where it is NaN."""
    text = percent(mean)
    if text == "n/a":
        return text
    text += " %"
    if not (math.isnan(float(lo)) or math.isnan(float(hi))):
        text += f" [{percent(lo)}, {percent(hi)}]"
    return text


def _degrees(x: Any) -> str:
    x = float(x)
    return "n/a" if math.isnan(x) else f"{x:.1f}"


#: Optional columns of ``classification.csv`` -> (header in the report, cell formatter).
_CLASSIFICATION_OPTIONAL = {
    "learning_rate": ("learning rate", number),
    "angle_to_backprop_deg": ("angle (deg)", _degrees),
    "angle_hidden_deg": ("hidden angle (deg)", _degrees),
    "equation": ("equation", lambda t: code(t) if t else ""),
}


def classification_section(classification: pd.DataFrame | None,
                           figs: dict[str, FigureBlock] | None = None) -> list[Block]:
    """Each method's query accuracy on held-out classes (``classification.csv``, ``few_shot``).

    A sentence saying what the numbers are, a table (method, accuracy in percent with its
    95 % t-interval, seeds and, where the file has them, learning rate, angles to backprop's
    update and the rule as text), the ``classification`` figure and, when the file has the
    rows ``equation``, ``feedback_alignment`` and ``backprop``, a verdict on the claim of
    Shervani-Tabar & Rosenbaum 2023 (see :func:`classification_verdict`). Nothing when the
    task writes no such file.

    Args:
      classification: :func:`analysis.rundir.read_classification`'s table, or ``None``.
      figs: the figures written (``classification`` is shown).

    Returns:
      The blocks of the section, or ``[]``.
    """
    if classification is None or classification.empty:
        return []
    df = classification
    blocks: list[Block] = [Heading("Classification")]
    blocks.append(Para("Query accuracy on held-out classes (classes no stage of meta-training saw): mean and 95 % "
                       "t-interval over the seeds, each seed the mean over its episodes; the baselines' learning "
                       "rates were tuned on the training classes. Angle: the mean angle between the method's weight "
                       "update and backprop's at the same weights, over all synapses (hidden angle: the hidden "
                       "layers only); 0° is backprop's direction, 90° orthogonal to it."))
    optional = [c for c in _CLASSIFICATION_OPTIONAL if c in df.columns and has_values(df[c])]
    header = ["method", "accuracy", "seeds", *(_CLASSIFICATION_OPTIONAL[c][0] for c in optional)]
    rows = [
        [code(r["method"]), accuracy_text(r["accuracy_mean"], r["ci_low"], r["ci_high"]), str(int(r["seeds"])),
         *(_CLASSIFICATION_OPTIONAL[c][1](r[c]) for c in optional)]
        for _, r in df.iterrows()
    ]
    blocks.append(Table(header, rows))
    verdict = classification_verdict(df)
    if verdict:
        blocks.append(Para(verdict))
    if figs and "classification" in figs:
        blocks.append(figs["classification"])
    blocks.append(Para("LaTeX: `tables/classification.tex`; data: `classification.csv`."))
    return blocks


def classification_verdict(classification: pd.DataFrame) -> str:
    """How the distilled equation compares with feedback alignment and backprop (SGD), and
    whether that meets the claim of Shervani-Tabar & Rosenbaum 2023: at least
    :data:`CLAIM_ABOVE_FEEDBACK_ALIGNMENT` points above feedback alignment and within
    :data:`CLAIM_WITHIN_BACKPROP` points of backprop. ``""`` unless the table has the rows
    ``equation``, ``feedback_alignment`` and ``backprop``.

    Example: ``"The distilled equation is 9.5 points below feedback alignment and 40.9
    points below backprop (SGD): it does **not** meet the claim ...; it is less than 5
    points above feedback alignment and it is more than 2 points below backprop."``
    """
    acc = dict(zip(classification["method"], classification["accuracy_mean"].astype(float)))
    if not all(m in acc for m in ("equation", "feedback_alignment", "backprop")):
        return ""
    eq, fa, bp = (100 * acc[m] for m in ("equation", "feedback_alignment", "backprop"))
    if any(math.isnan(v) for v in (eq, fa, bp)):
        missing = [m for m, v in (("equation", eq), ("feedback_alignment", fa), ("backprop", bp)) if math.isnan(v)]
        return (f"No verdict on the claim of Shervani-Tabar & Rosenbaum 2023: {', '.join(code(m) for m in missing)} "
                "has no accuracy.")
    above_fa, below_bp = eq - fa, bp - eq

    def side(diff: float, name: str) -> str:
        return f"{abs(diff):.1f} points {'above' if diff >= 0 else 'below'} {name}"

    text = f"The distilled equation is {side(above_fa, 'feedback alignment')} and {side(-below_bp, 'backprop (SGD)')}"
    claim = (f"the claim of Shervani-Tabar & Rosenbaum 2023 (at least {CLAIM_ABOVE_FEEDBACK_ALIGNMENT:g} points above "
             f"feedback alignment and within {CLAIM_WITHIN_BACKPROP:g} points of backprop)")
    short = [*([f"it is less than {CLAIM_ABOVE_FEEDBACK_ALIGNMENT:g} points above feedback alignment"]
               if above_fa < CLAIM_ABOVE_FEEDBACK_ALIGNMENT else []),
             *([f"it is more than {CLAIM_WITHIN_BACKPROP:g} points below backprop"]
               if below_bp > CLAIM_WITHIN_BACKPROP else [])]
    if not short:
        return f"{text}: it meets {claim}."
    return f"{text}: it does **not** meet {claim}; {' and '.join(short)}."


def classification_caption(classification: pd.DataFrame | None, chance: float | None = None) -> str:
    """Caption of the classification figure (``classification.csv``); ``chance``: the chance
    accuracy (a fraction, 1/ways) drawn as a dashed line, or ``None`` where unknown."""
    if classification is None:
        return ""
    line = f"; dashed: chance ({percent(chance)} %, one over the number of classes of an episode)" if chance else ""
    return ("Query accuracy on held-out classes per method (bars: mean over the seeds; error bars: 95 % "
            f"t-interval){line}. Black: the meta-learned rule, blue: the distilled equation, orange: baselines.")


def front_section(equations: pd.DataFrame | None, figs: dict[str, FigureBlock]) -> list[Block]:
    blocks: list[Block] = [Heading("Equation front")]
    if equations is None:
        return blocks + [Note(rundir.missing_note(rundir.EQUATIONS))]
    rows = [
        [
            ("**" + str(r["id"]) + "** (selected)") if r["selected"] else str(r["id"]),
            code(r["backend"]),
            str(int(r["complexity"])),
            number(r["loss"]),
            number(r["score"]),
            code(r["equation"]),
        ]
        for _, r in equations.iterrows()
    ]
    header = ["id", "backend", "complexity", "loss", "score", "equation"]
    if "synapse" in equations.columns:  # one front per synapse type, in one table
        header.insert(1, "synapse")
        for row, t in zip(rows, equations["synapse"]):
            row.insert(1, code(t))
    blocks.append(Table(header, rows))
    if "pareto" in figs:
        blocks.append(figs["pareto"])
    blocks.append(Para("LaTeX: `tables/equations.tex`."))
    return blocks


def verification_section(verification: pd.DataFrame | None, figs: dict[str, FigureBlock]) -> list[Block]:
    blocks: list[Block] = [Heading("Verification")]
    if verification is None:
        return blocks + [Note(rundir.missing_note(rundir.VERIFICATION))]
    has_eq = "equation" in verification.columns and (verification["equation"] != "").any()
    header = ["rule", "kind", *(["equation"] if has_eq else []), "objective (mean)",
              "confidence interval", "relative to neural"]
    rows = [
        [
            code(r["rule"]),
            r["kind"],
            *([code(r["equation"]) if r["equation"] else ""] if has_eq else []),
            number(r["objective_mean"]),
            interval(r["objective_ci_low"], r["objective_ci_high"]),
            number(r["relative_to_neural"]),
        ]
        for _, r in verification.iterrows()
    ]
    blocks.append(Para("Meta-objective on held-out episodes, higher is better."))
    blocks.append(Table(header, rows))
    if "verification" in figs:
        blocks.append(figs["verification"])
    if "trajectories" in figs:
        blocks.append(figs["trajectories"])
    blocks.append(Para("LaTeX: `tables/verification.tex`."))
    return blocks


def comparison_section(
    comparison: pd.DataFrame | None,
    equations: pd.DataFrame | None,
    figs: dict[str, FigureBlock],
    notes: Sequence[str] = (),
) -> list[Block]:
    blocks: list[Block] = [Heading("Comparison with canonical rules")]
    if comparison is None or comparison.empty:
        if notes:
            return blocks + [Note("The comparison could not run. " + " ".join(notes))]
        if equations is None:
            return blocks + [Note(rundir.missing_note(rundir.EQUATIONS))]
        return blocks + [Note(rundir.missing_note(rundir.COMPARISON))]
    best = comparison[comparison["closest"]]
    row = best.iloc[0] if len(best) else comparison.iloc[0]
    behaviour = {str(b) for b in comparison.get("behaviour", pd.Series(dtype=str)) if b}
    blocks.append(
        Para(
            f"Closest canonical rule: **{row['canonical']}** (coefficient distance "
            f"{number(row['coef_distance'])}, term Jaccard {number(row['term_jaccard'])}, behaviour distance "
            f"{number(row['behaviour_distance'])})."
        )
    )
    method = [
        "Each rule is expanded into terms and its coefficients are divided by its largest absolute "
        "coefficient; the coefficient distance is the L2 distance of these vectors over the union of "
        "terms, the Jaccard index the overlap of the term sets."
    ]
    from .checks.oja import OJA_PC1, OjaCheck
    from .checks.window import STDP_WINDOW

    if STDP_WINDOW in behaviour:
        method.append("Behaviour distance: root-mean-square difference of the STDP pairing windows "
                      "(single pairings and 5 pairings at 20 Hz), each divided by its largest |dw|.")
    has_freq = "frequency_distance" in comparison and pd.to_numeric(
        comparison["frequency_distance"], errors="coerce").notna().any()
    if has_freq:
        method.append(f"Frequency distance: root-mean-square difference of the weight change against pairing "
                      f"frequency ({frequency_protocol_text()}), each rule's values divided by its largest |dw|.")
    if OJA_PC1 in behaviour:
        check = OjaCheck()
        method.append(f"Behaviour distance (Oja check: one linear neuron, {check.steps} steps of Gaussian inputs "
                      f"with covariance eigenvalues {', '.join(f'{v:g}' for v in check.eigenvalues)}): "
                      "difference in alignment with the first principal component and in relative weight norm.")
    blocks.append(Para(" ".join(method)))
    header = ["canonical rule", "dw (published parameters)", "shared terms", "term Jaccard",
              "coefficient distance", "behaviour distance", *(["frequency distance"] if has_freq else []), "closest"]
    rows = [
        [
            code(r["canonical"]),
            code(r.get("canonical_equation", "")),
            ", ".join(code(t) for t in str(r.get("shared_terms", "")).split("; ") if t) or "none",
            number(r["term_jaccard"]),
            number(r["coef_distance"]),
            number(r["behaviour_distance"]),
            *([number(r["frequency_distance"])] if has_freq else []),
            "**yes**" if r["closest"] else "",
        ]
        for _, r in comparison.iterrows()
    ]
    eq_text = str(row.get("equation", "") or "")
    if eq_text:
        eq_id = str(row.get("equation_id", "") or "")
        blocks.append(Para(f"Selected equation{f' {code(eq_id)}' if eq_id else ''}: {code('dw = ' + eq_text)}."))
    blocks.append(Table(header, rows))
    if OJA_PC1 in behaviour and "pc1_alignment_canonical" in comparison:
        first = comparison.iloc[0]
        orows = [["selected equation", number(first["pc1_alignment_equation"]), number(first["weight_norm_equation"])]]
        orows += [[code(r["canonical"]), number(r["pc1_alignment_canonical"]), number(r["weight_norm_canonical"])]
                  for _, r in comparison.iterrows()]
        blocks.append(Para("Oja check, after the last step (Oja's rule: alignment 1, norm 1):"))
        blocks.append(Table(["rule", "alignment with PC1", "weight norm"], orows))
    extra = list(notes) + [n for n in dict.fromkeys(comparison.get("behaviour_note", pd.Series(dtype=str)))
                           if n and n != "weights diverged" and n not in notes]
    for note in extra:
        blocks.append(Note(note))
    for name in ("comparison", "comparison_window", "comparison_frequency"):
        if name in figs:
            blocks.append(figs[name])
    data = [rundir.COMPARISON] + [f for name, f in (("comparison_window", rundir.COMPARISON_WINDOWS),
                                                    ("comparison_frequency", rundir.COMPARISON_FREQUENCY))
                                  if name in figs]
    blocks.append(Para(f"LaTeX: `tables/comparison.tex`; data: {', '.join(code(f) for f in data)}."))
    return blocks


def frequency_protocol_text() -> str:
    """The pairing-frequency protocol (:class:`analysis.checks.frequency.FrequencyCheck`) in words."""
    from .checks.frequency import FrequencyCheck

    p = FrequencyCheck()
    freqs = ", ".join(f"{f:g}" for f in p.freqs_hz)
    lags = " and ".join(f"{lag:+g}" for lag in p.lags_ms)
    return (f"{p.pairs} pairings at {freqs} Hz, t_post - t_pre = {lags} ms, "
            f"simulation step {p.dt:g} ms; Sjöström et al. 2001")


def frequency_caption(run_dir: Path) -> str:
    """Caption of the pairing-frequency figure, naming the rules ``comparison_frequency.csv`` holds."""
    from discover.io import RunDirError

    try:
        df = rundir.read_comparison_frequency(run_dir)
    except RunDirError:
        df = None
    names = {"equation": "the selected equation", "neural": "the neural rule", "teacher": "the teacher"}
    rules = list(dict.fromkeys(df["rule"])) if df is not None else []
    listed = [names[r] for r in names if r in rules]
    canonical = [r for r in rules if r not in names]
    if canonical:
        names_text = ", ".join(canonical[:-1]) + " and " + canonical[-1] if len(canonical) > 1 else canonical[0]
        listed.append(f"the canonical rule{'s' if len(canonical) > 1 else ''} {names_text}")
    who = (", ".join(listed[:-1]) + " and " + listed[-1]) if len(listed) > 1 else "".join(listed) or "each rule"
    return (f"Weight change against pairing frequency ({frequency_protocol_text()}) for {who} (one colour per "
            "rule); solid: pre before post (t_post - t_pre > 0), dashed: post before pre (< 0). Left: Δw in units "
            "of w_max (weight started at 1, unclipped); right: each rule's Δw divided by its largest |Δw|, the "
            "curves the frequency distance compares.")


def manifest_section(manifest: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading("Manifest")]
    order = ["package_version", "git_commit", "jax_version", "device_count", "seeds", "created"]
    keys = [k for k in order if k in manifest]
    keys += [k for k in manifest if k not in order and k != "timings_s"]
    rows = [[k, code(manifest[k] if not isinstance(manifest[k], (list, dict)) else _compact(manifest[k]))]
            for k in keys]
    if rows:
        blocks.append(Table(["field", "value"], rows))
    timings = manifest.get("timings_s")
    if isinstance(timings, dict) and timings:
        trows = [[code(stage), seconds(s)] for stage, s in timings.items()]
        try:
            total = sum(float(s) for s in timings.values())
            trows.append(["**total**", seconds(total)])
        except (TypeError, ValueError):
            pass
        blocks.append(Table(["stage", "time"], trows))
    else:
        blocks.append(Note("`manifest.json` records no timings (`timings_s`)."))
    return blocks


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), default=str)


def trajectories_caption(trajectories: dict[str, Any] | None) -> str:
    """Caption of the trajectories figure, which differs for ``oja_pca`` (``pc1`` present)."""
    if trajectories is None:
        return ""
    unit = trajectories.get("time_unit", "steps")
    if "pc1" in trajectories:
        return (f"First held-out episode: alignment cos²(w, PC1) and norm |w| of the weight vector against time "
                f"({unit}), neural rule dashed, selected equation dotted; thin lines: Oja's fixed point (1).")
    n = len(trajectories["W0"])
    teacher = "teacher solid, " if "W_teacher" in trajectories else ""
    return (f"First held-out episode: weights of {n} synapse{'s' if n != 1 else ''} (one colour each) against "
            f"time ({unit}); {teacher}neural rule dashed, selected equation dotted.")


__all__ = ["fit_section", "task_section", "meta_section", "selected_section", "data_fit_section", "front_section",
           "verification_section", "behaviour_section", "classification_section", "classification_verdict",
           "classification_caption", "comparison_section", "manifest_section", "trajectories_caption",
           "frequency_caption", "data_fit_caption"]


def fit_section(manifest: dict) -> list[Block]:
    """The poor-fit warning that opens the report of a rule that did not fit its target
    (``manifest.json`` ``fit``, written by discover); nothing when the fit is good."""
    from discover.stage import fit_warning

    msg = fit_warning(manifest.get("fit") if isinstance(manifest.get("fit"), dict) else None)
    if not msg:
        return []
    return [Note("**Warning: poor fit.** " + msg)]
