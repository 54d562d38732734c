"""From a validated :class:`~discover.config.Config` to the objects that run it.

Every piece comes from its registry (:mod:`discover.registry`): ``[task] name``,
``[network] kind``, ``[rule] kind`` and ``[meta] optimizer`` name a built-in or a user's
class by import path, so a user's task runs through every stage unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from .config import Config, ConfigError
from .networks import present
from .registry import NETWORKS, RULES, TASKS
from .rules import Rule, SymbolicRule
from .rules.base import DEFAULT_TIMESCALES, tidy

DEFAULT_INPUTS = {False: ("x", "y", "w"), True: ("s_pre", "s_post", "tr_pre", "tr_post", "w")}


def build_network(cfg: Config):
    return NETWORKS.get(cfg.network.kind).from_config(cfg.network, cfg.task.n_pre, cfg.task.n_post)


def build_task(cfg: Config, network=None):
    return TASKS.get(cfg.task.name).from_config(cfg, network or build_network(cfg))


def episode_bytes(task, n: int) -> int:
    """Bytes of ``n`` of the task's episodes, from their shapes alone (nothing is sampled)."""
    shapes = jax.eval_shape(lambda k: task.sample(k, n), jax.random.key(0))
    return sum(int(np.prod(a.shape)) * a.dtype.itemsize for a in jax.tree_util.tree_leaves(shapes))


def check_size(cfg: Config, task) -> None:
    """Refuse, before any work, a config whose episodes cannot fit in this machine's memory.

    The largest set of episodes held at once (a meta-batch, the validation set, the check
    of a teacher, the verification set) is counted with its recorded trajectories; a
    rollout and its gradient hold about four times that."""
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    n = max(cfg.meta.batch, cfg.meta.val_episodes, cfg.verify.episodes, cfg.distill.episodes)
    try:
        need = 4 * episode_bytes(task, n)
    except Exception:  # a task whose sampling cannot be traced abstractly: its own checks apply
        return
    if need > total:
        raise ConfigError(
            f"{n} episodes of [task] steps = {cfg.task.steps} with {cfg.task.n_pre} x {cfg.task.n_post} synapses need "
            f"about {need / 2**30:.1f} GiB of memory, more than this machine has ({total / 2**30:.1f} GiB). "
            "Lower [task] steps, n_pre or n_post, or [meta] batch / val_episodes, [verify] episodes and "
            "[distill] episodes")


def available_variables(task) -> tuple[str, ...]:
    """The local variables a rule of ``task`` can read: its network's (``elig`` only with
    escape noise), restricted to the task's :meth:`~discover.tasks.base.Task.rule_variables`."""
    net = task.network
    allowed = tuple(net.local_variables)
    if not getattr(net, "escape_noise", False):
        allowed = tuple(n for n in allowed if n != "elig")
    seen = task.rule_variables()
    return allowed if seen is None else tuple(n for n in allowed if n in seen)


def student_inputs(cfg: Config, task, rule_cfg=None) -> tuple[str, ...]:
    net = task.network
    allowed = available_variables(task)
    seen = task.rule_variables()
    rc = rule_cfg or cfg.rule
    if rc.inputs is not None:
        bad = [v for v in rc.inputs if v not in allowed]
        if bad == ["elig"] and "elig" in net.local_variables:
            raise ConfigError("[rule] inputs has \"elig\", the eligibility trace of an escape-noise neuron; set "
                              "[network] escape_noise = true (or leave elig out)")
        if bad:
            where = f"task {task.name}'s rules" if seen is not None else f"a {net.kind} network"
            raise ConfigError(f"[rule] inputs {bad} are not variables of {where}; choose from {', '.join(allowed)}")
        return tuple(rc.inputs)
    names = [n for n in DEFAULT_INPUTS[bool(net.spiking)] if n in allowed]
    names += [v for v in task.rule_inputs() if v not in names]
    return tuple(n for n in allowed if n in names)


def _timescales(rule_cfg, where: str = "rule") -> dict[str, float]:
    ts = dict(DEFAULT_TIMESCALES)
    bad = [k for k in rule_cfg.timescales if k not in ts]
    if bad:
        raise ConfigError(f"[{where}.timescales] {bad[0]!r} is not a trace time constant; use {', '.join(ts)}")
    nonpositive = [k for k, v in rule_cfg.timescales.items() if v <= 0]
    if nonpositive:
        raise ConfigError(f"[{where}.timescales] {nonpositive[0]} must be > 0 (a time constant), got "
                          f"{rule_cfg.timescales[nonpositive[0]]}")
    ts.update(rule_cfg.timescales)
    return ts


