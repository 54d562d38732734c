"""From a validated :class:`~discover.config.Config` to the objects that run it."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from .config import Config, ConfigError
from .equations import EquationError
from .networks import LIFNetwork, RateNetwork
from .rules import MLPRule, PolynomialRule, Rule, SymbolicRule, make_symbolic_rule
from .rules.base import DEFAULT_TIMESCALES
from .tasks.imitate import Imitate
from .tasks.oja_pca import OjaPCA
from .vocabulary import names_for

DEFAULT_INPUTS = {"rate": ("x", "y", "w"), "lif": ("s_pre", "s_post", "tr_pre", "tr_post", "w")}


def build_network(cfg: Config):
    n, t = cfg.network, cfg.task
    if n.kind == "rate":
        return RateNetwork(n_pre=t.n_pre, n_post=t.n_post, activation=n.activation, w_min=n.w_min, w_max=n.w_max)
    return LIFNetwork(
        n_pre=t.n_pre, n_post=t.n_post, dt=n.dt, tau_m=n.tau_m, v_rest=n.v_rest, v_th=n.v_th, v_reset=n.v_reset,
        t_ref=n.t_ref, synapse=n.synapse, tau_syn=n.tau_syn, E_e=n.E_e, w_scale=n.w_scale,
        integration=n.integration, w_min=0.0 if n.w_min is None else n.w_min,
        w_max=1.0 if n.w_max is None else n.w_max, post_mode=n.post_mode, surrogate_beta=n.surrogate_beta,
        feedback_gradient=n.feedback_gradient,
    )


def build_teacher(cfg: Config) -> SymbolicRule | None:
    if cfg.task.teacher is None:
        return None
    try:
        rule = make_symbolic_rule(cfg.task.teacher.rule, cfg.task.teacher.params, label="teacher")
    except (EquationError, KeyError) as e:
        msg = e.args[0] if e.args else str(e)
        raise ConfigError(f"[task.teacher] rule: {msg}") from None
    allowed = set(names_for(cfg.network.kind))
    bad = [v for v in rule.inputs if v not in allowed]
    if bad:
        raise ConfigError(f"[task.teacher] rule uses {bad}, which a {cfg.network.kind} network does not have; "
                          f"its variables are {', '.join(sorted(allowed))}")
    return rule


def build_task(cfg: Config, network=None, teacher=None):
    t = cfg.task
    network = network or build_network(cfg)
    common = dict(network=network, steps=t.steps, record_every=t.record_every,
                  checkpoint_every=cfg.meta.checkpoint_every or None,
                  truncate_every=cfg.meta.truncate_every or None)
    if t.name == "oja_pca":
        return OjaPCA(eigen_decay=t.eigen_decay, scale_range=tuple(t.scale_range), loss_window=t.loss_window,
                      **common)
    teacher = teacher or build_teacher(cfg)
    return Imitate(teacher=teacher, w0_range=tuple(t.w0_range), input_mean_range=tuple(t.input_mean_range),
                   input_scale_range=tuple(t.input_scale_range), pre_rate_range=tuple(t.pre_rate_range),
                   post_rate_range=tuple(t.post_rate_range), pre_modulation_range=tuple(t.pre_modulation_range),
                   pre_frequency_range=tuple(t.pre_frequency_range), pre_phase_spread=t.pre_phase_spread,
                   observe=t.observe, obs_tau=t.obs_tau, obs_noise=t.obs_noise,
                   unrecorded_fraction=t.unrecorded_fraction, **common)


def student_inputs(cfg: Config, teacher: Rule | None) -> tuple[str, ...]:
    kind = cfg.network.kind
    if cfg.rule.inputs is not None:
        allowed = names_for(kind)
        bad = [v for v in cfg.rule.inputs if v not in allowed]
        if bad:
            raise ConfigError(f"[rule] inputs {bad} are not variables of a {kind} network; choose from "
                              f"{', '.join(allowed)}")
        return tuple(cfg.rule.inputs)
    names = list(DEFAULT_INPUTS[kind])
    for v in teacher.inputs if teacher is not None else ():
        if v not in names:
            names.append(v)
    return tuple(n for n in names_for(kind) if n in names)


def _timescales(cfg: Config) -> dict[str, float]:
    ts = dict(DEFAULT_TIMESCALES)
    bad = [k for k in cfg.rule.timescales if k not in ts]
    if bad:
        raise ConfigError(f"[rule.timescales] {bad[0]!r} is not a trace time constant; use {', '.join(ts)}")
    ts.update(cfg.rule.timescales)
    return ts


def build_student(cfg: Config, task, teacher: Rule | None = None, key=None) -> Rule:
    """The learnable rule; an MLP's input normalization comes from a probe of the task."""
    inputs = student_inputs(cfg, teacher)
    ts = tuple(_timescales(cfg).items())
    r = cfg.rule
    key = key if key is not None else jax.random.key(cfg.meta.seed + 7)
    event = cfg.network.kind == "lif" if r.event_driven is None else r.event_driven
    if r.kind == "polynomial":
        proto = PolynomialRule(inputs=inputs, timescales=ts, learn_timescales=r.learn_timescales, degree=r.degree,
                               output_scale=r.output_scale, event_driven=event, label="polynomial")
        if not event:
            return proto
        # monomials of z / rms(z) where the episodes visit z (so that Adam's steps fit all terms)
        norm = probe_normalization(task, proto, teacher, key)
        scales = tuple(round(float(np.hypot(m, s)), 6) or 1.0 for m, s in norm)
        return PolynomialRule(**{**proto.__dict__, "scales": scales})
    proto = MLPRule(inputs=inputs, timescales=ts, learn_timescales=r.learn_timescales, hidden=tuple(r.hidden),
                    output_scale=r.output_scale, event_driven=event, label="neural")
    norm = probe_normalization(task, proto, teacher, key)
    return MLPRule(**{**proto.__dict__, "norm": norm})


