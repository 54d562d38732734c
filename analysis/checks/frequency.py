r"""The frequency dependence of STDP (Sjöström, Turrigiano & Nelson 2001).

60 pairings at 1..50 Hz, lags +10 and -10 ms (:class:`FrequencyCheck`,
:func:`analysis.protocols.frequency_protocol`), where pair and triplet rules part ways:
each rule's ``dw`` values (both lags) are divided by their own largest ``|dw|`` and the
distance is the root-mean-square difference (:func:`frequency_distance`); it goes to the
``frequency_distance`` column of ``comparison.csv``, the curves to
``comparison_frequency.csv``.

References:
  Sjöström, Turrigiano & Nelson 2001, Neuron 32:1149; Pfister & Gerstner 2006,
  J. Neurosci. 26:9673.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..contract import COMPARISON_FREQUENCY, REQUIRED_COLUMNS
from .base import CHECKS, Check, equation_rule

#: Columns of ``comparison_frequency.csv``.
FREQUENCY_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS[COMPARISON_FREQUENCY]

PAIRING_FREQUENCY = "pairing_frequency"


def _normalized(dw: np.ndarray) -> np.ndarray:
    scale = float(np.max(np.abs(dw))) if len(dw) else 0.0
    if not math.isfinite(scale):
        return np.full_like(dw, np.nan)
    return dw / scale if scale > 0 else np.zeros_like(dw)


def frequency_distance(a: pd.DataFrame, b: pd.DataFrame) -> float:
    r"""Distance of two frequency curves (``freq_hz, lag_ms, dw``), each normalized by its own max.

    Each rule's ``dw`` values, over all frequencies and lags together, are divided by its
    largest ``|dw|`` (so a learning rate does not count, but the ratio of potentiation at
    +10 ms to depression at -10 ms does); the distance is the root-mean-square difference:

    .. math:: d = \Big(\frac{1}{N}\sum_{f, \Delta t}
              (\hat w^a(f, \Delta t) - \hat w^b(f, \Delta t))^2\Big)^{1/2},
              \qquad \hat w = \Delta w / \max |\Delta w|

    0 for the same curve shapes, at most 2 (opposite curves). Returns NaN if the two tables hold
    different (frequency, lag) points or a value is not finite.
    """
    keys = ["freq_hz", "lag_ms"]
    a = a.sort_values(keys, kind="stable")
    b = b.sort_values(keys, kind="stable")
    if len(a) != len(b) or not np.array_equal(a[keys].to_numpy(float), b[keys].to_numpy(float)):
        return math.nan
    x, y = _normalized(a["dw"].to_numpy(float)), _normalized(b["dw"].to_numpy(float))
    if not (len(x) and np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return math.nan
    return float(np.sqrt(np.mean((x - y) ** 2)))


@CHECKS.register(PAIRING_FREQUENCY)
@dataclass(frozen=True)
class FrequencyCheck(Check):
    """Settings of the pairing-frequency protocol (Sjöström, Turrigiano & Nelson 2001).

    ``pairs`` pre/post pairings at each frequency in ``freqs_hz`` and each lag
    ``t_post - t_pre`` in ``lags_ms``, simulated with step ``dt`` (ms); the weight starts
    at 1 and is not clipped (:func:`analysis.protocols.frequency_protocol`).
    """

    name = PAIRING_FREQUENCY
    title = "Pairing-frequency protocol"
    column = "frequency_distance"
    output = COMPARISON_FREQUENCY
    figure = "comparison_frequency"

    freqs_hz: tuple[float, ...] = (1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0)
    lags_ms: tuple[float, ...] = (10.0, -10.0)
    pairs: int = 60
    dt: float = 0.1

    def applies(self, names: set[str], network_kind: str) -> bool:
        return network_kind == "lif"

    def measure_rule(self, rule, params=None) -> pd.DataFrame:
        """``freq_hz, lag_ms, dw`` of ``rule`` (``params`` ``None``: ``rule.init``)."""
        from ..protocols import frequency_protocol

        return frequency_protocol(rule, params, freqs_hz=self.freqs_hz, lags_ms=self.lags_ms, pairs=self.pairs,
                                  dt=self.dt)

    def distance(self, a: pd.DataFrame, b: pd.DataFrame) -> float:
        return frequency_distance(a, b)

    def frame(self, eq, can: Mapping[str, pd.DataFrame], names: Sequence[str]) -> pd.DataFrame:
        frames = [eq.assign(rule="equation"), *(can[n].assign(rule=n) for n in names)]
        return pd.concat(frames, ignore_index=True)[list(FREQUENCY_COLUMNS)]


def frequency_behaviour(equation: str, names: Sequence[str], timescales: Mapping[str, float] | None = None,
                        check: FrequencyCheck = FrequencyCheck()) -> tuple[dict[str, float], pd.DataFrame]:
    """Frequency-protocol distance between ``equation`` and each canonical rule in ``names``.

    Returns:
      ``({name: distance}, curves)``; ``curves`` has columns ``rule, freq_hz, lag_ms, dw``
      for the equation (``rule == "equation"``) and every rule.
    """
    eq = check.measure_rule(equation_rule(equation, timescales))
    can = {n: check.canonical(n) for n in names}
    return {n: check.distance(eq, can[n]) for n in names}, check.frame(eq, can, names)


__all__ = ["FREQUENCY_COLUMNS", "PAIRING_FREQUENCY", "FrequencyCheck", "frequency_distance", "frequency_behaviour"]