def build_student(cfg: Config, task, key=None) -> Rule:
    """The learnable rule of ``[rule]``; its input normalization comes from a probe of the task.
    A network with several plastic synapse types gets a :class:`~discover.rules.RuleSet`:
    one rule per type, each of its ``[rule.<type>]`` (else ``[rule]``), probed on its own
    synapses."""
    key = key if key is not None else jax.random.key(cfg.meta.seed + 7)
    types = tuple(getattr(task.network, "synapse_types", ()))
    if not types:
        return _student(cfg, task, cfg.rule, key, "rule")
    from .rules import RuleSet
    from .tasks.view import SynapseView

    rules = {}
    for i, t in enumerate(types):
        rc = cfg.rule.for_type(t)
        rule = _student(cfg, SynapseView(task, t), rc, jax.random.fold_in(key, i),
                        f"rule.{t}" if t in cfg.rule.by_type else "rule")
        rules[t] = dataclasses.replace(rule, label=f"{rule.label}.{t}")
    return RuleSet.of(rules)


def _student(cfg: Config, task, rc, key, where: str) -> Rule:
    cls = RULES.get(rc.kind)
    inputs = student_inputs(cfg, task, rc)
    rule = cls.from_config(rc, inputs=inputs, timescales=_timescales(rc, where), spiking=bool(task.network.spiking),
                           probe=lambda rule: probe_normalization(task, rule, key))
    if getattr(rule, "event_driven", False) and not getattr(rule, "heads", True):
        raise ConfigError(f"[{where}] inputs = {list(inputs)} has neither s_pre nor s_post, and an event-driven rule "
                          "(the default in spiking networks) changes w only at the spikes among its inputs, so it "
                          f"would never change a weight; add \"s_pre\", \"s_post\" to [{where}] inputs (or set "
                          f"[{where}] event_driven = false)")
    return rule


def probe_normalization(task, rule, key, episodes: int = 4):
    """Mean and std of each feature of ``rule`` where episodes visit it (driven by the task's
    ``driver()``, e.g. a teacher, or by no plasticity), or as the task's ``feature_stats()``
    gives them."""
    eps = task.keep_valid(task.sample(key, episodes))
    driver = task.driver() or SymbolicRule.from_string("0*w")
    dparams = driver.init(key)
    locs = jax.vmap(lambda e: task.visited(driver, dparams, e))(eps)
    norm = []
    given = task.feature_stats()
    for n in getattr(rule, "features", rule.inputs):
        if n in given:
            norm.append(tuple(tidy(float(v)) for v in given[n]))
            continue
        v = present(task.network, np.asarray(locs[n], np.float64))  # synapses fixed fan-in keeps
        sd = float(v.std())
        norm.append((tidy(float(v.mean())), tidy(sd if sd > 1e-6 * max(float(np.abs(v).max()), 1e-300) else 1.0)))
    return tuple(norm)


# -- rule specs (rule/rule.json) -------------------------------------------------------------
def rule_spec(rule: Rule) -> dict:
    return rule.to_spec()


def rule_from_spec(spec: dict) -> Rule:
    from .io import RunDirError
    from .registry import PluginError

    if spec.get("kind") == "ruleset":  # one rule per synapse type (not a [rule] kind of its own)
        from .rules.ruleset import RuleSet

        return RuleSet.from_spec(spec)
    try:
        cls = RULES.get(spec["kind"])
    except (PluginError, KeyError) as e:
        raise RunDirError(f"rule.json names rule kind {spec.get('kind')!r}, which cannot be loaded here ({e}); "
                          "make its module importable (working directory or PYTHONPATH)") from None
    return cls.from_spec(spec)


def load_rule(run_dir: str | Path):
    """The neural rule and its learned parameters from ``run_dir/rule/``."""
    from .io import RunDirError, damaged, load_pytree, read_json

    d = Path(run_dir) / "rule"
    if not (d / "rule.json").exists() or not (d / "params.npz").exists():
        raise RunDirError(f"{run_dir} has no trained rule ({d}/rule.json, params.npz); run "
                          f"`plasticity discover CONFIG --out {run_dir}` first")
    spec = read_json(d / "rule.json")
    try:
        rule = rule_from_spec(spec)
    except RunDirError as e:
        raise damaged(d / "rule.json", e.args[0]) from None
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise damaged(d / "rule.json", f"not a rule written by this version: {type(e).__name__}: {e}") from None
    params = load_pytree(d / "params.npz", rule.init(jax.random.key(0)))
    return rule, params


__all__ = ["build_network", "build_task", "build_student", "available_variables", "rule_spec", "rule_from_spec",
           "load_rule"]
