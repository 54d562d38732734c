r"""The STDP pairing window (Bi & Poo 1998): ``dw`` after pre/post pairings at each lag.

Two protocols of :func:`analysis.protocols.pairing_protocol` (:data:`PAIRING_PROTOCOLS`):
single pairings at lags -100..100 ms, and 5 pairings at 20 Hz at lags -20..20 ms, where
triplet rules differ from pair rules. In each protocol a rule's ``dw`` values are divided
by their own largest ``|dw|``; the distance is the root-mean-square difference, averaged
over the protocols (0: same window shapes, 2: opposite; :func:`window_distance`).

References:
  Bi & Poo 1998, J. Neurosci. 18:10464; Song, Miller & Abbott 2000, Nat. Neurosci. 3:919;
  Pfister & Gerstner 2006, J. Neurosci. 26:9673.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..contract import COMPARISON_WINDOWS, REQUIRED_COLUMNS
from .base import CHECKS, Check, equation_rule

#: Columns of ``comparison_windows.csv``.
WINDOW_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS[COMPARISON_WINDOWS]

#: The pairing protocols of the window comparison: (name, pairs, frequency Hz, lags ms).
PAIRING_PROTOCOLS: tuple[tuple[str, int, float, tuple[float, ...]], ...] = (
    ("single pairing", 1, 1.0, tuple(float(x) for x in range(-100, 101, 10))),
    ("5 pairings at 20 Hz", 5, 20.0, tuple(float(x) for x in range(-20, 21, 5))),
)

STDP_WINDOW = "stdp_window"


def windows(rule, params=None, protocols=PAIRING_PROTOCOLS) -> pd.DataFrame:
    """``protocol, dt_ms, dw, dw_normalized`` of ``rule`` in each pairing protocol."""
    from ..protocols import pairing_protocol

    parts = []
    for name, pairs, freq, lags in protocols:
        df = pairing_protocol(rule, params, dt_ms_list=lags, pairs=pairs, freq_hz=freq)
        dw = df["dw"].to_numpy(float)
        scale = float(np.max(np.abs(dw))) if len(dw) else 0.0
        norm = dw / scale if scale > 0 and math.isfinite(scale) else np.where(np.isfinite(dw), 0.0, np.nan)
        parts.append(df.assign(protocol=name, dw_normalized=norm))
    return pd.concat(parts, ignore_index=True)[["protocol", "dt_ms", "dw", "dw_normalized"]]


def window_distance(a: pd.DataFrame, b: pd.DataFrame) -> float:
    r"""Distance of two sets of normalized windows (``protocol, dt_ms, dw_normalized``).

    The root-mean-square difference of ``dw_normalized`` over the lags of each protocol,
    averaged over the protocols (each protocol counts equally, whatever its lag count):

    .. math:: d = \frac{1}{P}\sum_p \Big(\frac{1}{L_p}\sum_{\Delta t}
              (\hat w^a_p(\Delta t) - \hat w^b_p(\Delta t))^2\Big)^{1/2}

    Returns NaN if the lags differ or a value is not finite.
    """
    if len(a) != len(b) or not np.array_equal(a["dt_ms"].to_numpy(float), b["dt_ms"].to_numpy(float)):
        return math.nan
    x, y = a["dw_normalized"].to_numpy(float), b["dw_normalized"].to_numpy(float)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return math.nan
    protocol = a["protocol"].to_numpy()
    return float(np.mean([np.sqrt(np.mean((x[protocol == p] - y[protocol == p]) ** 2))
                          for p in dict.fromkeys(protocol)]))


@CHECKS.register(STDP_WINDOW)
@dataclass(frozen=True)
class WindowCheck(Check):
    """The pairing-window check of spiking rules (module docstring)."""

    name = STDP_WINDOW
    title = "STDP window comparison"
    output = COMPARISON_WINDOWS
    figure = "comparison_window"

    protocols: tuple[tuple[str, int, float, tuple[float, ...]], ...] = PAIRING_PROTOCOLS

    def applies(self, names: set[str], network_kind: str) -> bool:
        return network_kind == "lif"

    def measure_rule(self, rule, params=None) -> pd.DataFrame:
        return windows(rule, params, self.protocols)

    def distance(self, a: pd.DataFrame, b: pd.DataFrame) -> float:
        return window_distance(a, b)

    def frame(self, eq, can: Mapping[str, pd.DataFrame], names: Sequence[str]) -> pd.DataFrame:
        frames = [eq.assign(rule="equation"), *(can[n].assign(rule=n) for n in names)]
        return pd.concat(frames, ignore_index=True)[list(WINDOW_COLUMNS)]


def stdp_behaviour(equation: str, names: Sequence[str], timescales: Mapping[str, float] | None = None
                   ) -> tuple[dict[str, float], pd.DataFrame]:
    """Pairing-window distance between ``equation`` and each canonical rule in ``names``.

    Args:
      equation: the equation text.
      names: canonical rule names (spiking).
      timescales: trace time constants for the equation (the neural rule's); canonical
        rules use their published ones.

    Returns:
      ``({name: distance}, windows)``; ``windows`` has columns ``rule, protocol, dt_ms,
      dw, dw_normalized`` for the equation (``rule == "equation"``) and every rule.
    """
    check = WindowCheck()
    eq = check.measure_rule(equation_rule(equation, timescales))
    can = {n: check.canonical(n) for n in names}
    return {n: check.distance(eq, can[n]) for n in names}, check.frame(eq, can, names)


__all__ = ["WINDOW_COLUMNS", "PAIRING_PROTOCOLS", "STDP_WINDOW", "WindowCheck", "windows", "window_distance",
           "stdp_behaviour"]
