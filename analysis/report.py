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
input raises :class:`discover.io.RunDirError` (a ``ValueError``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import figures, rundir, sections, tables
from .blocks import Block, FigureBlock, Heading, Note, to_html, to_markdown


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
      RunDirError: if ``config.toml`` or ``manifest.json`` is missing or an input
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
    fit, data_fit = rundir.read_fit(run_dir), rundir.read_data_fit(run_dir)
    classification = rundir.read_classification(run_dir)
    captions = {
        "meta_loss": "Meta-loss and validation loss against meta-training step.",
        "pareto": "Equation front: fit loss against complexity; the star marks the selected equation.",
        "verification": "Meta-objective per rule with confidence intervals; dashed: the neural rule.",
        "comparison": "Coefficients of the selected equation and of the closest canonical rule, each divided "
                      "by its largest absolute coefficient.",
        "comparison_window": "STDP pairing windows of the selected equation (solid, dots), the neural rule "
                             "(solid), the teacher (wide light band, where there is one) and the canonical rules "
                             "(dashed), each divided by its largest |dw|.",
        "comparison_frequency": sections.frequency_caption(run_dir),
        "coefficients": "Coefficients of the selected equation with 95 % confidence intervals (bootstrap over "
                        "episodes); after a refit on the task, open squares: the regression on the neural rule's dw.",
        "trajectories": sections.trajectories_caption(trajectories),
        "data_fit": sections.data_fit_caption(data_fit),
        "classification": sections.classification_caption(classification, figures.chance_accuracy(config)),
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
    blocks += sections.fit_section(manifest)
    blocks += sections.task_section(config, config_text)
    blocks += sections.meta_section(history, figs)
    blocks += sections.selected_section(equations, figs)
    blocks += sections.data_fit_section(fit, data_fit, equations, figs)
    blocks += sections.front_section(equations, figs)
    blocks += sections.verification_section(verification, figs)
    blocks += sections.behaviour_section(rundir.read_behaviour(run_dir))
    blocks += sections.classification_section(classification, figs)
    comparison = rundir.read_comparison(run_dir)
    blocks += sections.comparison_section(comparison, equations, figs, comparison_notes)
    blocks += sections.manifest_section(manifest)
    return blocks


# --------------------------------------------------------------------------- entry point


def _run_comparison(run_dir: Path, behaviour: bool) -> list[str]:
    """Write ``comparison.csv`` (:func:`analysis.compare.run`); notes for the report.

    The comparison never stops the report: when it cannot run (no equations, an
    equation it cannot parse, discover or JAX failing) its old outputs are removed, so
    no stale comparison is shown, and the reason becomes a note.
    """
    if not (run_dir / rundir.EQUATIONS).is_file():
        from .compare import remove_outputs

        remove_outputs(run_dir)
        return []
    from . import compare
    from .checks import simulation_errors

    try:
        return list(compare.run(run_dir, behaviour=behaviour).notes)
    except compare.CompareUnavailable as e:
        compare.remove_outputs(run_dir)
        return [str(e)]
    except simulation_errors() as e:  # what cannot be simulated here: the report still comes out, with a note
        compare.remove_outputs(run_dir)
        return [f"{type(e).__name__}: {e}"]


def run(run_dir: str | os.PathLike, behaviour: bool = True) -> dict[str, Any]:
    """Write the analysis of a run directory: comparison, figures, LaTeX tables, two reports.

    Reads ``config.toml`` and ``manifest.json`` (required) and whichever of
    ``meta_history.csv``, ``equations.csv``, ``verification.csv`` and, for tasks fitted
    to measured data, ``fit.csv`` and ``data_fit.csv``, for tasks that write them,
    ``behaviour.csv`` and ``classification.csv`` exist; writes
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
      RunDirError: (a ``ValueError``) if the directory, ``config.toml`` or
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
    from discover.io import atomic_write_text

    md = atomic_write_text(run_dir / "report.md", to_markdown(blocks))
    page = atomic_write_text(run_dir / "report.html", to_html(blocks, title))
    return {"figures": figure_paths, "tables": table_paths, "report_md": md, "report_html": page}
