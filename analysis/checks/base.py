"""The behaviour-check protocol and its registry.

A behaviour check runs a rule in the simulator and reduces what it did to a few numbers
(a pairing window, a frequency curve, the alignment of ``w`` with PC1...), so that a
distilled equation can be compared with each canonical rule by behaviour as well as by
its terms. :func:`analysis.compare.compare_equation` runs every registered check that
applies to the equation's network kind.

A check is any class with the attributes and methods of :class:`BehaviourCheck`; it is
registered under a name with ``@CHECKS.register("name")``, named by import path
(``"my_module:MyCheck"``), or installed by a package in the entry-point group
``plasticity.checks``.

Example::

  >>> from analysis.checks import CHECKS, get_check
  >>> check = get_check("oja_pc1")()
  >>> check.applies({"x", "y", "w"}, "rate")
  True
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import pandas as pd

from discover.registry import Registry

#: Registry of behaviour checks (name -> class); built-ins register on ``import analysis.checks``.
CHECKS = Registry("plasticity.checks", "behaviour check", "behaviour check", "analysis.checks")


@runtime_checkable
class BehaviourCheck(Protocol):
    """What :func:`analysis.compare.compare_equation` needs of a behaviour check.

    Attributes:
      name: its registry name; written to the ``behaviour`` column of ``comparison.csv``
        by the first check of a network kind whose ``column`` is ``behaviour_distance``.
      title: how notes name it (``"Oja behaviour check"``).
      column: the column of ``comparison.csv`` its distance goes to (``behaviour_distance``
        or ``frequency_distance``); the distances of all checks of one column are averaged
        (NaN parts left out).
      requires: names of checks that must have succeeded for this one to run.
      output: a file of the run directory its :meth:`frame` is written to, or ``None``.
      figure: the stem of that file's figure in ``figures/`` (deleted with a stale file).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    column: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    output: ClassVar[str | None]
    figure: ClassVar[str | None]

    def applies(self, names: set[str], network_kind: str) -> bool:
        """Whether it can judge an equation over variables ``names`` on a ``network_kind`` network."""

    def measure(self, rule, params=None, timescales: Mapping[str, float] | None = None) -> Any:
        """The check's result for ``rule`` (a rule object, or an equation text built with ``timescales``)."""

    def distance(self, a, b) -> float:
        """Distance of two results (0: same behaviour)."""

    def canonical(self, name: str) -> Any:
        """The (cached) result of the canonical rule ``name`` at its published parameters."""


class Check:
    """Shared parts of the built-in checks (frozen dataclasses of their settings).

    Subclasses define ``name``, ``title``, :meth:`applies`, :meth:`measure_rule` and
    :meth:`distance`; the rest have defaults: one distance part per pair, no extra
    columns or notes, no output file.
    """

    column: ClassVar[str] = "behaviour_distance"
    requires: ClassVar[tuple[str, ...]] = ()
    output: ClassVar[str | None] = None
    figure: ClassVar[str | None] = None

    def measure(self, rule, params=None, timescales: Mapping[str, float] | None = None) -> Any:
        if isinstance(rule, str):
            rule = equation_rule(rule, timescales)
        return self.measure_rule(rule, params)

    def measure_rule(self, rule, params=None) -> Any:
        raise NotImplementedError

    def canonical(self, name: str) -> Any:
        return _canonical(self, name)

    def parts(self, a, b) -> tuple[float, ...]:
        """The distance as parts that are averaged with other checks' (default: one)."""
        return (self.distance(a, b),)

    def columns(self, eq, can: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
        """Extra columns of ``comparison.csv`` (a value or one per canonical rule in ``names``)."""
        return {}

    def notes(self, eq, can: Mapping[str, Any], names: Sequence[str]) -> list[str]:
        """Notes for the report (e.g. weights that diverged)."""
        return []

    def frame(self, eq, can: Mapping[str, Any], names: Sequence[str]) -> pd.DataFrame | None:
        """The table written to :attr:`output` (the equation's rows first, ``rule == "equation"``)."""
        return None


@functools.lru_cache(maxsize=64)
def _canonical(check, name: str):
    from discover.rules import canonical_rule

    return check.measure_rule(canonical_rule(name))


def equation_rule(equation: str, timescales: Mapping[str, float] | None = None):
    """The :class:`~discover.rules.SymbolicRule` of an equation text, with trace time constants ``timescales``."""
    from discover.rules import SymbolicRule

    return SymbolicRule.from_string(str(equation), {}, timescales=dict(timescales or {}), label="equation")


def default_params(rule, params):
    """``params``, or ``rule.init(jax.random.key(0))`` (a canonical rule's published values)."""
    if params is not None:
        return params
    import jax

    return rule.init(jax.random.key(0))


def get_check(name: str) -> type:
    """The check class registered as ``name``, or named by an import path ``"module:Class"``."""
    return CHECKS.get(name)


@functools.cache
def simulation_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this rule cannot be built or simulated here", not a bug.

    An equation the restricted parser or the vocabulary rejects
    (:class:`discover.equations.EquationError`, ``ValueError``, ``KeyError``), arithmetic
    that fails (``ZeroDivisionError``, ``FloatingPointError``), and XLA failing at run
    time (``jax.errors.JaxRuntimeError``: e.g. out of memory). Anything else is a bug and
    propagates.
    """
    import jax

    from discover.equations import EquationError

    return (EquationError, ValueError, KeyError, ZeroDivisionError, FloatingPointError, jax.errors.JaxRuntimeError)


__all__ = ["CHECKS", "BehaviourCheck", "Check", "equation_rule", "default_params", "get_check", "simulation_errors"]
