"""One synapse type of a task whose network has several: :class:`SynapseView`.

Distillation, the refit and verification work on one rule and the local variables its
synapses see. A view makes one synapse type of a multi-type task look like that: its
``simulate``, ``episode_loss`` and ``episode_score`` run the given rule on the type's
synapses and the other types' rules of ``base`` (the neural rule set) on theirs, and its
``visited`` returns the type's own local variables. Everything else is the task's.

Example:
  >>> view = SynapseView(task, "lat", neural, nparams)
  >>> rule, params = neural.part(nparams, "lat")
  >>> view.visited(rule, params, episode)["w"].shape    # [T, post, post]: lateral weights
"""

from __future__ import annotations

from ..rules.ruleset import RuleSet


class SynapseView:
    def __init__(self, task, synapse: str, base: RuleSet | None = None, base_params: dict | None = None):
        types = tuple(getattr(task.network, "synapse_types", ()))
        if synapse not in types:
            raise KeyError(f"network {task.network.kind} has no synapse type {synapse!r}; it has "
                           f"{', '.join(types) or 'one type only'}")
        self.task, self.synapse, self.base, self.base_params = task, synapse, base, base_params

    def __getattr__(self, name):  # everything a view does not change is the task's
        return getattr(self.task, name)

    def __repr__(self):
        return f"SynapseView({type(self.task).__name__}, {self.synapse!r})"

    def combined(self, rule, params):
        """The whole network's rule with ``rule`` on this type's synapses (without a base:
        ``rule`` on every type, e.g. a probe's driver)."""
        if self.base is None:
            return rule, params
        return self.base.replace(self.base_params, self.synapse, rule, params)

    def simulate(self, rule, params, episode, **kw):
        return self.task.simulate(*self.combined(rule, params), episode, **kw)

    def episode_loss(self, rule, params, episode, **kw):
        return self.task.episode_loss(*self.combined(rule, params), episode, **kw)

    def episode_score(self, rule, params, episode):
        return self.task.episode_score(*self.combined(rule, params), episode)

    def visited(self, rule, params, episode):
        return self.task.network.locals_of(self.task.visited(*self.combined(rule, params), episode), self.synapse)


def synapse_views(task, rule=None, params=None) -> list:
    """``[(type, view)]`` for each synapse type of a multi-type task (``[]`` for one type)."""
    return [(t, SynapseView(task, t, rule, params)) for t in getattr(task.network, "synapse_types", ())]


__all__ = ["SynapseView", "synapse_views"]
