"""Parsing the cells of run-directory tables: booleans, numbers, coefficient JSON.

A column that does not parse raises :class:`discover.io.RunDirError` naming the file,
the row and the command that rewrites the file (:mod:`analysis.contract`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .contract import regenerate, run_dir_error


def parse_bool(value: Any) -> bool | None:
    """``True``/``False`` from a cell (``True``, ``"false"``, ``1``, ``"yes"``...), else ``None``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        if value in (0, 1):
            return bool(value)
        return None
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    return None


def parse_coefficients(text: Any) -> dict[str, dict[str, float]]:
    """Parse one cell of the ``coefficients`` column of ``equations.csv``.

    The cell is a JSON object mapping a term (``"x*y"``) to either a number or an object
    ``{"value": ..., "ci_low": ..., "ci_high": ...}`` (bootstrap confidence interval).
    After a refit on the task (``[distill] refine_steps``), ``value`` and its interval
    are the refitted ones and the object also holds the regression's ``fit_value``,
    ``fit_ci_low`` and ``fit_ci_high``.

    Args:
      text: the cell; empty or NaN means "no coefficients recorded".

    Returns:
      ``{term: {"value": v, "ci_low": lo, "ci_high": hi}}`` with NaN where a bound is
      absent, plus ``fit_value``, ``fit_ci_low``, ``fit_ci_high`` (NaN where a bound is
      absent) for terms with a non-null ``fit_value``; ``{}`` for an empty cell.

    Raises:
      ValueError: if the cell is not a JSON object of that shape.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)) or str(text).strip() == "":
        return {}
    raw = json.loads(str(text))
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    out: dict[str, dict[str, float]] = {}
    for term, v in raw.items():
        if isinstance(v, Mapping):
            if "value" not in v:
                raise ValueError(f"term {term!r}: object without a 'value' key")
            out[str(term)] = {
                "value": float(v["value"]),
                "ci_low": float(v["ci_low"]) if v.get("ci_low") is not None else math.nan,
                "ci_high": float(v["ci_high"]) if v.get("ci_high") is not None else math.nan,
            }
            if v.get("fit_value") is not None:
                out[str(term)].update({
                    "fit_value": float(v["fit_value"]),
                    "fit_ci_low": float(v["fit_ci_low"]) if v.get("fit_ci_low") is not None else math.nan,
                    "fit_ci_high": float(v["fit_ci_high"]) if v.get("fit_ci_high") is not None else math.nan,
                })
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[str(term)] = {"value": float(v), "ci_low": math.nan, "ci_high": math.nan}
        else:
            raise ValueError(f"term {term!r}: expected a number or an object, got {v!r}")
    return out


def numeric_column(df: pd.DataFrame, col: str, path: Path, name: str) -> None:
    """Parse ``df[col]`` as floats in place (empty cells -> NaN), or raise naming the row."""
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna() & df[col].notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise run_dir_error(
            f"{path}: column {col!r} must hold numbers, but row {row + 1} holds "
            f"{df[col].iloc[row]!r}; {regenerate(name)}"
        )
    df[col] = values.astype(float)


def bool_column(df: pd.DataFrame, col: str, path: Path, name: str) -> None:
    """Parse ``df[col]`` as booleans in place, or raise naming the row and the fix."""
    values = []
    for i, v in enumerate(df[col]):
        b = parse_bool(v)
        if b is None:
            raise run_dir_error(
                f"{path}: column '{col}' must hold True or False, but row {i + 1} holds "
                f"{v!r}; {regenerate(name)}"
            )
        values.append(b)
    df[col] = pd.Series(values, index=df.index, dtype=bool)


def text_column(df: pd.DataFrame, col: str) -> None:
    """``df[col]`` as strings in place, empty cells ``""`` (an all-empty column is read as NaN)."""
    df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)


def has_values(column: pd.Series) -> bool:
    """Whether a column holds any value: a number that is not NaN, or text that is not blank."""
    if column.dtype == object:
        return bool((column.dropna().astype(str).str.strip() != "").any())
    return bool(column.notna().any())


def id_text(v: Any) -> str:
    """An equation id as text (``3.0`` -> ``"3"``, NaN -> ``""``)."""
    if isinstance(v, float):
        return "" if math.isnan(v) else (str(int(v)) if v.is_integer() else str(v))
    return str(v)
