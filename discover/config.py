"""Experiment configuration: TOML in, validated frozen dataclasses out.

Three tiers are kept apart (STYLE.md): this static configuration, the learnable
parameters (pytrees, :mod:`discover.rules`), and run-time state (the simulator's).
Unknown keys, wrong types and impossible values raise :class:`ConfigError`, whose
message names the field (``[meta] learning_rate``) and says how to fix it.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .suggest import did_you_mean


class ConfigError(ValueError):
    """A config that cannot run; the message names the field and the fix."""


MAX_INT = 2**31 - 1  # JAX's default integers are 32-bit: a larger count or seed cannot be used


class Section:
    """Base of every config section: ``choices`` (key -> allowed values), ``positive``
    (keys that must be > 0, each element of a list or table too) and ``nonnegative``
    (>= 0) are checked by the loader; :meth:`check` sees the whole config for
    consistency checks across sections."""

    choices: ClassVar[dict[str, tuple]] = {}
    positive: ClassVar[tuple[str, ...]] = ()
    nonnegative: ClassVar[tuple[str, ...]] = ()

    def check(self, cfg: "Config") -> None:
        """Raise :class:`ConfigError` where this section does not fit the rest of ``cfg``."""


@dataclass(frozen=True)
class TaskConfig(Section):
    """Keys every task has; a task's own ``Config`` subclasses this (``[task] name`` picks it).

    ``section_defaults`` (a class attribute) gives whole sections a config of this task may
    leave out (``{"rule": {...}, "meta": {...}}``); a section the config has is its own."""

    section_defaults: ClassVar[dict[str, dict]] = {}
    # when a rule of this task may be applied ([rule] apply): "step" (every time step) or
    # "trial_end" (once at the end of each trial, tasks with trials)
    applies: ClassVar[tuple[str, ...]] = ("step",)

    name: str = "oja_pca"
    steps: int = 500  # time steps per episode
    record_every: int = 1  # steps between recorded weight snapshots
    n_pre: int = 5
    n_post: int = 1
    # divergence guard: an episode whose weights leave [-max_weight, max_weight] (or turn
    # non-finite) is frozen there and counted apart in the meta-loss (a teacher's: left out)
    max_weight: float = 100.0
    # honest failure: a learned rule whose fit (the task's explained share, e.g. imitate's
    # R^2) is below this is reported as a poor fit by discover, distill and the report
    fit_threshold: float = 0.9

    positive: ClassVar[tuple[str, ...]] = ("steps", "record_every", "n_pre", "n_post", "max_weight")

    def check(self, cfg):
        if self.steps % self.record_every:
            raise ConfigError(f"[task] steps = {self.steps} must be a multiple of record_every = {self.record_every}")
        if not 0 <= self.fit_threshold <= 1:
            raise ConfigError(f"[task] fit_threshold = {self.fit_threshold} must be in [0, 1] (a share of the "
                              "target explained; 0 turns the poor-fit warning off)")


@dataclass(frozen=True)
class NetworkConfig(Section):
    """Keys every network has; a network's own ``Config`` subclasses this (``[network] kind``)."""

    kind: str = "rate"

    def check(self, cfg):
        lo, hi = getattr(self, "w_min", None), getattr(self, "w_max", None)
        if lo is not None and hi is not None and lo >= hi:
            raise ConfigError(f"[network] w_min = {lo} must be below w_max = {hi} (the weight bounds); swap them, "
                              "or remove one for a one-sided bound")


