"""The one rule interface.

A plasticity rule maps the local variables of every synapse to ``dw`` for one time step.
Its learnable parameters are a pytree ``{"core": ..., "log_tau": {...}}``: ``core`` is the
parameterization's own (equation coefficients, MLP weights, monomial coefficients);
``log_tau`` holds the time constants of the synapse-internal traces the rule reads
(``tau_pre``, ``tau_post``, ``tau_pre_slow``, ``tau_post_slow`` in ms for spiking
networks; ``tau_theta``, ``tau_mean`` in steps for rate networks). Traces belong to the
rule, as in a Brian2 ``Synapses`` model, so a student rule can learn its own time
constants (in log space) when ``learn_timescales`` is set.

The static configuration (which inputs, sizes, scales) lives in the frozen dataclass;
arrays live in the params pytree; the simulator owns the run-time state.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from ..config import RuleConfig
from ..vocabulary import BINARY, NAMES

# Default time constants of the traces. Spiking (ms): Song, Miller & Abbott 2000 (pair
# traces, 20 ms); slow traces: Pfister & Gerstner 2006, Table 4, visual cortex minimal
# all-to-all (tau_x = 101 ms, tau_y = 114 ms). Rate (steps): our choice.
DEFAULT_TIMESCALES = {
    "tau_pre": 20.0,
    "tau_post": 20.0,
    "tau_pre_slow": 101.0,
    "tau_post_slow": 114.0,
    "tau_theta": 20.0,
    "tau_mean": 50.0,
}

Local = Mapping[str, jax.Array]

class EventDriven:
    """``features`` and ``heads`` of rules that may take the event-driven form
    ``dw = s_post*f(z) + s_pre*g(z)`` (DESIGN.md section 3); the subclass has a boolean
    field ``event_driven``."""

    @property
    def features(self) -> tuple[str, ...]:
        """The inputs ``z`` the rule's function reads: all, or the non-spike ones when event-driven."""
        if self.event_driven:
            return tuple(n for n in self.inputs if n not in BINARY)
        return self.inputs

    @property
    def heads(self) -> tuple[str, ...]:
        """The spike indicators that gate the rule's outputs (event-driven), in order."""
        if not self.event_driven:
            return ()
        return tuple(n for n in ("s_post", "s_pre") if n in self.inputs)


#: how a spike enters its traces: adds 1 (all-to-all interactions) or sets them to 1
#: (nearest-spike interactions; Pfister & Gerstner 2006, "Nearest-spike interactions")
TRACE_MODES = ("all_to_all", "nearest")

def add_spike(rule, trace, spike):
    """``trace`` after ``spike`` (0/1) enters it under ``rule``'s trace mode: plus 1, or set
    to 1 (``traces = "nearest"``); the one place both simulators take it from."""
    if getattr(rule, "traces", "all_to_all") == "nearest":
        return trace * (1.0 - spike) + spike
    return trace + spike


# which local variables each time constant shapes
TRACE_OF = {
    "tau_pre": ("tr_pre",), "tau_post": ("tr_post",), "tau_pre_slow": ("tr_pre_slow",),
    "tau_post_slow": ("tr_post_slow",), "tau_theta": ("theta",), "tau_mean": ("x_mean", "y_mean"),
}


def timescales_read(variables, names=DEFAULT_TIMESCALES) -> tuple[str, ...]:
    """Those of the time constants ``names`` whose trace is among ``variables`` (the
    others cannot matter to a rule or equation of those variables)."""
    variables = set(variables)
    return tuple(k for k in names if variables & set(TRACE_OF.get(k, ())))


def tidy(v: float) -> float:
    """``v`` rounded for a readable spec (``rule.json``): to 6 decimals, or to 6 significant
    digits where that would leave fewer (an eligibility trace's spread is ~1e-7)."""
    return round(v, 6) if abs(v) >= 1e-3 or v == 0 else float(f"{v:.6g}")


def _tuples(v):
    return tuple(_tuples(x) for x in v) if isinstance(v, (list, tuple)) else v


def _lists(v):
    return [_lists(x) for x in v] if isinstance(v, (list, tuple)) else v


