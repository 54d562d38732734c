"""Canonical plasticity rules, each written once as an equation and compiled.

Values and sources (DESIGN.md section 3):

- Hebb + decay: ``eta*(x*y - lam*w)``; textbook form (Dayan & Abbott 2001, ch. 8.2).
- Oja: ``eta*(x*y - y**2*w)``; Oja 1982, J. Math. Biol. 15:267, Eq. (3).
- Foldiak (anti-Hebbian, for lateral weights): ``-eta*x*y`` (``x`` the presynaptic output);
  Foldiak 1989, IJCNN, "Adaptive network for optimal linear feature extraction".
- BCM: ``eta*x*y*(y - theta)``, ``theta`` a low-pass of ``y**2``; Intrator & Cooper 1992,
  Neural Networks 5:3 (the objective-function form of Bienenstock, Cooper & Munro 1982).
- covariance: ``eta*(x - x_mean)*(y - y_mean)``; Sejnowski 1977, J. Math. Biol. 4:303.
- pair STDP, all-to-all additive: ``A_plus*tr_pre*s_post - A_minus*tr_post*s_pre``;
  Song, Miller & Abbott 2000, Nat. Neurosci. 3:919 (tau_pre = tau_post = 20 ms,
  A_minus = 1.05 A_plus, A_plus = 0.01 of w_max as in Brian2's example of that paper).
- triplet STDP, minimal all-to-all, visual cortex: Pfister & Gerstner 2006, J. Neurosci.
  26:9673, Table 4 (A2_plus = 0 [5e-10 in the table], A3_plus = 6.5e-3,
  A2_minus = 7.1e-3, A3_minus = 0, tau_plus = 16.8 ms, tau_minus = 33.7 ms,
  tau_y = 114 ms; tau_x = 101 ms is unused when A3_minus = 0).

- inhibitory STDP (Vogels et al. 2011, Science 334:1569): ``eta*(s_pre*(tr_post - alpha) +
  s_post*tr_pre)``, ``alpha = 2*rho0*tau`` = 0.2 for a target rate rho0 = 5 Hz, tau = 20 ms;
  for inhibitory synapses only (``population = "inh"``).

- error-driven (Urbanczik & Senn 2014, Neuron 81:521, Eq. 4 with the potential as the
  target): ``eta*psp*(u_target - v_post)``, ``eta = 1.7`` as in Jordan et al. 2021's
  error-driven task (e2l-cgp-snn, experiments/error_driven/write_job.py, ``lr``; their
  synapse adds ``eta * I * h`` per step of ``h`` ms, ``I`` the rule's output low-passed with
  tau_I = 100 ms: here ``[network] dw_tau``, and ``eta`` is per step of 1 ms).

- pseudo-gradient (feedback alignment with random feedback, SGD with symmetric feedback):
  ``-eta*e_post*x``; error-Hebbian ``-eta*e_post*e_pre``: Shervani-Tabar & Rosenbaum 2023,
  Nat. Commun. 14:1805 (the terms of their rule pool), for network ``rate_layers``.

- reward-driven (Urbanczik & Senn 2009, Neural Comput. 21:340, with the reward of
  Jordan et al. 2021's reward-driven task, m = +1 or -1): ``eta*elig*(m - 1)``, applied
  once per trial; ``eta = 1e8`` per trial (pA per unit of ``elig``, which is in mV per pA
  per ms) is the best of 5e7, 1e8 and 2e8 on 16 pattern sets of
  ``configs/reward_driven.toml`` (cumulative reward 174, 182, 137), not E2L's ``lr = 10``,
  which multiplies a trace of other units (a factor 1e9 in ``usrl_connection.h``, steps of
  0.01 ms).

Rate-rule learning rates (``eta``) and the Hebb decay ``lam`` are not from papers: they
are this project's defaults for inputs of order 1 and episodes of ~10^3 steps.
Weights of spiking rules are in units of ``w_max``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..equations import EquationError, parse_equation
from ..vocabulary import NAMES
from .symbolic import SymbolicRule


@dataclass(frozen=True)
class Canonical:
    name: str
    equation: str
    params: tuple[tuple[str, float], ...]
    network: str  # "rate", "lif", "rate_lateral" (a lateral synapse's rule) or "rate_layers"
    timescales: tuple[tuple[str, float], ...] = ()
    source: str = ""
    # the synapses it is for, where not every one ("inh": inhibitory synapses, a network with
    # [network] plastic = "inh"); such a rule is compared only with runs of those synapses
    population: str = ""


CANONICAL: dict[str, Canonical] = {
    c.name: c
    for c in [
        Canonical("hebb_decay", "eta*(x*y - lam*w)", (("eta", 0.01), ("lam", 0.5)), "rate",
                  source="Dayan & Abbott 2001, ch. 8.2"),
        Canonical("oja", "eta*(x*y - y**2*w)", (("eta", 0.01),), "rate",
                  source="Oja 1982, Eq. (3)"),
        Canonical("foldiak", "-eta*x*y", (("eta", 0.01),), "rate_lateral",
                  source="Foldiak 1989 (IJCNN, 'Adaptive network for optimal linear feature extraction'): "
                         "anti-Hebbian lateral weights, dq_ij = -alpha*y_i*y_j"),
        Canonical("bcm", "eta*x*y*(y - theta)", (("eta", 0.01),), "rate",
                  timescales=(("tau_theta", 20.0),),
                  source="Intrator & Cooper 1992"),
        Canonical("covariance", "eta*(x - x_mean)*(y - y_mean)", (("eta", 0.01),), "rate",
                  timescales=(("tau_mean", 50.0),), source="Sejnowski 1977"),
        Canonical("stdp_pair", "A_plus*tr_pre*s_post - A_minus*tr_post*s_pre",
                  (("A_plus", 0.01), ("A_minus", 0.0105)), "lif",
                  timescales=(("tau_pre", 20.0), ("tau_post", 20.0)),
                  source="Song, Miller & Abbott 2000"),
        Canonical("stdp_triplet",
                  "s_post*tr_pre*(A2_plus + A3_plus*tr_post_slow) - s_pre*tr_post*(A2_minus + A3_minus*tr_pre_slow)",
                  (("A2_plus", 0.0), ("A3_plus", 6.5e-3), ("A2_minus", 7.1e-3), ("A3_minus", 0.0)), "lif",
                  timescales=(("tau_pre", 16.8), ("tau_post", 33.7), ("tau_pre_slow", 101.0),
                              ("tau_post_slow", 114.0)),
                  source="Pfister & Gerstner 2006, Table 4 (visual cortex, minimal all-to-all)"),
        Canonical("us_error", "eta*psp*(u_target - v_post)", (("eta", 1.7),), "lif",
                  source="Urbanczik & Senn 2014; eta = 1.7 per ms as E2L's error-driven task (Jordan et al. 2021, "
                         "write_job.py: lr), a step of dt = 1 ms"),
        Canonical("homeostatic_stdp", "s_post*(lam*tr_pre + w_out)", (("lam", 0.01), ("w_out", -0.0015)), "lif",
                  timescales=(("tau_pre", 20.0),),
                  source="Jordan et al. 2021, correlation task's hand-made rule (e2l-cgp-snn, "
                         "nest/stdp-homeostatic-synapse-module: at a postsynaptic spike w += lambda*Wmax*(1 - "
                         "w/Wmax)**mu_plus*K_plus + Wout; generate_figure_data.py: lambda = 0.01, mu_plus = 0, "
                         "Wout = -0.0015, tau_plus = 20 ms, Wmax = 1)"),
        Canonical("vogels_istdp", "eta*(s_pre*(tr_post - alpha) + s_post*tr_pre)", (("eta", 0.01), ("alpha", 0.2)),
                  "lif", timescales=(("tau_pre", 20.0), ("tau_post", 20.0)), population="inh",
                  source="Vogels, Sprekeler, Zenke, Clopath & Gerstner 2011, Science 334:1569, inhibitory STDP: "
                         "w += eta*(x_post - alpha) at a presynaptic spike, w += eta*x_pre at a postsynaptic one, "
                         "traces of tau_STDP = 20 ms, alpha = 2*rho0*tau_STDP = 0.2 for rho0 = 5 Hz; eta = 0.01 is "
                         "this project's (in configs/inhibitory_balance.toml it brings the 30-Hz neuron below 8 Hz "
                         "within 2 s; the paper's 1e-4 takes minutes of simulated time)"),
        Canonical("pseudo_gradient", "-eta*e_post*x", (("eta", 0.1),), "rate_layers",
                  source="Shervani-Tabar & Rosenbaum 2023, Nat. Commun. 14:1805, the pseudo-gradient term "
                         "-theta_0*e_l*y_(l-1)^T (MetaLearning-Plasticity, optim.py); with random feedback it is "
                         "feedback alignment (Lillicrap et al. 2016), with symmetric feedback backprop's SGD step; "
                         "eta = 0.1 is ours (per sample)"),
        Canonical("error_hebbian", "-eta*e_post*e_pre", (("eta", 0.1),), "rate_layers",
                  source="Shervani-Tabar & Rosenbaum 2023, the 'error-based Hebbian' term -theta_1*e_l*e_(l-1)^T "
                         "(MetaLearning-Plasticity, optim.py: eHebb); eta = 0.1 is ours"),
        Canonical("us_reward", "eta*elig*(m - 1)", (("eta", 1e8),), "lif",
                  source="Urbanczik & Senn 2009 as in Jordan et al. 2021's reward-driven task (sim.py: "
                         "plasticity_rule); eta = 1e8 per trial, the best of 5e7, 1e8, 2e8 on 16 pattern sets of "
                         "configs/reward_driven.toml (E2L's lr = 10 multiplies a trace of other units)"),
    ]
}


def canonical_rule(name: str, params: dict[str, float] | None = None, **kw) -> SymbolicRule:
    """The canonical rule ``name`` with its published parameters, optionally overridden.

    ``params`` may also set the trace time constants (``tau_pre``, ...).
    """
    if name not in CANONICAL:
        raise KeyError(f"unknown canonical rule {name!r}; choose one of {', '.join(CANONICAL)}")
    c = CANONICAL[name]
    values = dict(c.params)
    ts = dict(c.timescales)
    for k, v in (params or {}).items():
        if k in values:
            values[k] = float(v)
        elif k.startswith("tau_"):
            ts[k] = float(v)
        else:
            raise KeyError(f"canonical rule {name!r} has no parameter {k!r}; its parameters are "
                           f"{', '.join(list(values) + list(ts))}")
    expr = parse_equation(c.equation, params=values.keys())
    return SymbolicRule.from_expr(expr, values, timescales=ts, label=kw.pop("label", name), **kw)


# Pfister & Gerstner 2006 (J. Neurosci. 26:9673), Tables 3-4 as in shared/data/README.md:
# (A2_plus, A3_plus, A2_minus, A3_minus, tau_x, tau_y); tau_plus = 16.8 ms and tau_minus =
# 33.7 ms in every row. "minimal" rows have no tau_x (A3_minus = 0: unused; 101 ms here).
PFISTER_GERSTNER: dict[str, tuple[float, float, float, float, float, float]] = {
    "visual_all_to_all_full": (5e-10, 6.2e-3, 7e-3, 2.3e-4, 101.0, 125.0),
    "visual_all_to_all_minimal": (0.0, 6.5e-3, 7.1e-3, 0.0, 101.0, 114.0),
    "visual_nearest_full": (8.8e-11, 5.3e-2, 6.6e-3, 3.1e-3, 714.0, 40.0),
    "visual_nearest_minimal": (0.0, 5e-2, 8e-3, 0.0, 101.0, 40.0),
    "hippocampal_all_to_all_full": (6.1e-3, 6.7e-3, 1.6e-3, 1.4e-3, 946.0, 27.0),
    "hippocampal_all_to_all_minimal": (5.3e-3, 8e-3, 3.5e-3, 0.0, 101.0, 40.0),
    "hippocampal_nearest_full": (4.6e-3, 9.1e-3, 3e-3, 7.5e-9, 575.0, 47.0),
    "hippocampal_nearest_minimal": (4.6e-3, 9.1e-3, 3e-3, 0.0, 101.0, 48.0),
}


def pfister_gerstner(name: str) -> SymbolicRule:
    """The triplet rule at one of Pfister & Gerstner's published parameter sets
    (:data:`PFISTER_GERSTNER`; ``"hippocampal_nearest_minimal"``...), with its trace mode
    (nearest-spike rows set traces to 1 at a spike); :func:`pfister_gerstner_free` counts
    the parameters they fitted."""
    if name not in PFISTER_GERSTNER:
        raise KeyError(f"unknown Pfister & Gerstner parameter set {name!r}; choose one of "
                       f"{', '.join(PFISTER_GERSTNER)}")
    a2p, a3p, a2m, a3m, tau_x, tau_y = PFISTER_GERSTNER[name]
    return canonical_rule("stdp_triplet", {"A2_plus": a2p, "A3_plus": a3p, "A2_minus": a2m, "A3_minus": a3m,
                                           "tau_pre": 16.8, "tau_post": 33.7, "tau_pre_slow": tau_x,
                                           "tau_post_slow": tau_y},
                          label=f"pg2006_{name}", traces="nearest" if "_nearest_" in name else "all_to_all")


def pfister_gerstner_free(name: str) -> int:
    """Free parameters Pfister & Gerstner fitted for a set: its nonzero amplitudes and the
    slow time constants they use (tau_plus and tau_minus were fixed from other data)."""
    a2p, a3p, a2m, a3m, _, _ = PFISTER_GERSTNER[name]
    full = name.endswith("_full")
    amps = 4 if full else sum(a != 0 for a in (a2p, a3p, a2m, a3m))
    return amps + (2 if full else 1)


def make_symbolic_rule(spec: str, params: dict[str, float] | None = None, **kw) -> SymbolicRule:
    """A canonical name or an equation string, with parameter values."""
    if spec in CANONICAL:
        return canonical_rule(spec, params, **kw)
    if isinstance(spec, str) and spec.strip().isidentifier() and spec.strip() not in NAMES:
        from ..suggest import did_you_mean

        hint = did_you_mean(spec.strip(), CANONICAL)
        if hint:  # a misspelled canonical name, not an equation of one unknown symbol
            raise EquationError(f"{spec!r} is neither a canonical rule nor an equation of the vocabulary.{hint} "
                                f"The canonical rules: {', '.join(CANONICAL)}")
    return SymbolicRule.from_string(spec, params, label=kw.pop("label", "custom"), **kw)
