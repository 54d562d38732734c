r"""Export a spiking rule to Brian2 and NESTML: ``plasticity export RULE --to brian2|nestml``.

A rule of our spiking vocabulary is, per simulation step and synapse,
``dw = R + s_pre*Q + s_post*P + s_pre*s_post*C`` where ``P, Q, C, R`` are expressions of
the traces, ``w``, ``v_post`` and ``m``. The four parts are read off the equation at the
four spike combinations (``s`` is 0 or 1 in every simulated step, so this is exact for any
expression, not only for polynomials):

- ``R = f(0, 0)`` (between spikes), ``Q = f(1, 0) - R`` (at a presynaptic spike),
  ``P = f(0, 1) - R`` (at a postsynaptic spike), ``C = f(1, 1) - f(1, 0) - f(0, 1) + R``
  (both in the same step).

Brian2 and NESTML update a synapse at its events, so a rule exports when ``R = 0``: every
term needs a spike. (A term with no spike factor changes ``w`` in every step; it is refused
with the terms named.)

Conventions of our simulator that the exported models keep (``discover.networks.LIFNetwork``):

- traces jump by 1 at their neuron's spike and decay exactly, ``exp(-dt/tau)`` per step
  (Brian2's event-driven exponentials);
- the presynaptic pathway runs first: at a presynaptic spike the rule sees ``tr_pre`` with
  this spike added and ``tr_post`` without a postsynaptic spike of the same step; at a
  postsynaptic spike it sees ``tr_pre`` with a presynaptic spike of the same step and
  ``tr_post`` before its own increment, so ``t_post = t_pre`` potentiates (``+A_plus`` for
  pair STDP); slow traces are read before their own spike's increment (Pfister & Gerstner
  2006); a ``C`` term, and a postsynaptic part that reads ``tr_pre_slow``, learn whether the
  presynaptic neuron fired in the same step from the synaptic variable ``pre_until``;
- the synaptic input of a presynaptic spike uses the weight before that spike's update;
- ``w`` is clipped to ``[w_min, w_max]`` after each update.

Our simulator evaluates all parts of a step with the weight of the step's start and clips
once. Where a postsynaptic part reads ``w`` (or there is a same-step or ``tr_pre_slow``
part), the Brian2 model does the same: ON_PRE keeps the step's starting weight and its
unclipped change (``w_step``, ``q_step``) and ON_POST applies both parts to it. Otherwise
one difference is left: when both neurons spike in one step and ``w + Q`` crosses a bound,
Brian2 clips before adding ``P``, as Brian2's own STDP examples do
(``tests/test_export.py`` runs the protocols both ways and compares).

NEST delivers spikes with a delay and processes postsynaptic spikes through the neuron's
spike history (the dendritic delay), so same-step spike pairs follow NEST's own order
there; the NESTML model states it in its header.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import sympy

from discover.rules.base import TRACE_OF, timescales_read

TRACES = ("tr_pre", "tr_post", "tr_pre_slow", "tr_post_slow")
TRACE_TAU = {t: k for k, shaped in TRACE_OF.items() for t in shaped if t in TRACES}  # tr_pre -> tau_pre
SPIKING_VARIABLES = ("s_pre", "s_post", *TRACES, "v_post", "w", "m")
TARGETS = ("brian2", "nestml")


class ExportError(ValueError):
    """A rule that cannot be exported; the message says why and what to do."""


@dataclass(frozen=True)
class ExportRule:
    """A spiking rule ready to export: numbers in place of every parameter."""

    expr: sympy.Expr
    timescales: dict[str, float]  # ms, those of the traces the rule reads
    w_min: float | None = 0.0
    w_max: float | None = 1.0
    name: str = "rule"
    source: str = ""


@dataclass(frozen=True)
class EventParts:
    """``dw = R + s_pre*Q + s_post*P + s_pre*s_post*C`` (see the module docstring)."""

    on_pre: sympy.Expr
    on_post: sympy.Expr
    both: sympy.Expr
    between: sympy.Expr


def _sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


def event_parts(expr: sympy.Expr) -> EventParts:
    s_pre, s_post = _sym("s_pre"), _sym("s_post")

    def at(a, b):
        return expr.xreplace({s_pre: sympy.Integer(a), s_post: sympy.Integer(b)})

    f00, f10, f01, f11 = at(0, 0), at(1, 0), at(0, 1), at(1, 1)
    return EventParts(on_pre=sympy.expand(f10 - f00), on_post=sympy.expand(f01 - f00),
                      both=sympy.expand(f11 - f10 - f01 + f00), between=sympy.expand(f00))


def _is_zero(e: sympy.Expr) -> bool:
    return sympy.expand(e) == 0


def check_exportable(rule: ExportRule) -> EventParts:
    names = {str(s) for s in rule.expr.free_symbols}
    foreign = sorted(names - set(SPIKING_VARIABLES))
    if foreign:
        raise ExportError(f"the rule {rule.expr} reads {', '.join(foreign)}, which are not variables of a spiking "
                          f"synapse ({', '.join(SPIKING_VARIABLES)}); export takes spiking rules (a rule of a rate "
                          "network has no Brian2 or NEST synapse to run in)")
    if rule.expr.has(sympy.Min, sympy.Max):
        raise ExportError(f"the rule {rule.expr} uses min or max, which Brian2's code strings do not have; "
                          "write the bound with the weight limits w_min and w_max instead")
    parts = event_parts(rule.expr)
    if not _is_zero(parts.between):
        raise ExportError(f"the rule changes w in every step, not only at spikes: its part without a spike factor is "
                          f"{parts.between}. Brian2 and NEST update synapses at events, so export takes rules whose "
                          "every term has s_pre or s_post; refit with the sparse backend (it fits each event type "
                          "on its own rows) or remove the term")
    for k, tau in rule.timescales.items():
        if not (math.isfinite(tau) and tau > 0):
            raise ExportError(f"time constant {k} = {tau} ms: must be a positive number")
    return parts


# ----------------------------------------------------------------------------- rules to export


def from_run_dir(run_dir: str | Path) -> ExportRule:
    """The selected equation of a run directory, with the time constants it was found with
    (the trained rule's, learned where ``learn_timescales``: what ``equations.csv``
    ``timescales`` shows, unrounded) and the network's weight bounds."""
    from discover.build import load_rule
    from discover.equations import EquationError, parse_equation
    from discover.io import RunDirError, selected_equation
    from distill.stage import load_run_config

    cfg = load_run_config(run_dir)
    row = selected_equation(run_dir)
    if row is None:
        raise RunDirError(f"{run_dir} has no selected equation (equations.csv and verification.csv); run "
                          f"`plasticity distill {run_dir}` and `plasticity verify {run_dir}` first")
    rule, params = load_rule(run_dir)  # the time constants it was trained with (learned, where learned)
    learned = {k: float(v) for k, v in rule.tau(params).items()}
    text = str(row.get("sympy") or row.get("equation"))
    try:
        expr = parse_equation(text)
    except EquationError as e:
        raise RunDirError(f"{run_dir}/equations.csv: the selected equation {text!r} does not parse: {e}; "
                          f"rerun `plasticity distill {run_dir}`") from None
    net = cfg.network
    return ExportRule(expr=expr, timescales=_used(expr, learned), w_min=getattr(net, "w_min", 0.0),
                      w_max=getattr(net, "w_max", 1.0), name=_safe_name(Path(run_dir).name),
                      source=f"run directory {run_dir}, equation {row.get('id')} ({text})")