@dataclass(frozen=True)
class Rule:
    """Base class: subclasses implement ``init_core`` and ``apply``.

    A learnable rule that a config can name also has a ``Config`` (a dataclass
    subclassing :class:`discover.config.RuleConfig`; ``[rule] kind`` picks it) and is
    registered in :data:`discover.registry.RULES`, or named by import path. Every rule is
    saved to ``rule/rule.json`` by :meth:`to_spec` and rebuilt by :meth:`from_spec`: the
    defaults handle any rule whose fields are numbers, strings, booleans and tuples.
    """

    inputs: tuple[str, ...]
    timescales: tuple[tuple[str, float], ...] = tuple(DEFAULT_TIMESCALES.items())
    learn_timescales: bool | tuple[str, ...] = False  # True: every trace's; or the names of those to learn
    label: str = "rule"
    traces: str = "all_to_all"  # or "nearest": a spike sets its traces to 1 instead of adding 1

    Config: ClassVar[type] = RuleConfig
    default_label: ClassVar[str] = "rule"  # the label of a student built from a config

    # -- configs and specs -----------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: RuleConfig, *, inputs: tuple[str, ...], timescales: dict[str, float],
                    spiking: bool, probe=None) -> "Rule":
        """The student rule of ``[rule]``: every config key that is also a field of ``cls``,
        plus the resolved ``inputs`` and ``timescales``; ``event_driven = None`` means "for
        spiking networks". ``probe(rule) -> ((mean, sd), ...)`` measures the rule's
        features where the task's episodes visit them (for input normalization)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {f.name: _tuples(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
              if f.name in names and f.name not in ("inputs", "timescales")}
        if "event_driven" in kw and kw["event_driven"] is None:
            kw["event_driven"] = spiking
        return cls(inputs=tuple(inputs), timescales=tuple(timescales.items()), label=cls.default_label,
                   **kw).normalized(probe)

    def normalized(self, probe) -> "Rule":
        """This rule with its input normalization set from ``probe`` (default: unchanged)."""
        return self

    @property
    def kind(self) -> str:
        """The name that finds this rule's class again: its registry name, else its import path."""
        from ..registry import RULES

        return RULES.key_of(type(self))

    def to_spec(self) -> dict:
        """A JSON-able description (``rule/rule.json``); ``kind`` names the class."""
        spec = {"kind": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            spec[f.name] = dict(v) if f.name == "timescales" else _lists(v)
        return spec

    @classmethod
    def from_spec(cls, spec: dict) -> "Rule":
        hints = typing.get_type_hints(cls)
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name not in spec:
                continue
            v = spec[f.name]
            if f.name == "timescales" and isinstance(v, dict):
                v = tuple(v.items())
            elif typing.get_origin(hints[f.name]) is tuple:
                v = _tuples(v)
            kw[f.name] = v
        return cls(**kw)

    def __post_init__(self):
        bad = [n for n in self.inputs if n not in NAMES]
        if bad:
            raise ValueError(f"rule inputs {bad} are not in the vocabulary {NAMES}")
        if isinstance(self.learn_timescales, list):  # from a spec: a field of a frozen, hashed rule
            object.__setattr__(self, "learn_timescales", tuple(self.learn_timescales))
        if not isinstance(self.learn_timescales, bool):
            unknown = [k for k in self.learn_timescales if k not in dict(self.timescales)]
            if unknown:
                raise ValueError(f"learn_timescales names {unknown}, which are not time constants of this rule "
                                 f"({', '.join(k for k, _ in self.timescales)})")
        if self.traces not in TRACE_MODES:
            raise ValueError(f"traces = {self.traces!r}: use one of {', '.join(TRACE_MODES)}")

    # -- parameters ---------------------------------------------------------------------
    def init(self, key: jax.Array) -> dict:
        return {
            "core": self.init_core(key),
            "log_tau": {k: jnp.asarray(math.log(v), jnp.float32) for k, v in self.timescales},
        }

    def init_core(self, key: jax.Array):
        raise NotImplementedError

    def tau(self, params: dict) -> dict[str, jax.Array]:
        """Trace time constants; gradients flow only into the learned ones (``learn_timescales``)."""
        learned = self.learned_timescales
        return {k: jnp.exp(v if k in learned else jax.lax.stop_gradient(v)) for k, v in params["log_tau"].items()}

    @property
    def learned_timescales(self) -> tuple[str, ...]:
        """The time constants meta-training changes: those the rule reads, all of them or
        the ones ``learn_timescales`` names."""
        if self.learn_timescales is True:
            return self.used_timescales
        if not self.learn_timescales:
            return ()
        return tuple(k for k in self.used_timescales if k in self.learn_timescales)

    @property
    def used_timescales(self) -> tuple[str, ...]:
        """The time constants of the traces this rule reads (the others cannot matter)."""
        return timescales_read(self.inputs, (k for k, _ in self.timescales))

    # -- evaluation ---------------------------------------------------------------------
    def apply(self, core, local: Local) -> jax.Array:
        raise NotImplementedError

    def __call__(self, params: dict, local: Local) -> jax.Array:
        """``dw`` for one step, broadcast over the ``[post, pre]`` synapse matrix."""
        missing = [n for n in self.inputs if n not in local]
        if missing:
            raise KeyError(f"{self.label} needs local variables {missing}, which this network does not provide")
        return self.apply(params["core"], {n: local[n] for n in self.inputs})
