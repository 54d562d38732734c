"""The local-variable vocabulary: the only quantities a plasticity rule may see.

Every rule, equation, config and table uses these names (DESIGN.md section 2). A rule
receives them as arrays broadcast over the ``[post, pre]`` synapse matrix, so locality is
enforced by construction: no rule can see another synapse's weight or a gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy


@dataclass(frozen=True)
class Variable:
    name: str
    meaning: str
    networks: tuple[str, ...]  # "rate", "lif"
    binary: bool = False  # spike indicators: s**2 == s
    side: str = "synapse"  # "pre", "post", "synapse" or "global"
    unit: str = ""  # physical unit where variables share one (membrane potentials: "mV")


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in [
        Variable("x", "presynaptic rate (activity)", ("rate",), side="pre"),
        Variable("y", "postsynaptic rate (activity)", ("rate",), side="post"),
        Variable("s_pre", "presynaptic spike in this time step (0/1)", ("lif",), True, "pre"),
        Variable("s_post", "postsynaptic spike in this time step (0/1)", ("lif",), True, "post"),
        Variable("tr_pre", "fast presynaptic trace (+1 per spike, tau_pre)", ("lif",), side="pre"),
        Variable("tr_post", "fast postsynaptic trace (+1 per spike, tau_post)", ("lif",), side="post"),
        Variable("tr_pre_slow", "slow presynaptic trace (tau_x), read before its own spike", ("lif",), side="pre"),
        Variable("tr_post_slow", "slow postsynaptic trace (tau_y), read before its own spike", ("lif",), side="post"),
        Variable("v_post", "postsynaptic membrane potential (mV)", ("lif",), side="post", unit="mV"),
        Variable("psp", "presynaptic spike train filtered by the synaptic and membrane kernels: the PSP (mV) a "
                 "synapse of weight 1 adds at the soma", ("lif",), side="pre"),
        Variable("u_target", "a teaching membrane potential (mV), given by the task", ("lif",), side="post",
                 unit="mV"),
        Variable("elig", "eligibility trace: low-pass (tau_elig) of psp*(s_post/dt - phi(v_post))/delta, the score "
                 "of an escape-noise neuron's spikes (Urbanczik & Senn 2009)", ("lif",)),
        Variable("e_post", "the postsynaptic neuron's error, sent back through fixed random feedback weights "
                 "(rate_layers: p - target at the readout)", ("rate",), side="post"),
        Variable("e_pre", "the presynaptic neuron's error (rate_layers; 0 for the input layer)", ("rate",), side="pre"),
        Variable("w", "the synapse's weight", ("rate", "lif")),
        Variable("m", "global third factor (reward, error, neuromodulator)", ("rate", "lif"), side="global"),
        Variable("theta", "BCM sliding threshold, low-pass of y**2", ("rate",), side="post"),
        Variable("x_mean", "slow running average of x", ("rate",), side="pre"),
        Variable("y_mean", "slow running average of y", ("rate",), side="post"),
    ]
}

NAMES: tuple[str, ...] = tuple(VARIABLES)
BINARY: frozenset[str] = frozenset(n for n, v in VARIABLES.items() if v.binary)
SYMBOLS: dict[str, sympy.Symbol] = {n: sympy.Symbol(n, real=True) for n in NAMES}


def names_for(network: str) -> tuple[str, ...]:
    """Vocabulary names available in a network of kind ``"rate"`` or ``"lif"``."""
    if network not in ("rate", "lif"):
        raise ValueError(f"unknown network kind {network!r}; use 'rate' or 'lif'")
    return tuple(n for n, v in VARIABLES.items() if network in v.networks)


def reduce_binary(expr: sympy.Expr) -> sympy.Expr:
    """Apply ``s**k -> s`` for every spike indicator (0/1 variables) in ``expr``."""
    expr = sympy.expand(expr)
    subs = {}
    for p in expr.atoms(sympy.Pow):
        if p.base.is_Symbol and p.base.name in BINARY and p.exp.is_Integer and p.exp > 0:
            subs[p] = p.base
    return sympy.expand(expr.xreplace(subs)) if subs else expr