@dataclass(frozen=True)
class RuleConfig(Section):
    """Keys every learnable rule has; a rule's own ``Config`` subclasses this (``[rule] kind``)."""

    kind: str = "mlp"
    inputs: list[str] | None = None  # default: by network kind (and the task's, e.g. a teacher's)
    learn_timescales: bool | list[str] = False  # true: all the rule reads; or names, e.g. ["tau_post_slow"]
    timescales: dict[str, float] = field(default_factory=dict)
    traces: str = "all_to_all"  # "nearest": a spike sets its traces to 1 (nearest-spike interactions)
    # "step": the rule changes w every time step; "trial_end": once at the end of each
    # trial, from what the trial left (tasks with trials: reward_driven)
    apply: str = "step"
    # one rule per plastic synapse type of the network: [rule.<type>] subtables, each merged
    # over the keys of [rule] its kind has (built by the loader; written back as [rule.<type>])
    by_type: dict[str, typing.Any] = field(default_factory=dict)

    choices: ClassVar[dict[str, tuple]] = {"traces": ("all_to_all", "nearest"), "apply": ("step", "trial_end")}

    def for_type(self, synapse: str) -> "RuleConfig":
        """The config of the rule of synapse type ``synapse``: its ``[rule.<type>]``, else ``[rule]``."""
        return self.by_type.get(synapse, self)

    def check(self, cfg):
        if self.by_type:
            from .registry import NETWORKS

            types = tuple(getattr(NETWORKS.get(cfg.network.kind), "synapse_types", ()))
            bad = [t for t in self.by_type if t not in types]
            if bad:
                where = (f"its synapse types are {', '.join(types)}" if types else
                         "it has one plastic synapse type: put the keys in [rule] itself")
                raise ConfigError(f"[rule.{bad[0]}] names no synapse type of network kind "
                                  f"{cfg.network.kind!r}; {where}."
                                  + did_you_mean(bad[0], [*types, *(f.name for f in dataclasses.fields(self))]))
            for sub in self.by_type.values():
                sub.check(cfg)
        applies = getattr(cfg.task, "applies", ("step",))
        if self.apply not in applies:
            why = ("it has no trials" if applies == ("step",) else
                   "its rule acts on what a whole trial left (a reward at the trial's end)")
            raise ConfigError(f"[rule] apply = {self.apply!r} does not fit task {cfg.task.name}: {why}; set [rule] "
                              f"apply = {applies[0]!r}")
        if isinstance(self.learn_timescales, list):
            from .rules.base import DEFAULT_TIMESCALES

            bad = [k for k in self.learn_timescales if k not in DEFAULT_TIMESCALES]
            if bad:
                raise ConfigError(f"[rule] learn_timescales names {bad[0]!r}, which is not a trace time constant; "
                                  f"choose from {', '.join(DEFAULT_TIMESCALES)}."
                                  + did_you_mean(bad[0], DEFAULT_TIMESCALES))


