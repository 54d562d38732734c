"""A task = an episode sampler + a meta-loss (learned_optimization's split).

Every task exposes the same small interface, used by the meta-optimizers, by
distillation (which asks where episodes visit the local variables) and by verification
(which runs any rule on held-out episodes):

- ``sample(key, n) -> episodes``: a batched pytree, leading axis ``n``;
- ``loss(rule, params, episode) -> scalar``: the meta-loss of one episode;
- ``loss_and_energy(...) -> (loss, energy)``: also the mean squared ``dw`` per synapse
  and step, which meta-training may penalize (a parsimony prior, see
  :mod:`discover.meta`);
- ``score(rule, params, episode) -> scalar``: a higher-is-better objective,
  ``1 - loss`` (for imitation that is the R^2 of the weight trajectory);
- ``visited(rule, params, episode) -> dict name -> [T, post, pre]``: the local
  variables every synapse saw at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..unroll import blocks, record_every, unroll


@dataclass(frozen=True)
class Task:
    network: object
    steps: int
    record_every: int = 1
    checkpoint_every: int | None = None  # steps per checkpointed segment
    truncate_every: int | None = None  # steps per truncated-backprop segment

    name = "task"

    def initial_state(self, episode):
        raise NotImplementedError

    def inputs(self, episode):
        raise NotImplementedError

    def sample(self, key, n):
        raise NotImplementedError

    def loss_and_energy(self, rule, params, episode):
        raise NotImplementedError

    def loss(self, rule, params, episode):
        return self.loss_and_energy(rule, params, episode)[0]

    def score(self, rule, params, episode):
        return 1.0 - self.loss(rule, params, episode)

    # -- shared machinery -------------------------------------------------------------------
    def trajectory(self, rule, params, episode):
        """Final state, weights recorded every ``record_every`` steps ``[T/k, post, pre]``, and
        the mean squared weight change per synapse and step."""
        final, Ws, _, energy = self.trajectory_with_activity(rule, params, episode)
        return final, Ws, energy

    def trajectory_with_activity(self, rule, params, episode):
        """As :meth:`trajectory`, plus the postsynaptic activity summed over each block of
        ``record_every`` steps ``[T/k, post]`` (spike counts, or summed rates)."""
        net = self.network
        act_name = "s_post" if "s_pre" in self.inputs(episode) else "y"

        def step(carry, inp):
            state, energy = carry
            new, local = net.step(rule, params, state, inp)
            return (new, energy + jnp.mean((new["W"] - state["W"]) ** 2)), local[act_name][:, 0]

        k = self.record_every
        if self.steps % k:
            raise ValueError(f"task.steps = {self.steps} is not a multiple of task.record_every = {k}")
        blocked = record_every(step, k, lambda carry, acts: (carry[0]["W"], acts.sum(axis=0)))
        xs = blocks(self.inputs(episode), k)
        chunk = None
        every = self.truncate_every or self.checkpoint_every
        if every:
            chunk = max(1, every // k)
            n_blocks = self.steps // k
            while n_blocks % chunk:
                chunk -= 1
        (final, energy), (Ws, acts) = unroll(blocked, (self.initial_state(episode), jnp.zeros(())), xs, chunk,
                                              truncate=bool(self.truncate_every))
        return final, Ws, acts, energy / self.steps

    def visited(self, rule, params, episode):
        net = self.network

        def step(state, inp):
            state, local = net.step(rule, params, state, inp)
            shape = state["W"].shape
            return state, {k: jnp.broadcast_to(v, shape) for k, v in local.items()}

        _, locs = jax.lax.scan(step, self.initial_state(episode), self.inputs(episode))
        return locs
