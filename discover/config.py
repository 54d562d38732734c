"""Experiment configuration: TOML in, validated frozen dataclasses out.

Three tiers are kept apart (STYLE.md): this static configuration, the learnable
parameters (pytrees, :mod:`discover.rules`), and run-time state (the simulator's).
Unknown keys, wrong types and impossible values raise :class:`ConfigError`, whose
message names the field (``[meta] learning_rate``) and says how to fix it.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config that cannot run; the message names the field and the fix."""


@dataclass(frozen=True)
class TeacherConfig:
    rule: str = "oja"
    params: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskConfig:
    name: str = "oja_pca"
    steps: int = 500  # time steps per episode
    record_every: int = 1  # steps between recorded weight snapshots
    n_pre: int = 5
    n_post: int = 1
    eigen_decay: float = 0.5  # oja_pca
    scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0])  # oja_pca
    loss_window: int = 1  # oja_pca
    input_mean_range: list[float] = field(default_factory=lambda: [0.0, 1.0])  # imitate, rate
    input_scale_range: list[float] = field(default_factory=lambda: [0.3, 1.5])  # imitate, rate
    pre_rate_range: list[float] = field(default_factory=lambda: [5.0, 40.0])  # imitate, lif (Hz)
    post_rate_range: list[float] = field(default_factory=lambda: [5.0, 40.0])  # imitate, lif given
    # imitate, lif: rates r_i (1 + m sin(2 pi f t + phi_i)); m, f per episode, phi_i per input (0 = constant)
    pre_modulation_range: list[float] = field(default_factory=lambda: [0.0, 0.0])
    pre_frequency_range: list[float] = field(default_factory=lambda: [2.0, 20.0])  # Hz, log-uniform
    pre_phase_spread: float = 1.0  # imitate, lif: input phases uniform over this fraction of a cycle
    w0_range: list[float] = field(default_factory=lambda: [0.2, 0.8])  # imitate
    observe: str = "weights"  # imitate: weights | spikes (postsynaptic spike counts only)
    obs_tau: float = 5.0  # imitate, spikes: smoothing time constant in bins of record_every steps
    obs_noise: float = 0.0  # imitate, spikes: observation noise, in s.d. of the teacher's activity
    unrecorded_fraction: float = 0.0  # imitate, spikes: share of postsynaptic neurons not recorded
    teacher: TeacherConfig | None = None


@dataclass(frozen=True)
class NetworkConfig:
    kind: str = "rate"  # rate | lif
    activation: str = "linear"  # rate
    w_min: float | None = None
    w_max: float | None = None
    dt: float = 1.0  # lif, ms
    tau_m: float = 20.0
    v_rest: float = -70.0
    v_th: float = -54.0
    v_reset: float = -60.0
    t_ref: float = 2.0
    synapse: str = "current"  # current | conductance
    tau_syn: float = 5.0
    E_e: float = 0.0
    w_scale: float = 1.0
    integration: str = "exact"  # exact | euler
    post_mode: str = "given"  # given (open loop) | closed
    surrogate_beta: float = 1.0
    feedback_gradient: bool = True  # closed loop: false = no meta-gradient from spikes back into plasticity


@dataclass(frozen=True)
class RuleConfig:
    kind: str = "mlp"  # mlp | polynomial
    inputs: list[str] | None = None  # default: by network kind (and the teacher's)
    hidden: list[int] = field(default_factory=lambda: [16, 16])
    output_scale: float = 0.01
    degree: int = 3  # polynomial
    event_driven: bool | None = None  # default: True for lif
    learn_timescales: bool = False
    timescales: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MetaConfig:
    optimizer: str = "adam"  # adam | sgd (gradients) | cma_es | open_es (evolution strategies, evosax)
    population: int = 16  # evolution strategies: members per generation (one generation per step)
    es_sigma: float = 0.1  # evolution strategies: (initial) search s.d., in parameter units
    learning_rate: float = 3e-3
    tau_learning_rate: float = 0.0  # Adam learning rate of the log time constants; 0 = learning_rate
    lr_schedule: str = "cosine"  # cosine (warm-up, then decay to 2 %) | constant
    steps: int = 300
    batch: int = 16
    train_episodes: int = 0  # > 0: a fixed pool of training episodes (batch >= pool: full batch)
    seed: int = 0
    val_episodes: int = 32
    eval_every: int = 25
    grad_clip: float = 1.0
    dw_penalty: float = 0.0  # weight of mean(dw**2)/output_scale**2 in the meta-loss (parsimony)
    checkpoint_every: int = 0  # steps per jax.checkpoint segment; 0 = no rematerialization
    truncate_every: int = 0  # steps per truncated-backprop segment (also checkpointed); 0 = full backprop
    save_every: int = 50  # meta-steps between resumable checkpoints


@dataclass(frozen=True)
class DistillConfig:
    backend: str = "sparse"
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
    seed: int = 1


@dataclass(frozen=True)
class VerifyConfig:
    episodes: int = 32
    seed: int = 2
    canonical: list[str] | None = None  # default: canonical rules of the network kind