def _used(expr: sympy.Expr, ts: dict[str, float]) -> dict[str, float]:
    """The time constants (ms, unrounded) of the traces ``expr`` reads."""
    return {k: float(ts[k]) for k in timescales_read({str(s) for s in expr.free_symbols}, ts)}


def from_spec(spec: str, assignments: dict[str, float] | None = None) -> ExportRule:
    """A canonical name or an equation string with ``NAME=VALUE`` parameters (and
    ``w_min``, ``w_max``, the trace time constants)."""
    from discover.rules import make_symbolic_rule

    params = dict(assignments or {})
    w_min = params.pop("w_min", 0.0)
    w_max = params.pop("w_max", 1.0)
    rule = make_symbolic_rule(spec, params, label="rule")
    expr = rule.bound_expr()
    return ExportRule(expr=expr, timescales=_used(expr, dict(rule.timescales)), w_min=w_min, w_max=w_max,
                      name=_safe_name(spec), source=f"{spec!r}" + (f" with {assignments}" if assignments else ""))


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_").lower() or "rule"
    if len(name) > 40 or not name[0].isalpha():
        name = "rule"
    return name


# ----------------------------------------------------------------------------- printing


def _code(expr: sympy.Expr, renames: dict[str, str]) -> str:
    """An expression as Brian2 / NESTML code: ``**``, numbers in full precision."""
    expr = expr.xreplace({_sym(k): _sym(v) for k, v in renames.items()})
    return sympy.sstr(expr, full_prec=False, order="none")


