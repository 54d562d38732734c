r"""Stage 3 entry point: figures, tables, ``report.md`` and ``report.html`` of a run.

:func:`run` reads a run directory (DESIGN.md section 5), compares its selected
equation with the canonical rules (``comparison.csv``, :mod:`analysis.compare`), writes
``figures/``, ``tables/`` and two reports with the same content: ``report.md`` (figures linked,
equations as ``$$...$$`` LaTeX) and ``report.html``, one self-contained file (CSS
inline, figures embedded as base64 PNG, the selected equation typeset to an image with
matplotlib's mathtext, LaTeX source and plain text beside it; no internet needed).

The report is built once as a list of blocks (heading, paragraph, note, math, table,
figure, code) and printed by two small renderers, so the two files cannot drift apart.
Inputs that are absent give a note naming the command that writes them; a malformed
input raises :class:`analysis.rundir.RunDirectoryError` (a ``ValueError``).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import compare, figures, rundir, tables

# --------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str  # inline markup: `code` and **bold** only


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Math:
    latex: str  # display math, without delimiters
    plain: str = ""  # the same equation as plain text
    image: bytes | None = None  # PNG of the typeset equation (HTML only)


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]  # cells in inline markup


@dataclass(frozen=True)
class FigureBlock:
    path: str  # relative to the run directory
    caption: str
    png: bytes = field(repr=False, default=b"")


@dataclass(frozen=True)
class Code:
    text: str
    language: str = ""
    summary: str = ""  # HTML: a collapsed <details> with this summary


Block = Heading | Para | Note | Math | Table | FigureBlock | Code

# --------------------------------------------------------------------------- formatting


def _num(x: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant figures for Markdown/HTML (``n/a`` for NaN)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x) or x == 0:
        return str(x) if x else "0"
    text = f"{x:#.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa.rstrip('.')}e{int(exponent)}"
    return text.rstrip(".")


def _code(text: Any) -> str:
    text = str(text)
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


def _ci(lo: Any, hi: Any) -> str:
    lo, hi = float(lo), float(hi)
    if math.isnan(lo) or math.isnan(hi):
        return "n/a"
    return f"[{_num(lo)}, {_num(hi)}]"


def _seconds(s: Any) -> str:
    try:
        s = float(s)
    except (TypeError, ValueError):
        return str(s)
    if math.isnan(s):
        return "n/a"
    if s >= 120:
        return f"{s:.0f} s ({s / 60:.1f} min)"
    return f"{s:.3g} s"


def _equation_image(latex: str) -> bytes | None:
    """PNG of ``$\\Delta w = latex$`` typeset by mathtext, or None if it cannot parse."""
    from . import style

    text = rf"$\Delta w = {latex}$"
    if not latex or not style.mathtext_ok(text):
        return None
    import matplotlib
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties

    buf = io.BytesIO()
    with matplotlib.rc_context(style.RC):
        mathtext.math_to_image(text, buf, prop=FontProperties(size=14), dpi=150, format="png")
    return buf.getvalue()


# --------------------------------------------------------------------------- sections


def _task_section(config: dict[str, Any], config_text: str) -> list[Block]:
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
            rows.append([label, _code(value[key])])
    if rows:
        blocks.append(Table(["setting", "value"], rows))
    else:
        blocks.append(Note("`config.toml` names no task, network or rule; its full text follows."))
    blocks.append(Code(config_text.rstrip("\n"), "toml", "config.toml (as run)"))
    return blocks


def _meta_section(history: pd.DataFrame | None, figs: dict[str, FigureBlock]) -> list[Block]:
    blocks: list[Block] = [Heading("Meta-training")]
    if history is None:
        return blocks + [Note(rundir.missing_note(rundir.META_HISTORY))]
    if history.empty:
        return blocks + [Note("`meta_history.csv` has no rows: meta-training recorded no step.")]
    last = history.iloc[-1]
    facts = [
        f"{len(history)} recorded steps (last step {int(last['step'])})",
        f"final meta-loss {_num(last['meta_loss'])}",
    ]
    val = history.dropna(subset=["val_loss"])
    if len(val):
        best = val.loc[val["val_loss"].idxmin()]
        last_val = val.iloc[-1]
        facts.append(f"final validation loss {_num(last_val['val_loss'])} (step {int(last_val['step'])})")
        facts.append(f"best validation loss {_num(best['val_loss'])} (step {int(best['step'])})")
    else:
        facts.append("no validation loss recorded")
    wall = history["wall_s"].dropna()
    if len(wall):
        facts.append(f"wall time {_seconds(wall.iloc[-1])}")
    blocks.append(Para("; ".join(facts) + "."))
    if "meta_loss" in figs:
        blocks.append(figs["meta_loss"])
    return blocks


def _selected_section(equations: pd.DataFrame | None, figs: dict[str, FigureBlock] | None = None) -> list[Block]:
    blocks: list[Block] = [Heading("Selected equation")]
    if equations is None:
        return blocks + [Note(rundir.missing_note(rundir.EQUATIONS))]
    row = equations[equations["selected"]].iloc[0]
    latex = tables.equation_latex(row)
    blocks.append(
        Para(
            f"Equation {_code(row['id'])} (backend {_code(row['backend'])}, complexity "
            f"{int(row['complexity'])}, loss {_num(row['loss'])}, score {_num(row['score'])}):"
        )
    )
    blocks.append(Math(rf"\Delta w = {latex}", row["equation"], _equation_image(latex)))
    coefs = row.get("coefficients_parsed") if "coefficients_parsed" in equations else None
    if coefs:
        has_ci = any(not math.isnan(c["ci_low"]) for c in coefs.values())
        header = ["term", "coefficient", *(["confidence interval"] if has_ci else [])]
        rows = [
            [_code(term), _num(c["value"]), *([_ci(c["ci_low"], c["ci_high"])] if has_ci else [])]
            for term, c in coefs.items()
        ]
        blocks.append(Table(header, rows))
        if not has_ci:
            blocks.append(Note("No confidence intervals were recorded for the coefficients."))
    if figs and "coefficients" in figs:
        blocks.append(figs["coefficients"])
    return blocks


def _front_section(equations: pd.DataFrame | None, figs: dict[str, FigureBlock]) -> list[Block]:
    blocks: list[Block] = [Heading("Equation front")]
    if equations is None:
        return blocks + [Note(rundir.missing_note(rundir.EQUATIONS))]
    rows = [
        [
            ("**" + str(r["id"]) + "** (selected)") if r["selected"] else str(r["id"]),
            _code(r["backend"]),
            str(int(r["complexity"])),
            _num(r["loss"]),
            _num(r["score"]),
            _code(r["equation"]),
        ]
        for _, r in equations.iterrows()
    ]
    blocks.append(Table(["id", "backend", "complexity", "loss", "score", "equation"], rows))
    if "pareto" in figs:
        blocks.append(figs["pareto"])
    blocks.append(Para("LaTeX: `tables/equations.tex`."))
    return blocks


def _verification_section(verification: pd.DataFrame | None, figs: dict[str, FigureBlock]) -> list[Block]:
    blocks: list[Block] = [Heading("Verification")]
    if verification is None:
        return blocks + [Note(rundir.missing_note(rundir.VERIFICATION))]
    has_eq = "equation" in verification.columns and (verification["equation"] != "").any()
    header = ["rule", "kind", *(["equation"] if has_eq else []), "objective (mean)",
              "confidence interval", "relative to neural"]
    rows = [
        [
            _code(r["rule"]),
            r["kind"],
            *([_code(r["equation"]) if r["equation"] else ""] if has_eq else []),
            _num(r["objective_mean"]),
            _ci(r["objective_ci_low"], r["objective_ci_high"]),
            _num(r["relative_to_neural"]),
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


def _comparison_section(
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
            f"{_num(row['coef_distance'])}, term Jaccard {_num(row['term_jaccard'])}, behaviour distance "
            f"{_num(row['behaviour_distance'])})."
        )
    )
    method = [
        "Each rule is expanded into terms and its coefficients are divided by its largest absolute "
        "coefficient; the coefficient distance is the L2 distance of these vectors over the union of "
        "terms, the Jaccard index the overlap of the term sets."
    ]
    if compare.STDP_WINDOW in behaviour:
        method.append("Behaviour distance: root-mean-square difference of the STDP pairing windows "
                      "(single pairings and 5 pairings at 20 Hz), each divided by its largest |dw|.")
    has_freq = "frequency_distance" in comparison and pd.to_numeric(
        comparison["frequency_distance"], errors="coerce").notna().any()
    if has_freq:
        method.append(f"Frequency distance: root-mean-square difference of the weight change against pairing "
                      f"frequency ({_frequency_protocol_text()}), each rule's values divided by its largest |dw|.")
    if compare.OJA_PC1 in behaviour:
        check = compare.OjaCheck()
        method.append(f"Behaviour distance (Oja check: one linear neuron, {check.steps} steps of Gaussian inputs "
                      f"with covariance eigenvalues {', '.join(f'{v:g}' for v in check.eigenvalues)}): "
                      "difference in alignment with the first principal component and in relative weight norm.")
    blocks.append(Para(" ".join(method)))
    header = ["canonical rule", "dw (published parameters)", "shared terms", "term Jaccard",
              "coefficient distance", "behaviour distance", *(["frequency distance"] if has_freq else []), "closest"]
    rows = [
        [
            _code(r["canonical"]),
            _code(r.get("canonical_equation", "")),
            ", ".join(_code(t) for t in str(r.get("shared_terms", "")).split("; ") if t) or "none",
            _num(r["term_jaccard"]),
            _num(r["coef_distance"]),
            _num(r["behaviour_distance"]),
            *([_num(r["frequency_distance"])] if has_freq else []),
            "**yes**" if r["closest"] else "",
        ]
        for _, r in comparison.iterrows()
    ]
    eq_text = str(row.get("equation", "") or "")
    if eq_text:
        eq_id = str(row.get("equation_id", "") or "")
        blocks.append(Para(f"Selected equation{f' {_code(eq_id)}' if eq_id else ''}: {_code('dw = ' + eq_text)}."))
    blocks.append(Table(header, rows))
    if compare.OJA_PC1 in behaviour and "pc1_alignment_canonical" in comparison:
        first = comparison.iloc[0]
        orows = [["selected equation", _num(first["pc1_alignment_equation"]), _num(first["weight_norm_equation"])]]
        orows += [[_code(r["canonical"]), _num(r["pc1_alignment_canonical"]), _num(r["weight_norm_canonical"])]
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
    blocks.append(Para(f"LaTeX: `tables/comparison.tex`; data: {', '.join(_code(f) for f in data)}."))
    return blocks


def _frequency_protocol_text() -> str:
    """The pairing-frequency protocol of :mod:`analysis.compare` in words."""
    p = compare.FREQUENCY_PROTOCOL
    freqs = ", ".join(f"{f:g}" for f in p.freqs_hz)
    lags = " and ".join(f"{lag:+g}" for lag in p.lags_ms)
    return (f"{p.pairs} pairings at {freqs} Hz, t_post - t_pre = {lags} ms, "
            f"simulation step {p.dt:g} ms; Sjöström et al. 2001")


def _frequency_caption(run_dir: Path) -> str:
    """Caption of the pairing-frequency figure, naming the rules ``comparison_frequency.csv`` holds."""
    try:
        df = rundir.read_comparison_frequency(run_dir)
    except rundir.RunDirectoryError:
        df = None
    names = {"equation": "the selected equation", "neural": "the neural rule", "teacher": "the teacher"}
    rules = list(dict.fromkeys(df["rule"])) if df is not None else []
    listed = [names[r] for r in names if r in rules]
    canonical = [r for r in rules if r not in names]
    if canonical:
        names_text = ", ".join(canonical[:-1]) + " and " + canonical[-1] if len(canonical) > 1 else canonical[0]
        listed.append(f"the canonical rule{'s' if len(canonical) > 1 else ''} {names_text}")
    who = (", ".join(listed[:-1]) + " and " + listed[-1]) if len(listed) > 1 else "".join(listed) or "each rule"
    return (f"Weight change against pairing frequency ({_frequency_protocol_text()}) for {who} (one colour per "
            "rule); solid: pre before post (t_post - t_pre > 0), dashed: post before pre (< 0). Left: Δw in units "
            "of w_max (weight started at 1, unclipped); right: each rule's Δw divided by its largest |Δw|, the "
            "curves the frequency distance compares.")


def _manifest_section(manifest: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading("Manifest")]
    order = ["package_version", "git_commit", "jax_version", "device_count", "seeds", "created"]
    keys = [k for k in order if k in manifest]
    keys += [k for k in manifest if k not in order and k != "timings_s"]
    rows = [[k, _code(manifest[k] if not isinstance(manifest[k], (list, dict)) else _compact(manifest[k]))]
            for k in keys]
    if rows:
        blocks.append(Table(["field", "value"], rows))
    timings = manifest.get("timings_s")
    if isinstance(timings, dict) and timings:
        trows = [[_code(stage), _seconds(s)] for stage, s in timings.items()]
        try:
            total = sum(float(s) for s in timings.values())
            trows.append(["**total**", _seconds(total)])
        except (TypeError, ValueError):
            pass
        blocks.append(Table(["stage", "time"], trows))
    else:
        blocks.append(Note("`manifest.json` records no timings (`timings_s`)."))
    return blocks


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, separators=(", ", ": "), default=str)


def _trajectories_caption(trajectories: dict[str, Any] | None) -> str:
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


def build_report(run_dir: str | os.PathLike, figure_paths: Iterable[Path] = (),
                 comparison_notes: Sequence[str] = ()) -> list[Block]:
    """The report of a run directory as a list of blocks (see :func:`to_markdown`).

    Args:
      run_dir: the run directory.
      figure_paths: figures already written (their PNGs are linked and embedded).
      comparison_notes: notes of the comparison with canonical rules (why it could not
        run, what it skipped), shown in its section.

    Returns:
      The blocks, in the order of the report's sections.

    Raises:
      RunDirectoryError: if ``config.toml`` or ``manifest.json`` is missing or an input
        is malformed.
    """
    run_dir = Path(run_dir)
    config, config_text = rundir.read_config(run_dir)
    name = run_dir.resolve().name
    manifest = rundir.read_manifest(run_dir)
    history = rundir.read_meta_history(run_dir)
    equations = rundir.read_equations(run_dir)
    verification = rundir.read_verification(run_dir)
    trajectories = rundir.read_trajectories(run_dir)
    captions = {
        "meta_loss": "Meta-loss and validation loss against meta-training step.",
        "pareto": "Equation front: fit loss against complexity; the star marks the selected equation.",
        "verification": "Meta-objective per rule with confidence intervals; dashed: the neural rule.",
        "comparison": "Coefficients of the selected equation and of the closest canonical rule, each divided "
                      "by its largest absolute coefficient.",
        "comparison_window": "STDP pairing windows of the selected equation (solid, dots), the neural rule "
                             "(solid), the teacher (wide light band, where there is one) and the canonical rules "
                             "(dashed), each divided by its largest |dw|.",
        "comparison_frequency": _frequency_caption(run_dir),
        "coefficients": "Coefficients of the selected equation with 95 % confidence intervals (bootstrap over "
                        "episodes); after a refit on the task, open squares: the regression on the neural rule's dw.",
        "trajectories": _trajectories_caption(trajectories),
    }
    figs = {}
    for p in figure_paths:
        p = Path(p)
        if p.suffix == ".png" and p.stem in captions:
            figs[p.stem] = FigureBlock(p.relative_to(run_dir).as_posix(), captions[p.stem], p.read_bytes())
    title = config.get("task", {}).get("name") if isinstance(config.get("task"), dict) else None
    blocks: list[Block] = [Heading(f"Report: {name}" + (f" ({title})" if title else ""), 1)]
    missing = rundir.missing_inputs(run_dir)
    if missing:
        blocks.append(Note("Partial run. " + " ".join(rundir.missing_note(n) for n in missing)))
    blocks += _task_section(config, config_text)
    blocks += _meta_section(history, figs)
    blocks += _selected_section(equations, figs)
    blocks += _front_section(equations, figs)
    blocks += _verification_section(verification, figs)
    comparison = rundir.read_comparison(run_dir)
    blocks += _comparison_section(comparison, equations, figs, comparison_notes)
    blocks += _manifest_section(manifest)
    return blocks


# --------------------------------------------------------------------------- renderers


def _md_cell(text: str) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block]) -> str:
    """Render blocks as GitHub-flavoured Markdown (math as ``$$...$$``)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Note):
            out.append("> **Note:** " + b.text)
        elif isinstance(b, Math):
            out.append(f"$$\n{b.latex}\n$$")
            if b.plain:
                out.append(f"As text: {_code('dw = ' + b.plain)}")
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.header) + " |",
                     "|" + "|".join("---" for _ in b.header) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, FigureBlock):
            pdf = Path(b.path).with_suffix(".pdf").as_posix()
            out.append(f"![{b.caption}]({b.path})\n\n*{b.caption}* (PDF: `{pdf}`)")
        elif isinstance(b, Code):
            prefix = f"{b.summary}:\n\n" if b.summary else ""
            out.append(f"{prefix}```{b.language}\n{b.text}\n```")
    return "\n\n".join(out) + "\n"


