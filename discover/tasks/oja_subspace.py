"""``oja_subspace``: k linear rate neurons with lateral connections must span the top-k
principal subspace of their inputs.

Confavreux et al. 2020 (NeurIPS), task 3 (several outputs, the principal subspace);
the network of Foldiak 1989 and Rubner & Tavan 1989: feed-forward weights ``W [k, n]``
and lateral weights ``L [k, k]`` (``rate_lateral``), both plastic, each synapse type with
its own learned rule (``[rule.ff]``, ``[rule.lat]``). Expected: an Oja-like feed-forward
rule (``x*y - y**2*w``) and an anti-Hebbian lateral one (``-x*y``), which decorrelates the
outputs so that they do not all find the first component.

Episodes: inputs from a zero-mean Gaussian with a random rotation ``Q``, eigenvalues
``scale * eigen_decay**i`` (``scale`` log-uniform in ``scale_range``), random initial
feed-forward weights (direction uniform, row norms in ``w0_norm_range``), lateral weights 0.

Meta-loss of an episode, over the last ``loss_window`` recorded ``W``:
``1 - overlap + norm_weight * mean_i (|w_i| - 1)**2``, with ``overlap = tr(P_W Q_k Q_k^T) / k``
the subspace overlap (1 when the outputs span the top-k components; ``P_W`` the projector
on the row space of ``W``, which is that of the outputs ``y = (I - L)^-1 W x``). The norm
term pins the scale of the feed-forward rule, as in ``oja_pca``. The objective that
verification reports (``score``) is the overlap alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import jax
import jax.numpy as jnp

from ..config import ConfigError, TaskConfig
from ..registry import TASKS
from .base import Task
from .oja_pca import rotated_inputs


def subspace_overlap(W, basis, eps: float = 1e-6):
    """``tr(P_W B B^T) / k`` for ``W [k, n]`` and an orthonormal ``basis [n, k]``: the share
    of the basis' subspace that the row space of ``W`` captures (1: the same subspace).
    ``eps`` (relative to the mean squared row norm) regularizes the Gram matrix of rows
    that are (nearly) parallel, where the projector and its gradient would blow up."""
    k = basis.shape[1]
    G = W @ W.T
    G = G + (eps * jnp.trace(G) / W.shape[0] + 1e-12) * jnp.eye(W.shape[0], dtype=W.dtype)
    A = W @ basis  # [k_w, k]
    return jnp.trace(A.T @ jnp.linalg.solve(G, A)) / k


@TASKS.register("oja_subspace")
@dataclass(frozen=True)
class OjaSubspace(Task):
    @dataclass(frozen=True)
    class Config(TaskConfig):
        name: str = "oja_subspace"
        steps: int = 1000
        n_pre: int = 8
        n_post: int = 3
        eigen_decay: float = 0.5
        scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
        w0_norm_range: list[float] = field(default_factory=lambda: [0.3, 1.5])
        loss_window: int = 1
        norm_weight: float = 1.0
        # the published rules verification runs beside the learned ones (Oja ff + Foldiak lateral)
        eta_ff: float = 0.02
        eta_lat: float = 0.02

        positive: ClassVar[tuple[str, ...]] = TaskConfig.positive + ("loss_window", "eigen_decay")
        nonnegative: ClassVar[tuple[str, ...]] = ("norm_weight",)

        def check(self, cfg):
            super().check(cfg)
            if cfg.network.kind != "rate_lateral":
                raise ConfigError("task oja_subspace needs linear rate neurons with lateral weights: set [network] "
                                  "kind = \"rate_lateral\"")
            if not 1 <= self.n_post < self.n_pre:
                raise ConfigError(f"task oja_subspace: [task] n_post = {self.n_post} outputs must be fewer than the "
                                  f"n_pre = {self.n_pre} inputs (a subspace of the input space)")
            if self.eigen_decay >= 1:
                raise ConfigError(f"[task] eigen_decay = {self.eigen_decay} must be below 1: with equal eigenvalues "
                                  "there is no principal subspace to find")
            if self.loss_window > self.steps // self.record_every:
                raise ConfigError(f"[task] loss_window = {self.loss_window} is more than the "
                                  f"{self.steps // self.record_every} recorded weights of an episode")

    name: ClassVar[str] = "oja_subspace"

    @property
    def n(self):
        return self.network.n_pre

    @property
    def k(self):
        return self.network.n_post

    def sample(self, key, n_episodes):
        return jax.vmap(self._sample_one)(jax.random.split(key, n_episodes))

    def _sample_one(self, key):
        kq, ks, kw, kn, kx = jax.random.split(key, 5)
        c = self.config
        x, Q = rotated_inputs(kq, ks, kx, self.n, self.steps, c.scale_range, c.eigen_decay)
        w = jax.random.normal(kw, (self.k, self.n))
        w = w / jnp.linalg.norm(w, axis=1, keepdims=True)
        norms = jax.random.uniform(kn, (self.k, 1), minval=c.w0_norm_range[0], maxval=c.w0_norm_range[1])
        return {"x": x, "W0": w * norms, "pcs": Q[:, :self.k]}

    def _terms(self, rollout, episode):
        Ws = rollout.weights[-self.config.loss_window:]
        overlap = jnp.mean(jax.vmap(lambda W: subspace_overlap(W, episode["pcs"]))(Ws))
        norm = jnp.mean((jnp.sqrt(jnp.sum(Ws**2, axis=-1) + 1e-12) - 1.0) ** 2)  # finite gradient at w = 0
        return overlap, norm

    def loss(self, rollout, episode):
        overlap, norm = self._terms(rollout, episode)
        return 1.0 - overlap + self.config.norm_weight * norm

    def score(self, rollout, episode):
        return self._terms(rollout, episode)[0]

    def behaviour(self, rules, episodes, points: int = 10):
        """Per rule and episode: the subspace overlap at ``points`` times of the episode
        (a learning curve, ``at`` in steps) and the mean row norm of ``W`` at its end."""
        rows = []
        every = max(1, (self.steps // self.record_every) // points)
        for name, (rule, params) in rules.items():
            def one(e, rule=rule, params=params):
                Ws = self.simulate(rule, params, e).weights
                return (jax.vmap(lambda W: subspace_overlap(W, e["pcs"]))(Ws[every - 1::every]),
                        jnp.mean(jnp.linalg.norm(Ws[-1], axis=-1)))

            curve, norm = jax.jit(jax.vmap(one))(episodes)
            for i in range(curve.shape[1]):
                rows.append((name, "overlap", (i + 1) * every * self.record_every, curve[:, i]))
            rows.append((name, "row_norm", None, norm))
        return rows

    def references(self):
        from ..rules import RuleSet, SymbolicRule, canonical_rule

        c = self.config
        oja = canonical_rule("oja", {"eta": c.eta_ff})
        # Oja 1982 feed-forward with Foldiak 1989 anti-Hebbian lateral weights; learning rates
        # are this project's (eta_ff, eta_lat), for inputs of variance ~1 and 10^3 steps. And
        # Oja without lateral plasticity (L stays 0): what the lateral rule is for
        return {"oja+foldiak": RuleSet.of({"ff": oja, "lat": canonical_rule("foldiak", {"eta": c.eta_lat})},
                                          label="oja+foldiak"),
                "oja_no_lateral": RuleSet.of({"ff": oja, "lat": SymbolicRule.from_string("0*w", label="none")},
                                             label="oja_no_lateral")}

    def reference_kind(self):
        return "published"


__all__ = ["OjaSubspace", "subspace_overlap"]
