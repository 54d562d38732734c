"""Symbolic rules: a sympy expression over the vocabulary, compiled once to JAX."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import jax.numpy as jnp
import sympy

from ..compile import compile_expr
from ..config import ConfigError, RuleConfig
from ..equations import EquationError, free_parameters, parse_equation, used_variables
from ..registry import RULES
from .base import DEFAULT_TIMESCALES, Rule, _lists, _tuples


@dataclass(frozen=True)
class SymbolicConfig(RuleConfig):
    """``[rule] kind = "symbolic"``: meta-train the parameters of a given equation, e.g.
    ``equation = "a*x*y - b*w*y**2"`` with starting values ``[rule.params] a = 0.005``."""

    kind: str = "symbolic"
    equation: str = "0*w"
    params: dict[str, float] = field(default_factory=dict)

    def check(self, cfg):
        super().check(cfg)
        if self.inputs is not None:
            raise ConfigError("[rule] inputs does not apply to kind = \"symbolic\": the equation's variables are "
                              "its inputs; remove it")
        try:
            SymbolicRule.from_string(self.equation, self.params)
        except (EquationError, KeyError) as e:
            raise ConfigError(f"[rule] equation: {e.args[0] if e.args else e}") from None


@RULES.register("symbolic")
@dataclass(frozen=True)
class SymbolicRule(Rule):
    """``dw = expr(local variables; parameters)``; parameters are learnable leaves.

    Example:
      >>> rule = SymbolicRule.from_string("eta*(x*y - y**2*w)", {"eta": 0.01})
      >>> params = rule.init(jax.random.key(0))
    """

    expr: sympy.Expr = field(default=sympy.Integer(0))  # compared and hashed: a jit static argument
    defaults: tuple[tuple[str, float], ...] = ()

    Config = SymbolicConfig

    @classmethod
    def from_config(cls, cfg, *, inputs, timescales, spiking, probe=None):
        return cls.from_string(cfg.equation, cfg.params, timescales=timescales, label="symbolic",
                               learn_timescales=_tuples(cfg.learn_timescales), traces=cfg.traces)

    def to_spec(self) -> dict:
        return {"kind": "symbolic", "inputs": list(self.inputs), "timescales": dict(self.timescales),
                "learn_timescales": _lists(self.learn_timescales), "traces": self.traces, "label": self.label,
                "equation": str(self.expr),
                "params": dict(self.defaults)}

    @classmethod
    def from_spec(cls, spec: dict) -> "SymbolicRule":
        return cls.from_string(spec["equation"], spec["params"], timescales=spec["timescales"],
                               label=spec.get("label", "rule"), learn_timescales=spec.get("learn_timescales", False),
                               traces=spec.get("traces", "all_to_all"))

    def __post_init__(self):
        super().__post_init__()
        try:
            object.__setattr__(self, "_fn", compile_expr(self.expr))
        except TypeError as e:
            raise EquationError(f"equation {self.expr} cannot be compiled: {e}; use only + - * / ** and "
                                "the functions exp, log, sqrt, tanh, abs, sigmoid, min, max") from None

    @classmethod
    def from_expr(cls, expr: sympy.Expr, params: Mapping[str, float] | None = None,
                  timescales: Mapping[str, float] | None = None, label: str = "equation",
                  learn_timescales: bool | tuple[str, ...] = False, traces: str = "all_to_all") -> "SymbolicRule":
        params = dict(params or {})
        free = free_parameters(expr)
        missing = [p for p in free if p not in params]
        if missing:
            raise EquationError(
                f"equation {expr} uses parameter(s) {missing} with no value; give them a value "
                f"(in a config: under [task.teacher.params], e.g. {missing[0]} = 0.01)"
            )
        ts = dict(DEFAULT_TIMESCALES)
        ts.update(timescales or {})
        return cls(
            inputs=used_variables(expr),
            timescales=tuple(ts.items()),
            learn_timescales=learn_timescales,
            traces=traces,
            label=label,
            expr=expr,
            defaults=tuple((p, float(params[p])) for p in free),
        )

    @classmethod
    def from_string(cls, text: str, params: Mapping[str, float] | None = None, **kw) -> "SymbolicRule":
        params = dict(params or {})
        expr = parse_equation(text, params=params.keys())
        unused = sorted(set(params) - set(free_parameters(expr)) - set(DEFAULT_TIMESCALES))
        if unused:
            raise EquationError(f"parameter(s) {unused} are given a value but do not appear in {text!r}; "
                                "remove them or fix the equation")
        ts = {k: v for k, v in params.items() if k in DEFAULT_TIMESCALES}
        ts.update(kw.pop("timescales", None) or {})
        return cls.from_expr(expr, {k: v for k, v in params.items() if k not in DEFAULT_TIMESCALES},
                             timescales=ts, **kw)

    def init_core(self, key):
        return {p: jnp.asarray(v, jnp.float32) for p, v in self.defaults}

    def apply(self, core, local):
        out = self._fn({**local, **core})
        shape = jnp.broadcast_shapes(*[jnp.shape(v) for v in local.values()]) if local else ()
        return jnp.broadcast_to(jnp.asarray(out, jnp.float32), shape)

    def bound_expr(self, params: dict | None = None) -> sympy.Expr:
        """The expression with parameter values substituted (current or default)."""
        vals = dict(self.defaults) if params is None else {k: float(v) for k, v in params["core"].items()}
        return self.expr.xreplace({sympy.Symbol(k, real=True): sympy.Float(v) for k, v in vals.items()})