def _clip(expr_code: str, rule: ExportRule, base: str = "w") -> str:
    # always clip(): Brian2's numpy target runs ``w = w + x`` in place, which would also
    # change a ``w_step = w`` taken before it (the same array)
    lo = "-inf" if rule.w_min is None else "w_min"
    hi = "inf" if rule.w_max is None else "w_max"
    return f"w = clip({base} + ({expr_code}), {lo}, {hi})"


def _header(rule: ExportRule) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("plasticity-discovery")
    except PackageNotFoundError:
        package = "unknown"
    taus = ", ".join(f"{k} = {v:g} ms" for k, v in rule.timescales.items()) or "none (no traces)"
    return (f"exported by plasticity-discovery {package} on {datetime.date.today().isoformat()}\n"
            f"from {rule.source}\n"
            f"dw = {rule.expr}\n"
            f"trace time constants: {taus}; w in [{rule.w_min}, {rule.w_max}]")


# Brian2 reads a name ending in _pre or _post as the pre- or postsynaptic group's variable,
# so the traces and their time constants get Brian2 names (as in Brian2's STDP examples).
BRIAN2_NAMES = {"tr_pre": "apre", "tr_post": "apost", "tr_pre_slow": "apre_slow", "tr_post_slow": "apost_slow",
                "tau_pre": "taupre", "tau_post": "taupost", "tau_pre_slow": "taupre_slow",
                "tau_post_slow": "taupost_slow", "v_post": "v_post_mV"}


def brian2_module(rule: ExportRule) -> str:
    """Python source of a module defining the synapse model as Brian2 strings."""
    parts = check_exportable(rule)
    names = {str(s) for s in rule.expr.free_symbols}
    traces = [t for t in TRACES if t in names]
    post_reads = {str(x) for x in (parts.on_post + parts.both).free_symbols}
    post_reads_pre_slow = "tr_pre_slow" in post_reads
    has_pre = not _is_zero(parts.on_pre)
    # our simulator evaluates a step's parts with the step's starting weight and clips once;
    # where that matters, ON_POST learns from ON_PRE what happened earlier in the same step
    need_pre_now = not _is_zero(parts.both) or post_reads_pre_slow or ("w" in post_reads and has_pre)
    n = BRIAN2_NAMES
    model = ["w : 1"]
    for t in traces:
        model.append(f"d{n[t]}/dt = -{n[t]} / {n[TRACE_TAU[t]]} : 1 (event-driven)")
    if "v_post" in names:
        model.append("v_post_mV = v_post / mV : 1  # our rules read the membrane in mV")
    if "m" in names:
        model.append("m : 1 (shared)  # the global third factor; set S.m during the run")
    if need_pre_now:
        model += ["pre_until : second  # t + dt after a presynaptic spike: same-step detection",
                  "w_step : 1  # w before this step's presynaptic update",
                  "q_step : 1  # this step's presynaptic change, before clipping"]

    on_pre = []
    if "tr_pre" in traces:
        on_pre.append("apre += 1")
    if need_pre_now:
        on_pre += ["w_step = w", f"q_step = {_code(parts.on_pre, n) if has_pre else '0'}", _clip("q_step", rule),
                   "pre_until = t + dt"]
    elif has_pre:
        on_pre.append(_clip(_code(parts.on_pre, n), rule))
    if "tr_pre_slow" in traces:
        on_pre.append("apre_slow += 1")

    on_post = []
    p = parts.on_post
    if need_pre_now:
        pre_now, w_old = sympy.Symbol("pre_now", real=True), sympy.Symbol("w_old", real=True)
        # the traces and weight our rule reads: tr_pre_slow before this step's presynaptic
        # increment, w at the step's start
        undo = {_sym("tr_pre_slow"): _sym("tr_pre_slow") - pre_now, _sym("w"): w_old}
        p = p.xreplace(undo) + pre_now * parts.both.xreplace(undo)
        on_post += ["pre_now = int(t < pre_until - 0.5 * dt)", "w_old = pre_now * w_step + (1 - pre_now) * w",
                    _clip(_code(p, n), rule, base="w_old + pre_now * q_step")]
    elif not _is_zero(p):
        on_post.append(_clip(_code(p, n), rule))
    if "tr_post" in traces:
        on_post.append("apost += 1")
    if "tr_post_slow" in traces:
        on_post.append("apost_slow += 1")

    namespace = [f'"{n[TRACE_TAU[t]]}": {rule.timescales[TRACE_TAU[t]]!r} * ms' for t in traces]
    if rule.w_min is not None:
        namespace.append(f'"w_min": {float(rule.w_min)!r}')
    if rule.w_max is not None:
        namespace.append(f'"w_max": {float(rule.w_max)!r}')
    brian_names = ", ".join(f"{k} -> {n[k]}" for k in (*traces, *(TRACE_TAU[t] for t in traces)))
    return BRIAN2_TEMPLATE.format(
        header=_header(rule), equation=str(rule.expr), timescales=json.dumps(rule.timescales),
        w_min=rule.w_min, w_max=rule.w_max, names=brian_names or "none",
        model="\n".join(model), on_pre="\n".join(on_pre) or "# no presynaptic part",
        on_post="\n".join(on_post) or "# no postsynaptic part",
        namespace=",\n    ".join(namespace),
        local_note=("\n# In ON_POST, `pre_now` is 1 when the presynaptic neuron spiked in this step and `w_old` the\n"
                    "# weight at the step's start: our simulator evaluates a step's parts with it and clips once."
                    if need_pre_now else ""),
    )


