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

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..networks import RateNetwork
from .base import Task


@dataclass(frozen=True)
class OjaPCA(Task):
    eigen_decay: float = 0.5
    scale_range: tuple[float, float] = (0.5, 2.0)
    w0_norm_range: tuple[float, float] = (0.3, 1.5)
    loss_window: int = 1

    name = "oja_pca"

    @property
    def n(self):
        return self.network.n_pre

    def sample(self, key, n_episodes):
        return jax.vmap(self._sample_one)(jax.random.split(key, n_episodes))

    def _sample_one(self, key):
        kq, ks, kw, kn, kx = jax.random.split(key, 5)
        Q, _ = jnp.linalg.qr(jax.random.normal(kq, (self.n, self.n)))
        lo, hi = jnp.log(self.scale_range[0]), jnp.log(self.scale_range[1])
        scale = jnp.exp(jax.random.uniform(ks, minval=lo, maxval=hi))
        lam = scale * self.eigen_decay ** jnp.arange(self.n)
        w_dir = jax.random.normal(kw, (self.n,))
        w_dir = w_dir / jnp.linalg.norm(w_dir)
        w_norm = jax.random.uniform(kn, minval=self.w0_norm_range[0], maxval=self.w0_norm_range[1])
        z = jax.random.normal(kx, (self.steps, self.n))
        x = (z * jnp.sqrt(lam)) @ Q.T
        return {"x": x, "W0": (w_dir * w_norm)[None, :], "pc1": Q[:, 0]}

    def initial_state(self, episode):
        return self.network.init_state(episode["W0"])

    def inputs(self, episode):
        return {"x": episode["x"]}

    def loss_and_energy(self, rule, params, episode):
        _, Ws, energy = self.trajectory(rule, params, episode)
        w = Ws[-self.loss_window:, 0, :]
        norm = jnp.linalg.norm(w, axis=-1)
        cos2 = (w @ episode["pc1"]) ** 2 / jnp.maximum(norm**2, 1e-12)
        return jnp.mean(1.0 - cos2 + (norm - 1.0) ** 2), energy


def make_oja_pca(n_inputs=5, steps=500, **kw) -> OjaPCA:
    return OjaPCA(network=RateNetwork(n_pre=n_inputs, n_post=1, activation="linear"), steps=steps, **kw)