def probe_normalization(task, rule: MLPRule | PolynomialRule, teacher: Rule | None, key, episodes: int = 4):
    """Mean and std of each feature of ``rule`` where episodes visit it (teacher-driven if any)."""
    eps = task.sample(key, episodes)
    driver = teacher if teacher is not None else SymbolicRule.from_string("0*w")
    dparams = driver.init(key)
    locs = jax.vmap(lambda e: task.visited(driver, dparams, e))(eps)
    norm = []
    for n in rule.features:
        v = np.asarray(locs[n], np.float64).ravel()
        sd = float(v.std())
        norm.append((round(float(v.mean()), 6), round(sd if sd > 1e-8 else 1.0, 6)))
    return tuple(norm)


# -- rule specs (rule/rule.json) -------------------------------------------------------------
def rule_spec(rule: Rule) -> dict:
    spec = {"inputs": list(rule.inputs), "timescales": dict(rule.timescales),
            "learn_timescales": rule.learn_timescales, "label": rule.label}
    if isinstance(rule, MLPRule):
        spec.update(kind="mlp", hidden=list(rule.hidden), output_scale=rule.output_scale,
                    event_driven=rule.event_driven, norm=[list(p) for p in rule.norm], init_gain=rule.init_gain)
    elif isinstance(rule, PolynomialRule):
        spec.update(kind="polynomial", degree=rule.degree, output_scale=rule.output_scale,
                    event_driven=rule.event_driven, scales=list(rule.scales))
    elif isinstance(rule, SymbolicRule):
        spec.update(kind="symbolic", equation=str(rule.expr), params=dict(rule.defaults))
    return spec


def rule_from_spec(spec: dict) -> Rule:
    common = dict(inputs=tuple(spec["inputs"]), timescales=tuple(spec["timescales"].items()),
                  learn_timescales=spec["learn_timescales"], label=spec.get("label", "rule"))
    kind = spec["kind"]
    if kind == "mlp":
        return MLPRule(**common, hidden=tuple(spec["hidden"]), output_scale=spec["output_scale"],
                       event_driven=spec["event_driven"], norm=tuple(tuple(p) for p in spec["norm"]),
                       init_gain=spec.get("init_gain", 0.1))
    if kind == "polynomial":
        return PolynomialRule(**common, degree=spec["degree"], output_scale=spec["output_scale"],
                              event_driven=spec.get("event_driven", False), scales=tuple(spec.get("scales", ())))
    if kind == "symbolic":
        rule = SymbolicRule.from_string(spec["equation"], spec["params"], timescales=spec["timescales"],
                                        label=common["label"])
        return rule
    raise ValueError(f"unknown rule kind {kind!r} in rule.json")


def load_rule(run_dir: str | Path):
    """The neural rule and its learned parameters from ``run_dir/rule/``."""
    from .io import RunDirError, load_pytree

    d = Path(run_dir) / "rule"
    if not (d / "rule.json").exists() or not (d / "params.npz").exists():
        raise RunDirError(f"{run_dir} has no trained rule ({d}/rule.json, params.npz); run "
                          f"`plasticity discover CONFIG --out {run_dir}` first")
    rule = rule_from_spec(json.loads((d / "rule.json").read_text()))
    params = load_pytree(d / "params.npz", rule.init(jax.random.key(0)))
    return rule, params


__all__ = ["build_network", "build_task", "build_teacher", "build_student", "rule_spec", "rule_from_spec",
           "load_rule"]
