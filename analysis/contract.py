"""The run directory's files as analysis reads them: names, producers, required columns.

DESIGN.md section 5 is the contract; this module is its table. :mod:`analysis.rundir`
checks each file against it and says, when one is missing, which command writes it.
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIG = "config.toml"
MANIFEST = "manifest.json"
META_HISTORY = "meta_history.csv"
EQUATIONS = "equations.csv"
VERIFICATION = "verification.csv"
COMPARISON = "comparison.csv"
COMPARISON_WINDOWS = "comparison_windows.csv"
COMPARISON_FREQUENCY = "comparison_frequency.csv"
TRAJECTORIES = "trajectories.npz"
FIT = "fit.csv"
DATA_FIT = "data_fit.csv"
BEHAVIOUR = "behaviour.csv"
CLASSIFICATION = "classification.csv"

#: The command that (re)writes each file of a run directory.
PRODUCERS: dict[str, str] = {
    CONFIG: "plasticity discover CONFIG --out DIR",
    MANIFEST: "plasticity discover CONFIG --out DIR",
    META_HISTORY: "plasticity discover CONFIG --out DIR",
    EQUATIONS: "plasticity distill DIR",
    VERIFICATION: "plasticity verify DIR",
    COMPARISON: "plasticity report DIR",
    COMPARISON_WINDOWS: "plasticity report DIR",
    COMPARISON_FREQUENCY: "plasticity report DIR",
    TRAJECTORIES: "plasticity verify DIR",
    FIT: "plasticity verify DIR",
    DATA_FIT: "plasticity verify DIR",
    BEHAVIOUR: "plasticity verify DIR",
    CLASSIFICATION: "plasticity verify DIR",
}

#: Columns analysis needs in each CSV (a subset of the contract where unused ones exist).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    META_HISTORY: ("step", "meta_loss", "val_loss", "wall_s"),
    EQUATIONS: ("id", "backend", "complexity", "loss", "score", "equation", "latex", "selected"),
    VERIFICATION: (
        "rule",
        "kind",
        "objective_mean",
        "objective_ci_low",
        "objective_ci_high",
        "relative_to_neural",
    ),
    COMPARISON: ("canonical", "term_jaccard", "coef_distance", "behaviour_distance", "closest"),
    COMPARISON_WINDOWS: ("rule", "protocol", "dt_ms", "dw", "dw_normalized"),
    COMPARISON_FREQUENCY: ("rule", "freq_hz", "lag_ms", "dw"),
    FIT: ("rule", "kind", "equation", "loss", "free_parameters", "chi_square", "aic"),
    DATA_FIT: ("dataset", "protocol", "label", "freq_hz", "lag_ms", "dw", "sem", "sigma"),
    BEHAVIOUR: ("rule", "metric", "at", "mean", "ci_low", "ci_high"),
    CLASSIFICATION: ("method", "accuracy_mean", "ci_low", "ci_high", "seeds"),
}

#: Columns that must hold numbers (empty cells are NaN).
NUMERIC_COLUMNS: dict[str, tuple[str, ...]] = {
    META_HISTORY: ("step", "meta_loss", "val_loss", "wall_s"),
    EQUATIONS: ("complexity", "loss", "score"),
    VERIFICATION: ("objective_mean", "objective_ci_low", "objective_ci_high", "relative_to_neural"),
    COMPARISON: ("term_jaccard", "coef_distance", "behaviour_distance"),
    COMPARISON_WINDOWS: ("dt_ms", "dw", "dw_normalized"),
    COMPARISON_FREQUENCY: ("freq_hz", "lag_ms", "dw"),
    FIT: ("loss", "free_parameters", "chi_square", "aic"),
    DATA_FIT: ("freq_hz", "lag_ms", "dw", "sem", "sigma"),
    BEHAVIOUR: ("at", "mean", "ci_low", "ci_high"),
    CLASSIFICATION: ("accuracy_mean", "ci_low", "ci_high", "seeds"),
}

#: Columns that must not have an empty cell.
NONEMPTY_COLUMNS: dict[str, tuple[str, ...]] = {
    META_HISTORY: ("step",),
    EQUATIONS: ("id", "complexity"),
    VERIFICATION: ("rule",),
    COMPARISON: ("canonical",),
    COMPARISON_WINDOWS: ("rule",),
    COMPARISON_FREQUENCY: ("rule", "freq_hz", "lag_ms"),
    FIT: ("rule", "kind", "free_parameters"),
    DATA_FIT: ("label", "dw", "sigma"),
    BEHAVIOUR: ("rule", "metric"),
    CLASSIFICATION: ("method", "seeds"),
}

#: The kinds of rule a row of ``verification.csv`` may describe.
VERIFICATION_KINDS: tuple[str, ...] = ("neural", "equation", "canonical", "teacher", "published", "baseline",
                                       "equations")

#: The kinds of model a row of ``fit.csv`` may describe: a distilled equation, or a
#: published fit to the same data (fit_protocols: Pfister & Gerstner 2006's parameter sets).
FIT_KINDS: tuple[str, ...] = ("equation", "published")

#: Arrays every ``trajectories.npz`` holds; optional ones are ``W_selected``,
#: ``W_teacher``, ``pc1``, ``time_unit``, ``selected_id``, ``selected_equation``.
TRAJECTORY_ARRAYS: tuple[str, ...] = ("t", "W0", "W_neural", "synapses")

#: Optional numeric columns of ``classification.csv`` (NaN where a method has none: the
#: rules' learning rate, Adam's angles), checked when present.
CLASSIFICATION_OPTIONAL_NUMERIC: tuple[str, ...] = ("learning_rate", "angle_to_backprop_deg", "angle_hidden_deg")


def regenerate(name: str) -> str:
    """``"regenerate it with `COMMAND`"`` for the file ``name``."""
    return f"regenerate it with `{PRODUCERS[name]}`"


def missing_note(name: str) -> str:
    """A one-line note for the report saying that ``name`` is missing and what writes it.

    Args:
      name: a file name of the run directory, e.g. ``"verification.csv"``.

    Returns:
      Text such as ``"`verification.csv` is missing; `plasticity verify DIR` writes it."``
    """
    return f"`{name}` is missing; `{PRODUCERS[name]}` writes it."


def run_dir_error(message: str) -> ValueError:
    """A :class:`discover.io.RunDirError` with ``message`` (discover imported only then)."""
    from discover.io import RunDirError

    return RunDirError(message)


def check_dir(run_dir: str | os.PathLike) -> Path:
    """``run_dir`` as a Path, or a :class:`discover.io.RunDirError` if it is not a directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise run_dir_error(
            f"run directory {str(run_dir)!r} does not exist or is not a directory; "
            "pass the folder that `plasticity discover CONFIG --out DIR` wrote"
        )
    return run_dir