@dataclass(frozen=True)
class MetaConfig(Section):
    """Keys every meta-optimizer has; its own ``Config`` subclasses this (``[meta] optimizer``)."""

    optimizer: str = "adam"
    steps: int = 300
    batch: int = 16
    train_episodes: int = 0  # > 0: a fixed pool of training episodes (batch >= pool: full batch)
    seed: int = 0
    val_episodes: int = 32
    eval_every: int = 25
    dw_penalty: float = 0.0  # weight of mean(dw**2)/output_scale**2 in the meta-loss (parsimony)
    l1_penalty: float = 0.0  # weight of sum(|rule parameters|) in the meta-loss (lasso: few terms)
    save_every: int = 50  # meta-steps between resumable checkpoints
    # more steps while the validation loss still falls (discover.meta.planned_end): after
    # `steps`, blocks of `extend_by` steps (0 = steps // 2) follow one another, up to
    # `max_steps` (0 = no extension), while the best validation loss of the last block is
    # below the best before it by more than `extend_min_gain` of it, and not yet below
    # `extend_until` (0 = no floor)
    max_steps: int = 0
    extend_by: int = 0
    extend_min_gain: float = 0.05
    extend_until: float = 0.0

    positive: ClassVar[tuple[str, ...]] = ("steps", "batch", "val_episodes", "eval_every", "save_every")
    nonnegative: ClassVar[tuple[str, ...]] = ("seed", "train_episodes", "dw_penalty", "l1_penalty", "max_steps",
                                              "extend_by", "extend_min_gain", "extend_until")

    def check(self, cfg):
        if self.max_steps and self.max_steps < self.steps:
            raise ConfigError(f"[meta] max_steps = {self.max_steps} must be >= steps = {self.steps} (it is the "
                              "most steps training may extend to while the validation loss still falls), or 0 "
                              "for no extension")
        if self.extend_by % self.eval_every:
            raise ConfigError(f"[meta] extend_by = {self.extend_by} must be a multiple of eval_every = "
                              f"{self.eval_every} (each block ends with a validation)")

    @property
    def block(self) -> int:
        """Steps per extension block: ``extend_by``, or half of ``steps`` in whole
        validation intervals."""
        if self.extend_by:
            return self.extend_by
        return max(self.eval_every, (self.steps // 2) // self.eval_every * self.eval_every)


@dataclass(frozen=True)
class DistillConfig(Section):
    backend: str = "sparse"
    backend_options: dict[str, Any] = field(default_factory=dict)  # fields of the backend (e.g. max_time)
    max_complexity: int = 30
    max_degree: int = 3
    samples: int = 4000
    episodes: int = 16
    event_fraction: float = 0.5  # spiking: fraction of samples drawn at spike events
    policy: str = "best"  # accuracy | score | best | verified
    verified_tolerance: float = 0.02  # verified: simplest equation within this share of the best objective
    bootstrap: int = 100
    refine_steps: int = 0  # > 0: refit each equation's coefficients on the task (0 = keep regression values)
    refine_episodes: int = 16  # fixed pool of training episodes for the refit
    refine_optimizer: str = "auto"  # auto (cma_es when [meta] optimizer is an ES, else adam) | adam | cma_es
    refine_sigma: float = 0.1  # cma_es refit: initial search s.d., relative to each coefficient
    refine_population: int = 16  # cma_es refit: members per generation
    refine_timescales: bool = False  # refit the learned time constants an equation reads with its coefficients
    seed: int = 1

    choices: ClassVar[dict[str, tuple]] = {
        "policy": ("accuracy", "score", "best", "verified", "aic"), "refine_optimizer": ("auto", "adam", "cma_es")}
    positive: ClassVar[tuple[str, ...]] = ("refine_sigma", "samples", "episodes", "max_complexity", "max_degree",
                                           "refine_episodes")
    nonnegative: ClassVar[tuple[str, ...]] = ("bootstrap", "refine_steps", "verified_tolerance", "seed")

    def check(self, cfg):  # the backend's name and options: distill.stage.check_config (it knows them)
        if not 0 <= self.event_fraction <= 1:
            raise ConfigError("[distill] event_fraction must be in [0, 1]")
        if self.refine_population < 2:
            raise ConfigError("[distill] refine_population must be >= 2 (members per CMA-ES generation)")


@dataclass(frozen=True)
class VerifyConfig(Section):
    episodes: int = 32
    seed: int = 2
    canonical: list[str] | None = None  # default: canonical rules of the network kind

    positive: ClassVar[tuple[str, ...]] = ("episodes",)
    nonnegative: ClassVar[tuple[str, ...]] = ("seed",)


# which key of a section picks the class whose Config the section is
SELECTORS = {"task": "name", "network": "kind", "rule": "kind", "meta": "optimizer"}


def section_class(section: str, name: str | None = None) -> type:
    """The ``Config`` class of ``[section]`` when its selector key is ``name`` (default: the default)."""
    from . import registry

    reg = {"task": registry.TASKS, "network": registry.NETWORKS, "rule": registry.RULES,
           "meta": registry.META_OPTIMIZERS}[section]
    base = {"task": TaskConfig, "network": NetworkConfig, "rule": RuleConfig, "meta": MetaConfig}[section]
    name = getattr(base, SELECTORS[section]) if name is None else name
    try:
        cls = reg.get(name).Config
    except registry.PluginError as e:
        raise ConfigError(str(e)) from None
    except AttributeError:
        raise ConfigError(f"{reg.where} = {name!r} names a class without a Config dataclass; give it one "
                          f"(a subclass of discover.config.{base.__name__})") from None
    if not (dataclasses.is_dataclass(cls) and issubclass(cls, base)):
        raise ConfigError(f"the Config of {reg.where} = {name!r} must be a dataclass subclassing "
                          f"discover.config.{base.__name__}")
    return cls


def _default(section):
    def make():
        return section_class(section)()
    return make


@dataclass(frozen=True)
class Config:
    name: str = "run"
    task: TaskConfig = field(default_factory=_default("task"))
    network: NetworkConfig = field(default_factory=_default("network"))
    rule: RuleConfig = field(default_factory=_default("rule"))
    meta: MetaConfig = field(default_factory=_default("meta"))
    distill: DistillConfig = field(default_factory=DistillConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)


def _where(path):
    return f"[{'.'.join(path[:-1])}] {path[-1]}" if len(path) > 1 else path[0]


def _coerce(value, tp, path):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(value, inner[0], path)
        errors = []
        for a in inner:  # e.g. bool | list[str]: the first type the value is
            try:
                return _coerce(value, a, path)
            except ConfigError as e:
                errors.append(e.args[0].split(" must be ", 1)[-1].split(", not ")[0])
        raise ConfigError(f"{_where(path)} must be {' or '.join(errors)}, not {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{_where(path)} must be a table ([{'.'.join(path)}]), not {value!r}")
        return _build(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{_where(path)} must be true or false, not {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{_where(path)} must be an integer, not {value!r}")
        if abs(value) > MAX_INT:
            raise ConfigError(f"{_where(path)} = {value} is too large for this machine: integers are 32-bit "
                              f"here, at most {MAX_INT:,}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{_where(path)} must be a number, not {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{_where(path)} must be a finite number, not {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{_where(path)} must be a string, not {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{_where(path)} must be a list, e.g. [1, 2], not {value!r}")
        return [_coerce(v, args[0], path) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{_where(path)} must be a table of name = value, not {value!r}")
        return {str(k): _coerce(v, args[1], path + (str(k),)) for k, v in value.items()}
    return value


def _with_task_defaults(data: dict) -> dict:
    """Sections the config leaves out entirely, filled from its task's ``section_defaults``
    (e.g. ``imitate``: the ``auto`` student and its learning rate), so that a config naming
    only the task, its teacher and the network runs without tuning."""
    task = data.get("task", {})
    if not isinstance(task, dict):
        return data
    name = task.get("name", TaskConfig.name)
    if not isinstance(name, str):
        return data
    defaults = getattr(section_class("task", name), "section_defaults", {})
    missing = {sec: dict(vals) for sec, vals in defaults.items() if sec not in data}
    return {**data, **missing} if missing else data


def _rule_subtables(data: dict) -> tuple[dict, dict]:
    """``data`` without its ``[rule.<type>]`` subtables, and those subtables, each merged
    over the keys of ``[rule]`` that its own kind has."""
    rule = data.get("rule")
    if not isinstance(rule, dict):
        return data, {}
    shared_kind = rule.get("kind", RuleConfig.kind)
    if not isinstance(shared_kind, str):
        return data, {}
    fields = {f.name for f in dataclasses.fields(section_class("rule", shared_kind))}
    subs = {k: v for k, v in rule.items() if isinstance(v, dict) and k not in fields}
    given = rule.get("by_type", {})  # a resolved config.toml written before [rule.<type>] was flattened
    subs.update(given if isinstance(given, dict) else {})
    if not subs:
        return data, {}
    shared = {k: v for k, v in rule.items() if k not in subs and k != "by_type"}
    built = {}
    for t, sub in subs.items():
        kind = _coerce(sub.get("kind", shared_kind), str, ("rule", t, "kind"))
        cls = section_class("rule", kind)
        own = {f.name for f in dataclasses.fields(cls)} - {"by_type"}
        merged = {**{k: v for k, v in shared.items() if k in own}, **sub}
        built[t] = _build(cls, merged, ("rule", t))
    return {**data, "rule": shared}, built


def _build(cls, data: dict, path: tuple[str, ...] = ()):
    if cls is Config:  # each selectable section is the Config of the class its selector names
        data, by_type = _rule_subtables(_with_task_defaults(data))
        if by_type:
            cfg = _build(cls, data, path)
            return dataclasses.replace(cfg, rule=dataclasses.replace(cfg.rule, by_type=by_type))
        hints = dict(typing.get_type_hints(cls))
        for sec, key in SELECTORS.items():
            value = data.get(sec, {})
            if isinstance(value, dict) and key in value:
                chosen = _coerce(value[key], str, (sec, key))
                hints[sec] = section_class(sec, chosen)
            elif isinstance(value, dict):
                hints[sec] = section_class(sec)
    else:
        hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        section = f"[{'.'.join(path)}]" if path else "the top level"
        owner = ""
        if len(path) == 1 and path[0] in SELECTORS:
            key = SELECTORS[path[0]]
            owner = f" (for {key} = {data.get(key, getattr(cls, key))!r})"
        raise ConfigError(
            f"unknown key {unknown[0]!r} in {section}{owner}; valid keys there are: {', '.join(names)}. "
            "Fix the spelling or remove it." + did_you_mean(unknown[0], names)
        )
    choices = getattr(cls, "choices", {})
    positive = getattr(cls, "positive", ())
    nonnegative = getattr(cls, "nonnegative", ())
    kwargs = {}
    for k, v in data.items():
        p = path + (k,)
        val = _coerce(v, hints[k], p)
        if k in choices and val not in choices[k]:
            raise ConfigError(f"{_where(p)} = {val!r} is not one of {', '.join(map(repr, choices[k]))}."
                              + did_you_mean(val, choices[k]))
        for where, x in _numbers(p, val):
            if k in positive and x <= 0:
                raise ConfigError(f"{_where(where)} must be > 0, got {x!r}")
            if k in nonnegative and x < 0:
                raise ConfigError(f"{_where(where)} must be >= 0, got {x!r}")
        if k.endswith("_range") and (len(val) != 2 or val[0] > val[1]):
            raise ConfigError(f"{_where(p)} must be [low, high] with low <= high, got {val!r}")
        kwargs[k] = val
    return cls(**kwargs)


def _numbers(path, val):
    """``(path, number)`` for ``val`` and, for a list or a table, for each of its numbers."""
    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if number(val):
        return [(path, val)]
    if isinstance(val, list):
        return [(path, x) for x in val if number(x)]
    if isinstance(val, dict):
        return [(path + (str(k),), x) for k, x in val.items() if number(x)]
    return []


def read_toml(path: str | Path) -> dict:
    """The TOML file at ``path`` as a dict; not UTF-8 or not TOML is a :class:`ConfigError`
    naming the file, the place and the fix."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} on line {line}); TOML files "
                          "are UTF-8: save it with that encoding") from None
    except OSError as e:
        raise ConfigError(f"cannot read config {str(path)!r}: {e.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}. Fix the line it names.") from None


def config_from_dict(data: dict[str, Any]) -> Config:
    cfg = _build(Config, data)
    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        if isinstance(section, Section):
            section.check(cfg)
    return cfg


def load_config(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass a TOML file or a built-in name "
                          "(see `plasticity list`)")
    data = read_toml(path)
    try:
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def config_to_dict(cfg) -> dict:
    """Plain dict of a config (for writing the resolved ``config.toml``); drops ``None``."""
    def clean(obj):
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if v is not None}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj
    out = clean(dataclasses.asdict(cfg))
    rule = out.get("rule") if isinstance(out, dict) else None
    if isinstance(rule, dict) and "by_type" in rule:  # written back as [rule.<type>]
        by_type = rule.pop("by_type")
        for sub in by_type.values():
            sub.pop("by_type", None)
        rule.update(by_type)
    return out


def dumps_config(cfg) -> str:
    """The resolved config as TOML: only the keys of the chosen task, network, rule and
    meta-optimizer, lists on one line."""
    import tomli_w

    def value(v):
        if isinstance(v, dict):  # only empty tables get here
            return "{}"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return tomli_w.dumps({"v": v})[4:].strip()

    def table(d, path):
        lines = [f"{k} = {value(v)}" for k, v in d.items() if not (isinstance(v, dict) and v)]
        out = ([f"[{'.'.join(path)}]"] if path else []) + lines
        for k, v in d.items():
            if isinstance(v, dict) and v:
                out += ["", *table(v, path + (k,))]
        return out

    return "\n".join(table(config_to_dict(cfg), ())).strip() + "\n"