BRIAN2_TEMPLATE = '''"""A plasticity rule as a Brian2 synapse model.

{header}

Use::

    from brian2 import *
    import this_module as rule
    S = rule.make_synapses(inputs, neurons, target_var="g", w_scale=0.01)
    S.connect()
    S.w = "rand() * w_max"

``make_synapses`` returns an unconnected ``brian2.Synapses``. With ``target_var`` set, a
presynaptic spike adds ``w_scale * w`` (in the target variable's unit) to that variable of
the postsynaptic neuron before the weight is updated, as in plasticity-discovery's
simulator; without it the synapse only learns. A rule that reads ``v_post`` needs a target
group with a membrane variable ``v`` in volts (the rule reads it in mV).

Spike order (plasticity-discovery's and Brian2's schedule): the presynaptic pathway runs
first, so ON_PRE sees ``tr_post`` before a postsynaptic spike of the same step, and ON_POST
sees ``tr_pre`` with a presynaptic spike of the same step; every trace is read before its
own spike's increment except ``tr_pre`` at a presynaptic spike. Traces jump by 1 and decay
exactly (event-driven). ``w`` is clipped to [w_min, w_max] after each update.

Brian2 reads names ending in ``_pre`` / ``_post`` as the groups' variables, so the traces
and time constants have Brian2 names here: {names}.
"""

EQUATION = {equation!r}
TIMESCALES_MS = {timescales}
W_MIN = {w_min!r}
W_MAX = {w_max!r}

MODEL = """
{model}
"""

ON_PRE = """
{on_pre}
"""

ON_POST = """
{on_post}
"""
{local_note}

def namespace():
    """The constants the strings above use, with Brian2 units."""
    from brian2 import ms

    return {{
    {namespace}
    }}


def make_synapses(source, target, target_var=None, w_scale=1.0, **kwargs):
    """An unconnected ``brian2.Synapses`` from ``source`` to ``target`` running this rule.

    Args:
      source, target: Brian2 groups.
      target_var: the postsynaptic variable a presynaptic spike increments by
        ``w_scale * w`` (in that variable's unit), e.g. ``"g"``; ``None``: learning only.
      w_scale: the weight's scale in the target variable.
      kwargs: passed to ``brian2.Synapses`` (``dt``, ``name``, ``delay``, ...).
    """
    import brian2

    ns = namespace()  # importing this module does not import brian2
    on_pre = ON_PRE
    if target_var is not None:
        var = target.variables[target_var]
        ns["w_scale"] = float(w_scale)
        ns["drive_unit"] = brian2.get_unit(var.dim)
        on_pre = f"{{target_var}}_post += w_scale * w * drive_unit\\n" + ON_PRE
    ns.update(kwargs.pop("namespace", {{}}))
    return brian2.Synapses(source, target, model=MODEL, on_pre=on_pre, on_post=ON_POST, namespace=ns, **kwargs)
'''


