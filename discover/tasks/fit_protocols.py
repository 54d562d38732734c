r"""``fit_protocols``: a rule fitted to measured plasticity experiments.

The data are protocol tables (:mod:`discover.experiments`): for each experiment the spike
pattern imposed on one pre- and one postsynaptic neuron, its repetitions, and the measured
fractional weight change with its SEM. Every experiment is one episode: the rule runs on
exactly those spike times from ``w = 1``, unclipped (the convention of
:mod:`analysis.protocols`), event by event (:mod:`discover.events`: exact for event-driven
rules, so 60 pairings at 0.1 Hz cost what 60 at 50 Hz cost). The meta-loss of one episode
is the squared error in units of the SEM, so the mean over the data set is

.. math:: E = \frac{1}{N} \sum_i \left(\frac{\Delta w_i^\mathrm{model} - \Delta w_i^\mathrm{data}}{\sigma_i}\right)^2,

the error of Pfister & Gerstner 2006 (J. Neurosci. 26:9673) as their public
reimplementations compute it; rows without SEM take ``default_sem``. The score is ``-E``
(higher is better); the explained share is ``1 - E / E_0``, with ``E_0`` the error of no
plasticity. Verification re-scores every distilled equation on the data and runs Pfister &
Gerstner's published triplet rules (``published``) through the same protocols.

Episodes are the rows in order, cycled: a batch of ``N`` episodes is the whole data set
once, which is why ``[meta] batch``, ``val_episodes``, ``train_episodes``, ``[distill]
episodes``, ``refine_episodes`` and ``[verify] episodes`` must be multiples of ``N`` (the
config check says so, with the number).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ..config import ConfigError, TaskConfig
from ..registry import TASKS
from .base import Task

#: what counts of episodes must cover the data set whole: (section, key)
EPISODE_COUNTS = (("meta", "batch"), ("meta", "val_episodes"), ("meta", "train_episodes"),
                  ("distill", "episodes"), ("distill", "refine_episodes"), ("verify", "episodes"))


@dataclass(frozen=True)
class FitProtocolsConfig(TaskConfig):
    name: str = "fit_protocols"
    # built-in data sets (sjostrom2001, bipoo1998, wang2005) or paths of protocol tables
    data: list[str] = field(default_factory=lambda: ["sjostrom2001"])
    # repetition of rows whose table does not give it (a built-in data set states its own)
    freq_hz: float = 1.0
    pairs: int = 60
    trains: int = 1
    train_interval_s: float = 10.0
    default_sem: float = 0.1  # the SEM of rows without one (fractional change)
    # Pfister & Gerstner 2006 parameter sets run beside the fit (discover.rules.PFISTER_GERSTNER);
    # default: the four of the data's preparation (visual cortex for sjostrom2001, else hippocampal)
    published: list[str] | None = None
    # distillation's front also gets the best term sets of up to this many terms fitted to the
    # data directly (exact least squares: a rule without w is linear in its coefficients); 0: off
    search_terms: int = 4
    n_pre: int = 1
    n_post: int = 1
    max_weight: float = 100.0
    fit_threshold: float = 0.8

    positive: ClassVar[tuple[str, ...]] = TaskConfig.positive + ("freq_hz", "pairs", "trains", "train_interval_s",
                                                                 "default_sem")
    nonnegative: ClassVar[tuple[str, ...]] = ("search_terms",)

    def check(self, cfg):
        super().check(cfg)
        from ..events import EVENT_VARIABLES
        from ..experiments import ExperimentError, check_grid, read_tables, spike_steps
        from ..rules import PFISTER_GERSTNER
        from ..suggest import did_you_mean

        if cfg.network.kind != "lif" or getattr(cfg.network, "post_mode", None) != "given":
            raise ConfigError("task fit_protocols imposes the experiments' spikes on one synapse: set [network] "
                              "kind = \"lif\" and post_mode = \"given\"")
        if (self.n_pre, self.n_post) != (1, 1):
            raise ConfigError("task fit_protocols simulates one synapse: set [task] n_pre = 1 and n_post = 1")
        if not self.data:
            raise ConfigError("[task] data is empty: name a built-in data set (sjostrom2001, bipoo1998, wang2005) "
                              "or a protocol table path")
        try:
            table = read_tables(self.data, self.defaults)
            dt = cfg.network.dt
            for _, r in table.iterrows():
                check_grid(r["pre_ms"] + r["post_ms"], dt, f"[task] data {r['dataset']}: a spike time of {r['label']}")
                spike_steps(r["pre_ms"], r["post_ms"], r["freq_hz"], int(r["pairs"]), dt, int(r["trains"]),
                            r["train_interval_s"])
        except ExperimentError as e:
            raise ConfigError(f"[task] data: {e}") from None
        n = len(table)
        for sec, key in EPISODE_COUNTS:
            v = getattr(getattr(cfg, sec), key)
            if v and v % n:
                raise ConfigError(f"[{sec}] {key} = {v}: the data have {n} experiments and every episode is one, "
                                  f"so set it to a multiple of {n} (e.g. {key} = {n}) to weigh each once")
        for name in self.published or ():
            if name not in PFISTER_GERSTNER:
                raise ConfigError(f"[task] published names {name!r}, not a Pfister & Gerstner parameter set; choose "
                                  f"from {', '.join(PFISTER_GERSTNER)}." + did_you_mean(name, PFISTER_GERSTNER))
        inputs = cfg.rule.inputs
        if inputs is not None:
            bad = [v for v in inputs if v not in EVENT_VARIABLES]
            if bad:
                raise ConfigError(f"[rule] inputs {bad}: the experiments give only spikes, traces and w "
                                  f"({', '.join(EVENT_VARIABLES)}); remove {bad[0]}")
        if getattr(cfg.rule, "event_driven", None) is False:
            raise ConfigError("[rule] event_driven = false: task fit_protocols runs rules event by event (weights "
                              "change at spikes only); remove the key")

    @property
    def defaults(self):
        from ..experiments import Defaults

        return Defaults(freq_hz=self.freq_hz, pairs=self.pairs, trains=self.trains,
                        train_interval_s=self.train_interval_s)


@TASKS.register("fit_protocols")
@dataclass(frozen=True)
class FitProtocols(Task):
    Config: ClassVar[type] = FitProtocolsConfig
    name: ClassVar[str] = "fit_protocols"
    diverged_loss: ClassVar[float] = 1e4  # a diverged fit is as far from the data as can be
    between_spikes: ClassVar[bool] = False  # only spike events are simulated (padding events are not data)

    @functools.cached_property
    def table(self):
        """The data set: one row per experiment (:func:`discover.experiments.read_tables`)."""
        from ..experiments import read_tables

        t = read_tables(self.config.data, self.config.defaults)
        t["sigma"] = t["sem"].where(np.isfinite(t["sem"]), self.config.default_sem)
        return t

    @functools.cached_property
    def _events(self):
        from ..events import merge_events
        from ..experiments import table_spikes

        pre, post = table_spikes(self.table, float(self.network.dt))
        return merge_events(pre, post)

    @property
    def rows(self) -> int:
        return len(self.table)

    def sample(self, key, n):
        idx = np.arange(n) % self.rows  # the data set in order, cycled (module docstring)
        step, a, b = self._events
        t = self.table
        return {"step": jnp.asarray(step[idx]), "s_pre": jnp.asarray(a[idx]), "s_post": jnp.asarray(b[idx]),
                "dw": jnp.asarray(t["dw"].to_numpy(np.float32)[idx]),
                "sigma": jnp.asarray(t["sigma"].to_numpy(np.float32)[idx]),
                "row": jnp.asarray(idx, jnp.int32), "W0": jnp.ones((n, 1, 1), jnp.float32)}

    def simulate(self, rule, params, episode, *, chunk=None, truncate=False, record_locals=False):
        from ..events import event_ready, simulate_events

        why = event_ready(rule)
        if why:
            raise ConfigError(f"task fit_protocols cannot run {getattr(rule, 'label', 'this rule')}: {why}")
        return simulate_events(rule, params, episode["step"], episode["s_pre"], episode["s_post"],
                               dt=float(self.network.dt), record_locals=record_locals, w_limit=self.w_limit)

    def model_dw(self, rollout):
        return rollout.final["W"][0, 0] - 1.0

    def loss(self, rollout, episode):
        return ((self.model_dw(rollout) - episode["dw"]) / episode["sigma"]) ** 2

    def score(self, rollout, episode):
        return -self.loss(rollout, episode)

    @functools.cached_property
    def null_error(self) -> float:
        """``E`` of no plasticity: the data's own mean squared change in SEM units."""
        t = self.table
        return float(np.mean((t["dw"] / t["sigma"]) ** 2))

    def explained(self, loss):
        return 1.0 - float(loss) / self.null_error if self.null_error > 0 else None

    def chi_square(self, mean_loss):
        return self.rows * float(mean_loss)

    def design_matrix(self, terms, timescales: dict[str, float], traces: str = "all_to_all") -> np.ndarray:
        """``A[i, j]``: the weight change of experiment ``i`` under the rule ``dw = terms[j]``.

        For terms without ``w`` the weight change of any sum ``sum_j c_j terms[j]`` is
        ``A @ c`` exactly (the traces do not depend on the weight), so a rule of these terms
        is fitted to the data by weighted least squares."""
        import sympy

        from ..rules import SymbolicRule

        cs = [sympy.Symbol(f"c{j}", real=True) for j in range(len(terms))]
        rule = SymbolicRule.from_expr(sympy.Add(*[c * t for c, t in zip(cs, terms)]), {c.name: 0.0 for c in cs},
                                      timescales=timescales, traces=traces)
        params = rule.init(jax.random.key(0))
        eps = self.sample(jax.random.key(0), self.rows)

        def dw(core):
            p = {**params, "core": core}
            return jax.vmap(lambda e: self.model_dw(self.simulate(rule, p, e)))(eps)

        J = jax.jit(jax.jacfwd(dw))(params["core"])
        return np.stack([np.asarray(J[c.name], np.float64) for c in cs], axis=1)

    def data_candidates(self, rule, params, names, max_degree: int, keep: int = 2):
        """Term sets fitted to the data directly, for distillation's front: for ``k = 1 ..
        search_terms`` the ``keep`` best subsets of ``k`` event-driven monomials (a spike
        indicator times a monomial of degree ``< max_degree`` of the rule's other inputs, the
        constant included), each with its least-squares coefficients, in the neural rule's
        time constants (refined later with them). ``[]`` where the rule reads ``w`` (then the
        fit is not linear) or the search is off."""
        import itertools

        import sympy

        from ..monomials import monomial_exponents, monomial_exprs
        from ..vocabulary import BINARY, SYMBOLS

        k_max = self.config.search_terms
        heads = [n for n in ("s_post", "s_pre") if n in names]
        feats = tuple(n for n in names if n not in BINARY)
        if not k_max or not heads or "w" in feats:
            return []
        monos = monomial_exprs(feats, monomial_exponents(feats, max(max_degree - 1, 0), include_constant=True))
        library = [SYMBOLS[h] * m for h in heads for m in monos]
        taus = {k: float(v) for k, v in rule.tau(params).items()}
        A = self.design_matrix(library, taus, getattr(rule, "traces", "all_to_all"))
        sig = self.table["sigma"].to_numpy(np.float64)
        Aw, d = A / sig[:, None], self.table["dw"].to_numpy(np.float64) / sig
        out = []
        for k in range(1, min(k_max, len(library), self.rows - 1) + 1):
            fits = []
            for idx in itertools.combinations(range(len(library)), k):
                c, *_ = np.linalg.lstsq(Aw[:, idx], d, rcond=None)
                fits.append((float(np.sum((Aw[:, idx] @ c - d) ** 2)), idx, c))
            fits.sort(key=lambda f: f[0])
            for _, idx, c in fits[:keep]:
                out.append(sympy.Add(*[sympy.Float(float(v)) * library[j] for v, j in zip(c, idx)]))
        return out

    def data_predictions(self, rules):
        """``data_fit.csv``: every experiment (``dataset, protocol, label``, the pattern and
        repetition, ``freq_hz``, ``lag_ms`` where it is a pairing, ``dw``, ``sem``, ``sigma``
        the SEM used) and one column ``dw_<name>`` per rule."""
        t = self.table
        out = t[["dataset", "protocol", "label", "freq_hz", "pairs", "trains", "dw", "sem", "sigma"]].copy()
        out.insert(3, "pre_ms", [";".join(f"{x:g}" for x in v) for v in t["pre_ms"]])
        out.insert(4, "post_ms", [";".join(f"{x:g}" for x in v) for v in t["post_ms"]])
        out.insert(6, "lag_ms", [b[0] - a[0] if len(a) == 1 and len(b) == 1 else np.nan
                                 for a, b in zip(t["pre_ms"], t["post_ms"])])
        for name, (rule, params) in rules.items():
            out[f"dw_{name}"] = self.predictions(rule, params)
        return out

    def published(self) -> tuple[str, ...]:
        if self.config.published is not None:
            return tuple(self.config.published)
        from ..rules import PFISTER_GERSTNER

        prep = "visual" if set(self.table["dataset"]) <= {"sjostrom2001"} else "hippocampal"
        return tuple(k for k in PFISTER_GERSTNER if k.startswith(prep))

    def references(self):
        from ..rules import pfister_gerstner

        return {f"pg2006_{k}": pfister_gerstner(k) for k in self.published()}

    def reference_kind(self) -> str:
        return "published"

    def predictions(self, rule, params) -> np.ndarray:
        """The rule's ``dw`` on every experiment of the data set, in table order."""
        eps = self.sample(jax.random.key(0), self.rows)
        out = jax.jit(jax.vmap(lambda e: self.model_dw(self.simulate(rule, params, e))))(eps)
        return np.asarray(out, np.float64)

    def error(self, rule, params) -> float:
        """``E`` of a rule on the data set (the mean meta-loss over its experiments)."""
        t = self.table
        return float(np.mean(((self.predictions(rule, params) - t["dw"].to_numpy()) / t["sigma"].to_numpy()) ** 2))


__all__ = ["FitProtocols", "FitProtocolsConfig"]