@dataclass(frozen=True)
class Config:
    name: str = "run"
    task: TaskConfig = field(default_factory=TaskConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    rule: RuleConfig = field(default_factory=RuleConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)


CHOICES = {
    ("task", "name"): ("oja_pca", "imitate"),
    ("network", "kind"): ("rate", "lif"),
    ("task", "observe"): ("weights", "spikes"),
    ("network", "activation"): ("linear", "tanh", "sigmoid", "relu", "softplus"),
    ("network", "synapse"): ("current", "conductance"),
    ("network", "integration"): ("exact", "euler"),
    ("network", "post_mode"): ("given", "closed"),
    ("rule", "kind"): ("mlp", "polynomial"),
    ("meta", "optimizer"): ("adam", "sgd", "cma_es", "open_es"),
    ("meta", "lr_schedule"): ("cosine", "constant"),
    ("distill", "backend"): ("sparse", "operon", "pysr"),
    ("distill", "policy"): ("accuracy", "score", "best", "verified"),
    ("distill", "refine_optimizer"): ("auto", "adam", "cma_es"),
}
POSITIVE = {"refine_sigma", "steps", "record_every", "n_pre", "n_post", "batch", "val_episodes", "eval_every", "learning_rate",
            "dt", "tau_m", "tau_syn", "samples", "episodes", "max_complexity", "max_degree", "degree",
            "output_scale", "save_every", "loss_window", "population", "es_sigma"}


def _where(path):
    return f"[{'.'.join(path[:-1])}] {path[-1]}" if len(path) > 1 else path[0]


def _coerce(value, tp, path):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(value, inner, path)
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
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{_where(path)} must be a number, not {value!r}")
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


def _build(cls, data: dict, path: tuple[str, ...] = ()):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        section = f"[{'.'.join(path)}]" if path else "the top level"
        raise ConfigError(
            f"unknown key {unknown[0]!r} in {section}; valid keys there are: {', '.join(names)}. "
            "Fix the spelling or remove it."
        )
    kwargs = {}
    for k, v in data.items():
        p = path + (k,)
        val = _coerce(v, hints[k], p)
        if p in CHOICES and val not in CHOICES[p]:
            raise ConfigError(f"{_where(p)} = {val!r} is not one of {', '.join(map(repr, CHOICES[p]))}")
        if k in POSITIVE and isinstance(val, (int, float)) and val <= 0:
            raise ConfigError(f"{_where(p)} must be > 0, got {val!r}")
        if k.endswith("_range") and (len(val) != 2 or val[0] > val[1]):
            raise ConfigError(f"{_where(p)} must be [low, high] with low <= high, got {val!r}")
        kwargs[k] = val
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    cfg = _build(Config, data)
    _check(cfg)
    return cfg


def load_config(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass a TOML file or a built-in name "
                          "(see `plasticity list`)")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}. Fix the line it names.") from None
    try:
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _check(cfg: Config) -> None:
    t, n = cfg.task, cfg.network
    if t.name == "oja_pca":
        if n.kind != "rate" or n.activation != "linear":
            raise ConfigError("task oja_pca needs a linear rate neuron: set [network] kind = \"rate\" and "
                              "activation = \"linear\"")
        if t.n_post != 1:
            raise ConfigError("task oja_pca has one output neuron: set [task] n_post = 1")
    if t.name == "imitate" and t.teacher is None:
        raise ConfigError("task imitate needs a teacher: add [task.teacher] rule = \"oja\" (a canonical name "
                          "or an equation string) and its parameters under [task.teacher.params]")
    if t.steps % t.record_every:
        raise ConfigError(f"[task] steps = {t.steps} must be a multiple of record_every = {t.record_every}")
    every = cfg.meta.truncate_every
    if every and (every % t.record_every or t.steps % every):
        raise ConfigError(f"[meta] truncate_every = {every} must be a multiple of [task] record_every = "
                          f"{t.record_every} and divide [task] steps = {t.steps}")
    if cfg.meta.checkpoint_every and t.steps % cfg.meta.checkpoint_every:
        raise ConfigError(f"[meta] checkpoint_every = {cfg.meta.checkpoint_every} must divide [task] steps = {t.steps}")
    if t.observe == "spikes" and n.kind != "lif":
        raise ConfigError("[task] observe = \"spikes\" needs a spiking network: set [network] kind = \"lif\"")
    if not 0 <= t.unrecorded_fraction < 1:
        raise ConfigError("[task] unrecorded_fraction must be in [0, 1): at least one neuron must be recorded")
    if not 0 <= t.pre_modulation_range[0] <= t.pre_modulation_range[1] <= 1:
        raise ConfigError("[task] pre_modulation_range must be within [0, 1] (a modulation depth: rates stay >= 0)")
    if not 0 <= t.pre_phase_spread <= 1:
        raise ConfigError("[task] pre_phase_spread must be in [0, 1] (a fraction of one cycle)")
    if t.pre_frequency_range[0] <= 0:
        raise ConfigError("[task] pre_frequency_range must be > 0 Hz")
    if cfg.meta.tau_learning_rate < 0:
        raise ConfigError("[meta] tau_learning_rate must be >= 0 (0 = the same as learning_rate)")
    if not 0 <= cfg.distill.event_fraction <= 1:
        raise ConfigError("[distill] event_fraction must be in [0, 1]")
    if cfg.distill.refine_population < 2:
        raise ConfigError("[distill] refine_population must be >= 2 (members per CMA-ES generation)")


def config_to_dict(cfg) -> dict:
    """Plain dict of a config (for writing the resolved ``config.toml``); drops ``None``."""
    def clean(obj):
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if v is not None}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj
    return clean(dataclasses.asdict(cfg))
