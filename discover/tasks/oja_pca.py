"""``oja_pca``: one linear rate neuron must find the first principal component.

Confavreux et al. 2020 (NeurIPS), section 3.1: inputs from a zero-mean Gaussian whose
covariance has a decaying eigen-spectrum; after an episode of plasticity the weight
vector must be aligned with the first principal component and have unit norm. The
meta-loss of one episode is ``1 - cos^2(w_T, pc_1) + (|w_T| - 1)^2``, averaged over the
last ``loss_window`` recorded weight vectors.

For identifiability the episodes vary widely: a random rotation, a random overall input
scale (log-uniform in ``scale_range``), a random initial weight direction and norm. A
rule that only works at one input scale, or only from one starting point, is penalized.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import jax
import jax.numpy as jnp

from ..config import ConfigError, TaskConfig
from ..networks import RateNetwork
from ..registry import TASKS
from .base import Task


def rotated_inputs(kq, ks, kx, n: int, steps: int, scale_range, eigen_decay: float):
    """``(x [steps, n], Q [n, n])``: zero-mean Gaussian inputs whose covariance has the
    eigenvectors ``Q`` (a random rotation, from ``kq``) and the eigenvalues ``scale *
    eigen_decay**i`` (``scale`` log-uniform in ``scale_range``, from ``ks``); the episodes of
    ``oja_pca`` and ``oja_subspace``."""
    Q, _ = jnp.linalg.qr(jax.random.normal(kq, (n, n)))
    lo, hi = jnp.log(scale_range[0]), jnp.log(scale_range[1])
    scale = jnp.exp(jax.random.uniform(ks, minval=lo, maxval=hi))
    lam = scale * eigen_decay ** jnp.arange(n)
    return (jax.random.normal(kx, (steps, n)) * jnp.sqrt(lam)) @ Q.T, Q


@TASKS.register("oja_pca")
@dataclass(frozen=True)
class OjaPCA(Task):
    @dataclass(frozen=True)
    class Config(TaskConfig):
        name: str = "oja_pca"
        eigen_decay: float = 0.5
        scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0])  # overall input variance
        w0_norm_range: list[float] = field(default_factory=lambda: [0.3, 1.5])
        loss_window: int = 1

        positive: ClassVar[tuple[str, ...]] = TaskConfig.positive + ("loss_window",)

        def check(self, cfg):
            super().check(cfg)
            n = cfg.network
            if n.kind != "rate" or getattr(n, "activation", None) != "linear":
                raise ConfigError("task oja_pca needs a linear rate neuron: set [network] kind = \"rate\" and "
                                  "activation = \"linear\"")
            if self.n_post != 1:
                raise ConfigError("task oja_pca has one output neuron: set [task] n_post = 1")

    name: ClassVar[str] = "oja_pca"

    @property
    def n(self):
        return self.network.n_pre

    def sample(self, key, n_episodes):
        return jax.vmap(self._sample_one)(jax.random.split(key, n_episodes))

    def _sample_one(self, key):
        kq, ks, kw, kn, kx = jax.random.split(key, 5)
        c = self.config
        x, Q = rotated_inputs(kq, ks, kx, self.n, self.steps, c.scale_range, c.eigen_decay)
        w_dir = jax.random.normal(kw, (self.n,))
        w_dir = w_dir / jnp.linalg.norm(w_dir)
        w_norm = jax.random.uniform(kn, minval=c.w0_norm_range[0], maxval=c.w0_norm_range[1])
        return {"x": x, "W0": (w_dir * w_norm)[None, :], "pc1": Q[:, 0]}

    def loss(self, rollout, episode):
        w = rollout.weights[-self.config.loss_window:, 0, :]
        norm = jnp.linalg.norm(w, axis=-1)
        cos2 = (w @ episode["pc1"]) ** 2 / jnp.maximum(norm**2, 1e-12)
        return jnp.mean(1.0 - cos2 + (norm - 1.0) ** 2)


def make_oja_pca(n_inputs=5, steps=500, **kw) -> OjaPCA:
    return OjaPCA.make(RateNetwork(n_pre=n_inputs, n_post=1, activation="linear"), steps=steps, **kw)
