"""Where to ask the neural rule: the local variables that held-out episodes visit.

Distillation fits equations to the neural rule's ``dw`` at the points the network really
visits (DESIGN.md section 7), not on a uniform grid: a rule is only defined by what it
does where it is used. In spiking networks most steps carry no spike and ``dw`` is then
only the drift; ``event_fraction`` of the samples are drawn from steps with a pre- or a
postsynaptic spike so that the event terms are seen. A network with ``strata`` (one group
label per synapse: the layers of ``rate_layers``) gives each group the same number of samples.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from discover.networks import present


class OutOfRangeWarning(UserWarning):
    """The neural rule is queried far outside the range it was trained on."""


def visited_samples(task, rule, params, key, episodes: int, samples: int, event_fraction: float = 0.5,
                    seed: int = 0):
    """Sample ``(X, dw, groups)`` from held-out episodes driven by the neural rule.

    Args:
      task, rule, params: the task and the trained rule.
      key: PRNG key of the held-out episodes.
      episodes: number of held-out episodes.
      samples: total samples (split evenly over episodes).
      event_fraction: share of samples at spike events (spiking networks only).
      seed: numpy seed of the subsampling.

    Returns:
      ``names, X [n, d], dw [n], groups [n]`` (``groups`` = episode index).
    """
    eps = task.keep_valid(task.sample(key, episodes))  # e.g. a teacher that diverged: left out
    episodes = int(task.valid_mask(eps).size)
    locs = jax.jit(jax.vmap(lambda e: task.visited(rule, params, e)))(eps)
    names = tuple(rule.inputs)
    rng = np.random.default_rng(seed)
    per = max(1, samples // episodes)
    # synapses in groups the samples should cover alike (a layer of rate_layers: the readout's
    # few synapses see the largest errors, and a uniform draw would hardly visit them)
    strata = getattr(task.network, "strata", None)
    rows, groups = [], []
    for e in range(episodes):
        cols = [present(task.network, np.asarray(locs[n][e], np.float64)) for n in names]  # real synapses only
        M = np.stack(cols, axis=-1)
        spikes = [i for i, n in enumerate(names) if n in ("s_pre", "s_post")]
        if spikes and (event_fraction > 0 or not task.between_spikes):
            is_event = M[:, spikes].max(axis=1) > 0.5
            ev, quiet = np.flatnonzero(is_event), np.flatnonzero(~is_event)
            share = event_fraction
            if not task.between_spikes:  # only events were simulated: the rest is padding
                quiet, share = quiet[:0], 1.0
            n_ev = min(len(ev), int(round(per * share)))
            pick = np.concatenate([rng.choice(ev, n_ev, replace=False) if n_ev else np.empty(0, int),
                                   rng.choice(quiet, min(len(quiet), per - n_ev), replace=False)])
        elif strata is not None and len(M) % len(strata) == 0:  # as many from each layer (rate_layers)
            label = np.tile(strata, len(M) // len(strata))
            parts = [np.flatnonzero(label == k) for k in np.unique(strata)]
            each = max(1, per // len(parts))
            pick = np.concatenate([rng.choice(p, min(len(p), each), replace=False) for p in parts])
        else:
            pick = rng.choice(len(M), min(len(M), per), replace=False)
        rows.append(M[pick])
        groups.append(np.full(len(pick), e))
    X = np.concatenate(rows)
    groups = np.concatenate(groups)
    dw = np.asarray(rule(params, {n: jax.numpy.asarray(X[:, i], jax.numpy.float32) for i, n in enumerate(names)}),
                    np.float64)
    _warn_out_of_range(rule, names, X)
    return names, X, dw, groups


def _warn_out_of_range(rule, names, X, z_max: float = 6.0):
    norm = getattr(rule, "norm", ())
    feats = getattr(rule, "features", ())
    for (shift, scale), n in zip(norm, feats):
        z = np.abs((X[:, names.index(n)] - shift) / scale)
        frac = float(np.mean(z > z_max))
        if frac > 0.01:
            warnings.warn(
                f"{frac:.1%} of the samples of {n!r} lie more than {z_max:g} training standard deviations "
                f"from the range the neural rule was trained on (mean {shift:g}, sd {scale:g}); its answers "
                "there are extrapolations. Widen the task's input ranges or retrain.",
                OutOfRangeWarning, stacklevel=3)
