r"""``infer``: a rule inferred from a recording of a network while it learned.

The data are what an experiment records (Mehta, Tyulmankov et al. 2024, NeurIPS,
"MetaLearnPlasticity"): the inputs a population received and the activity of the neurons it
drives, possibly noisy and with some neurons not recorded; the weights are usually not
observed. A student network with the learnable rule gets the same inputs from the same
initial weights, and the meta-loss compares its activity with the recorded one. A recording
is a NumPy ``.npz`` (``[task.data] path``; or an NWB file, ``.nwb``, with the same content:
:mod:`discover.nwb`) holding, for ``E`` episodes of ``T`` steps:

- ``x`` ``[E, T, n_pre]`` presynaptic rates (rate networks) or ``s_pre`` ``[E, T, n_pre]``
  presynaptic spikes (0/1, spiking networks);
- ``y`` ``[E, R, n_post]`` postsynaptic activity (the mean rate over each of ``R = T /
  record_every`` bins) or ``s_post`` ``[E, R, n_post]`` (spike counts per bin), NaN where a
  neuron was not recorded;
- ``w0`` ``[E, n_post, n_pre]``, the initial weights (or ``w`` ``[E, R, n_post, n_pre]``, the
  weights at the end of every bin, whose first bin then stands in for them, and which
  ``observe = "weights"`` fits instead of the activity);
- scalars ``dt`` (ms; spiking) and ``record_every`` (steps per bin).

The meta-loss of one episode is the normalized squared error of the activity over the
recorded entries (spike counts smoothed by a causal exponential filter of ``obs_tau`` bins,
as in ``imitate``):

.. math:: L = \frac{\sum_{m} (S - S_\mathrm{rec})^2}{\sum_{m} (S_\mathrm{rec} - \bar S_\mathrm{rec})^2},

so ``1 - L`` is the share of the recorded activity's variance the student explains, and
observation noise and unrecorded neurons are simply what the loss cannot fit and does not
see. Episodes are drawn from the recording by the key (cycled through a permutation); the
recording's first ``holdout`` share of episodes is never used for meta-training
(validation, distillation and verification draw from it), so the verified objective is
measured on episodes the rule was not fitted to.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ..config import ConfigError, TaskConfig
from ..registry import TASKS
from .base import Task


@dataclass(frozen=True)
class RecordingConfig:
    path: str = ""  # the .npz or .nwb recording (module docstring: the arrays it holds)


@dataclass(frozen=True)
class InferConfig(TaskConfig):
    name: str = "infer"
    data: RecordingConfig = field(default_factory=RecordingConfig)
    observe: str = "activity"  # activity (the recorded activity) | weights (the recorded w)
    obs_tau: float = 1.0  # spike counts: causal smoothing over this many bins (rates: none)
    holdout: float = 0.25  # share of the recording's episodes kept from meta-training
    # the share of a noisy recording's variance any rule can explain is not known (the recorded
    # rule itself explains 31 % of configs/infer_oja.toml's, whose noise is half the activity's
    # s.d.), so there is no default bar for the poor-fit warning; set one where the noise is known
    fit_threshold: float = 0.0

    choices: ClassVar[dict[str, tuple]] = {"observe": ("activity", "weights")}
    positive: ClassVar[tuple[str, ...]] = TaskConfig.positive + ("obs_tau",)

    def check(self, cfg):
        super().check(cfg)
        from ..registry import NETWORKS

        rec = read_recording(self.data.path, spiking=NETWORKS.get(cfg.network.kind).spiking)
        E, T, n_pre = rec["inputs"].shape
        n_post, k = rec["activity"].shape[2], rec["record_every"]
        want = {"n_pre": n_pre, "n_post": n_post, "steps": T, "record_every": k}
        wrong = {key: v for key, v in want.items() if getattr(self, key) != v}
        if wrong:
            fix = ", ".join(f"{key} = {v}" for key, v in want.items())
            raise ConfigError(f"[task] {', '.join(f'{key} = {getattr(self, key)}' for key in wrong)} does not match "
                              f"the recording {self.data.path} ({E} episodes of {T} steps, {n_pre} inputs, "
                              f"{n_post} neurons, bins of {k} steps): set [task] {fix}")
        if "dt" in rec and getattr(cfg.network, "dt", None) is not None and abs(cfg.network.dt - rec["dt"]) > 1e-9:
            raise ConfigError(f"[network] dt = {cfg.network.dt} ms, but the recording was made at dt = {rec['dt']:g} "
                              f"ms: set [network] dt = {rec['dt']:g}")
        if self.observe == "weights" and "w" not in rec:
            raise ConfigError(f"[task] observe = \"weights\" needs the weights in the recording ({self.data.path} "
                              "has no array w); use observe = \"activity\"")
        if not 0 <= self.holdout < 1:
            raise ConfigError("[task] holdout must be in [0, 1): the share of episodes kept from meta-training")
        n_hold = int(round(self.holdout * E))
        if n_hold >= E:
            raise ConfigError(f"[task] holdout = {self.holdout} keeps all {E} episodes from meta-training; lower it")


def _fail(path, what: str):
    raise ConfigError(f"[task.data] path {path}: {what}")


def read_recording(path: str, spiking: bool) -> dict:
    """The arrays of a recording, checked: ``inputs [E, T, n_pre]``, ``activity [E, R, n_post]``
    (NaN: not recorded), ``w0 [E, n_post, n_pre]``, optionally ``w [E, R, n_post, n_pre]``,
    ``record_every`` and (spiking) ``dt``. Every missing or mis-shaped array is named."""
    from ..io import RunDirError, read_npz

    if not path:
        raise ConfigError("task infer needs a recording: set [task.data] path = \"recording.npz\" (arrays x or "
                          "s_pre, y or s_post, w0; see discover.tasks.infer)")
    p = Path(path)
    if not p.is_file():
        _fail(path, "no such file; write the recording as a NumPy .npz (benchmarks/infer_recordings.py writes one)")
    if p.suffix.lower() == ".nwb":
        from ..nwb import NWBError, read_nwb

        try:
            d = read_nwb(p)
        except NWBError as e:
            _fail(path, f"{e} (the layout: discover.nwb)")
    else:
        try:
            d = read_npz(p)
        except RunDirError as e:
            _fail(path, str(e))
    x_name, y_name = ("s_pre", "s_post") if spiking else ("x", "y")
    other = ("x", "y") if spiking else ("s_pre", "s_post")
    for name in (x_name, y_name):
        if name not in d:
            hint = (f" (it has {other[0]}: a rate recording; use [network] kind = \"rate\")" if other[0] in d and
                    spiking else f" (it has {other[0]}: a spike recording; use [network] kind = \"lif\")"
                    if other[0] in d else "")
            _fail(path, f"no array {name!r}{hint}; a {'spiking' if spiking else 'rate'} recording holds {x_name} "
                        f"[E, T, n_pre], {y_name} [E, R, n_post] and w0 [E, n_post, n_pre]")
    X, Y = np.asarray(d[x_name], np.float32), np.asarray(d[y_name], np.float32)
    if X.ndim != 3:
        _fail(path, f"{x_name} has shape {X.shape}; it must be [episodes, steps, n_pre]")
    if Y.ndim != 3 or Y.shape[0] != X.shape[0]:
        _fail(path, f"{y_name} has shape {Y.shape}; it must be [episodes, bins, n_post] with {X.shape[0]} episodes "
                    f"like {x_name}")
    E, T, n_pre = X.shape
    R, n_post = Y.shape[1], Y.shape[2]
    k = int(d["record_every"]) if "record_every" in d else 1
    if k < 1 or R * k != T:
        _fail(path, f"{y_name} has {R} bins and record_every = {k}, which do not make the {T} steps of {x_name} "
                    f"(bins x record_every must equal steps)")
    if not np.all(np.isfinite(X)):
        _fail(path, f"{x_name} has non-finite values; the inputs must be known at every step")
    if spiking and not np.all((X == 0) | (X == 1)):
        _fail(path, "s_pre must hold 0/1 spikes")
    if not np.isfinite(Y).any(axis=(0, 1)).any():
        _fail(path, f"{y_name} is NaN everywhere: no neuron was recorded")
    if "w0" in d:
        W0 = np.asarray(d["w0"], np.float32)
    elif "w" in d:
        W0 = np.asarray(d["w"], np.float32)[:, 0]
    else:
        _fail(path, "no array 'w0' (initial weights [E, n_post, n_pre]) and no 'w' to take them from; the student "
                    "starts where the recorded network started")
    if W0.shape != (E, n_post, n_pre):
        _fail(path, f"w0 has shape {W0.shape}; it must be [episodes, n_post, n_pre] = {(E, n_post, n_pre)}")
    if not np.all(np.isfinite(W0)):
        _fail(path, "w0 has non-finite values")
    out = {"inputs": X, "activity": Y, "w0": W0, "record_every": k}
    if "w" in d:
        W = np.asarray(d["w"], np.float32)
        if W.shape != (E, R, n_post, n_pre):
            _fail(path, f"w has shape {W.shape}; it must be [episodes, bins, n_post, n_pre] = {(E, R, n_post, n_pre)}")
        out["w"] = W
    if "dt" in d:
        out["dt"] = float(d["dt"])
    elif spiking:
        _fail(path, "no scalar 'dt' (the simulation step in ms of a spike recording)")
    return out


@TASKS.register("infer")
@dataclass(frozen=True)
class Infer(Task):
    Config: ClassVar[type] = InferConfig
    name: ClassVar[str] = "infer"

    @functools.cached_property
    def recording(self) -> dict:
        return read_recording(self.config.data.path, spiking=bool(self.network.spiking))

    @property
    def episodes(self) -> int:
        return int(self.recording["inputs"].shape[0])

    @property
    def n_holdout(self) -> int:
        return int(round(self.config.holdout * self.episodes))

    def sample(self, key, n):
        """``n`` recorded episodes from the held-out share (validation, distillation,
        verification), all episodes when ``holdout = 0``; cycled where ``n`` is larger."""
        return self._draw(key, n, np.arange(self.n_holdout) if self.n_holdout else np.arange(self.episodes))

    def training_sample(self, key, n):
        """``n`` episodes from the rest of the recording (meta-training)."""
        return self._draw(key, n, np.arange(self.n_holdout, self.episodes))

    @functools.cached_property
    def _arrays(self) -> dict:
        """The recording as device arrays (sampling runs inside jit: a gather by key)."""
        rec = self.recording
        A = rec["activity"]
        mask = np.isfinite(A)
        out = {("s_pre" if self.network.spiking else "x"): rec["inputs"], "W0": rec["w0"],
               "A_rec": np.where(mask, A, 0.0).astype(np.float32), "mask": mask.astype(np.float32)}
        if "w" in rec:
            out["W_rec"] = rec["w"]
        return {k: jnp.asarray(v) for k, v in out.items()}

    def _draw(self, key, n, pool):
        pool = jnp.asarray(pool, jnp.int32)
        order = jax.random.permutation(key, pool.shape[0])
        idx = pool[order[jnp.arange(n) % pool.shape[0]]]
        return {k: v[idx] for k, v in self._arrays.items()}

    def smooth(self, A):
        if not self.network.spiking or self.config.obs_tau <= 1.0:
            return A
        a = jnp.exp(-1.0 / self.config.obs_tau)

        def f(s, v):
            s = a * s + (1 - a) * v
            return s, s

        return jax.lax.scan(f, jnp.zeros(A.shape[1:], A.dtype), A)[1]

    def loss(self, rollout, episode):
        if self.config.observe == "weights":
            Wr = episode["W_rec"]
            return jnp.sum((rollout.weights - Wr) ** 2) / jnp.maximum(jnp.sum((Wr - episode["W0"]) ** 2), 1e-12)
        k = self.record_every
        act = rollout.activity if self.network.spiking else rollout.activity / k  # counts, or mean rate per bin
        m = episode["mask"]
        S, Sr = self.smooth(act * m), self.smooth(episode["A_rec"])
        n = jnp.maximum(jnp.sum(m, axis=0), 1.0)
        mean = jnp.sum(Sr * m, axis=0) / n
        den = jnp.sum(m * (Sr - mean) ** 2)
        return jnp.sum(m * (S - Sr) ** 2) / jnp.maximum(den, 1e-12)

    def explained(self, loss):
        return 1.0 - float(loss)  # the share of the recorded activity's variance explained


__all__ = ["Infer", "InferConfig", "read_recording"]