_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _inline_html(text: str) -> str:
    """`code` and **bold** inline markup to HTML, everything else escaped."""
    parts = re.split(r"(``.+?``|`[^`]+`)", str(text))
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append("<code>" + html.escape(part.strip("`")) + "</code>")
        else:
            out.append(_BOLD.sub(r"<strong>\1</strong>", html.escape(part)))
    return "".join(out)


def _b64(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; border-bottom: 2px solid #0072B2; padding-bottom: .3rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
th, td { padding: .25rem .7rem; text-align: left; vertical-align: top; }
thead th { border-top: 2px solid #222; border-bottom: 1px solid #222; }
tbody tr:last-child td { border-bottom: 2px solid #222; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .85rem; }
code { background: #f3f3f3; padding: 0 .2rem; border-radius: 3px; }
pre { background: #f6f6f6; padding: .7rem; overflow-x: auto; }
.note { background: #fff6e0; border-left: 4px solid #E69F00; padding: .4rem .8rem; }
.math { margin: 1rem 0; padding: .6rem 1rem; background: #f7fbff; border-left: 4px solid #0072B2; }
.math img { display: block; max-width: 100%; margin-bottom: .4rem; }
figure { margin: 1rem 0; } figure img { max-width: 100%; }
figcaption { font-size: .85rem; color: #555; }
""".strip()


def to_html(blocks: Sequence[Block], title: str = "Report") -> str:
    """Render blocks as one self-contained HTML page (inline CSS, base64 images)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_inline_html(b.text)}</p>")
        elif isinstance(b, Note):
            out.append(f'<p class="note"><strong>Note:</strong> {_inline_html(b.text)}</p>')
        elif isinstance(b, Math):
            img = (f'<img src="{_b64(b.image)}" alt="{html.escape(b.latex)}">' if b.image else "")
            out.append(
                f'<div class="math">{img}<div>LaTeX: <code>{html.escape(b.latex)}</code></div>'
                + (f"<div>Plain text: <code>dw = {html.escape(b.plain)}</code></div>" if b.plain else "")
                + "</div>"
            )
        elif isinstance(b, Table):
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.header)
            body = "\n".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>"
                             for row in b.rows)
            out.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>")
        elif isinstance(b, FigureBlock):
            pdf = Path(b.path).with_suffix(".pdf").as_posix()
            out.append(
                f'<figure><img src="{_b64(b.png)}" alt="{html.escape(b.caption)}">'
                f"<figcaption>{html.escape(b.caption)} (files: <code>{html.escape(b.path)}</code>, "
                f"<code>{html.escape(pdf)}</code>)</figcaption></figure>"
            )
        elif isinstance(b, Code):
            pre = f"<pre><code>{html.escape(b.text)}</code></pre>"
            if b.summary:
                pre = f"<details><summary>{html.escape(b.summary)}</summary>{pre}</details>"
            out.append(pre)
    body = "\n".join(out)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- entry point


def _run_comparison(run_dir: Path, behaviour: bool) -> list[str]:
    """Write ``comparison.csv`` (:func:`analysis.compare.run`); notes for the report.

    The comparison never stops the report: when it cannot run (no equations, an
    equation it cannot parse, discover or JAX failing) its old outputs are removed, so
    no stale comparison is shown, and the reason becomes a note.
    """
    if not (run_dir / rundir.EQUATIONS).is_file():
        compare.remove_outputs(run_dir)
        return []
    try:
        return list(compare.run(run_dir, behaviour=behaviour).notes)
    except compare.CompareUnavailable as e:
        compare.remove_outputs(run_dir)
        return [str(e)]
    except Exception as e:  # a report must still come out; the note carries the error
        compare.remove_outputs(run_dir)
        return [f"{type(e).__name__}: {e}"]


def run(run_dir: str | os.PathLike, behaviour: bool = True) -> dict[str, Any]:
    """Write the analysis of a run directory: comparison, figures, LaTeX tables, two reports.

    Reads ``config.toml`` and ``manifest.json`` (required) and whichever of
    ``meta_history.csv``, ``equations.csv`` and ``verification.csv`` exist; writes
    ``comparison.csv`` (the selected equation against the canonical rules, see
    :mod:`analysis.compare`), ``figures/*.png|pdf``, ``tables/*.tex``, ``report.md``
    and ``report.html``, every file atomically (temporary file in the same directory,
    then ``os.replace``). A missing optional input gives a note in the report naming the
    command that writes it; a comparison that cannot run gives a note saying why.

    Args:
      run_dir: the run directory.
      behaviour: also run the behaviour-level comparison (simulations; a few seconds).

    Returns:
      The paths written: ``{"figures": [Path, ...], "tables": [Path, ...],
      "report_md": Path, "report_html": Path}``.

    Raises:
      RunDirectoryError: (a ``ValueError``) if the directory, ``config.toml`` or
        ``manifest.json`` is missing, or an input file is malformed; the message names
        the file, the column or field, and the command that regenerates it. Nothing is
        written in that case.

    Example::

      >>> from analysis import report
      >>> paths = report.run("runs/oja")          # doctest: +SKIP
      >>> print(paths["report_html"])             # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    # Read and check every input before writing anything: a bad input loses no old output.
    rundir.read_all(run_dir)
    notes = _run_comparison(run_dir, behaviour)
    figure_paths = figures.write_figures(run_dir)
    table_paths = tables.write_tables(run_dir)
    blocks = build_report(run_dir, figure_paths, notes)
    title = blocks[0].text if blocks and isinstance(blocks[0], Heading) else "Report"
    md = rundir.atomic_write_text(run_dir / "report.md", to_markdown(blocks))
    page = rundir.atomic_write_text(run_dir / "report.html", to_html(blocks, title))
    return {"figures": figure_paths, "tables": table_paths, "report_md": md, "report_html": page}
