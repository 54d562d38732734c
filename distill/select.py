"""Choose one equation from a Pareto front with a named policy (PySR's ``model_selection``)."""

from __future__ import annotations

import pandas as pd

POLICIES = ("accuracy", "score", "best")


def select(df: pd.DataFrame, policy: str = "best"):
    r"""The row label of the equation chosen by ``policy``.

    - ``accuracy``: the lowest loss.
    - ``score``: the highest score (:math:`-\Delta \log L / \Delta C`).
    - ``best``: the highest score among rows with :math:`L \le 1.5 \min L`, as PySR's
      ``model_selection="best"`` (``pysr/sr.py``, since PySR 0.10, PR #177).

    Args:
      df: a front from :func:`distill.front.pareto_front` (needs ``loss`` and ``score``).
      policy: one of :data:`POLICIES`.

    Returns:
      The index label of the chosen row (``df.loc[label]``).

    Raises:
      ValueError: on an unknown policy, or an empty front.

    Example:
      >>> row = df.loc[select(df, "best")]
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown selection policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if len(df) == 0:
        raise ValueError("the Pareto front is empty: no candidate survived; check the samples "
                         "(are they all zero?) or try another backend")
    if policy == "accuracy":
        return df["loss"].idxmin()
    if policy == "score":
        return df["score"].idxmax()
    ok = df[df["loss"] <= 1.5 * df["loss"].min()]
    return ok["score"].idxmax()