def nestml_model(rule: ExportRule) -> str:
    """A NESTML synapse model (NESTML 8/9 syntax) for the rule."""
    parts = check_exportable(rule)
    names = {str(s) for s in rule.expr.free_symbols}
    if not _is_zero(parts.both) or "tr_pre_slow" in {str(s) for s in parts.on_post.free_symbols}:
        raise ExportError(f"the rule has a part for a presynaptic and a postsynaptic spike in the same step "
                          f"({parts.both}) or reads tr_pre_slow at a postsynaptic spike; NEST orders such spikes "
                          "by its delays, not by time step, so NESTML export takes rules without them. Export to "
                          "Brian2 instead (--to brian2)")
    if "m" in names:
        raise ExportError("the rule reads the third factor m; NESTML synapses receive neuromodulation through a "
                          "volume transmitter, which this export does not write. Export to Brian2 (--to brian2)")
    traces = [t for t in TRACES if t in names]
    name = f"{rule.name}_synapse"
    renames = {"v_post": "V_m"} if "v_post" in names else {}
    lines = ["# " + ln for ln in _header(rule).splitlines()]
    lines += [
        "#",
        "# Spike order: at a presynaptic spike the rule reads tr_pre after the spike's increment and",
        "# tr_post as it is; at a postsynaptic spike it reads every trace before its own increment.",
        "# NEST delivers spikes with the connection's delay and processes postsynaptic spikes",
        "# through the neuron's spike history, so pre/post pairs closer than one delay follow NEST's",
        "# order, not plasticity-discovery's same-step rule.",
        f"model {name}:",
        "    state:",
        "        w real = 1.",
    ]
    lines += [f"        {t} real = 0." for t in traces]
    lines += ["", "    parameters:"]
    lines += [f"        {TRACE_TAU[t]} ms = {rule.timescales[TRACE_TAU[t]]!r} ms" for t in traces]
    lines.append(f"        w_min real = {-1e300 if rule.w_min is None else float(rule.w_min)!r}")
    lines.append(f"        w_max real = {1e300 if rule.w_max is None else float(rule.w_max)!r}")
    if traces:
        lines += ["", "    equations:"]
        lines += [f"        {t}' = -{t} / {TRACE_TAU[t]}" for t in traces]
    lines += ["", "    input:", "        pre_spikes <- spike", "        post_spikes <- spike", "",
              "    output:", "        spike", ""]

    def update(e):
        return f"        w = min(w_max, max(w_min, w + ({_code(e, renames)})))"

    lines.append("    onReceive(post_spikes):")
    if not _is_zero(parts.on_post):
        lines.append(update(parts.on_post))
    lines += [f"        {t} += 1" for t in ("tr_post", "tr_post_slow") if t in traces]
    if _is_zero(parts.on_post) and not any(t in traces for t in ("tr_post", "tr_post_slow")):
        lines.append("        w = w")
    lines += ["", "    onReceive(pre_spikes):"]
    if "tr_pre" in traces:
        lines.append("        tr_pre += 1")
    if not _is_zero(parts.on_pre):
        lines.append(update(parts.on_pre))
    if "tr_pre_slow" in traces:
        lines.append("        tr_pre_slow += 1")
    lines += ["        emit_spike(w)", "", "    update:", "        integrate_odes()", ""]
    return "\n".join(lines)


def export(rule: ExportRule, to: str) -> str:
    if to == "brian2":
        return brian2_module(rule)
    if to == "nestml":
        return nestml_model(rule)
    raise ExportError(f"--to {to!r}: choose one of {', '.join(TARGETS)}")


__all__ = ["ExportError", "ExportRule", "EventParts", "event_parts", "check_exportable", "from_run_dir", "from_spec",
           "brian2_module", "nestml_model", "export", "TARGETS"]
