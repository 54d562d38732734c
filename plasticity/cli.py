"""``plasticity run|discover|distill|verify|report|list``: parse, validate, call, report.

Bad input (a config, an equation string, a run directory, a backend that cannot run
here, a NaN during meta-training) ends with a one-paragraph message naming what is wrong
and how to fix it, exit code 2, and no traceback. Nothing already written is lost: every
stage writes its files atomically, and meta-training keeps its last good checkpoint.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import textwrap
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_CONFIG = "oja"


def builtin_configs() -> dict[str, Path]:
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.toml"))}


def resolve_config(spec: str | None) -> Path:
    """A path to a TOML file, or the name of a built-in config (``oja``, ``configs/oja.toml``)."""
    from discover.config import ConfigError

    if spec is None:
        spec = DEFAULT_CONFIG
    p = Path(spec)
    if p.is_file():
        return p
    builtins = builtin_configs()
    if p.stem in builtins and (p.suffix in ("", ".toml")):
        return builtins[p.stem]
    from discover.suggest import did_you_mean

    raise ConfigError(f"config {spec!r} is neither a file nor a built-in config; built-in configs: "
                      f"{', '.join(builtins) or '(none found)'}. Pass a TOML file path."
                      + did_you_mean(p.stem, builtins))


def load_with_overrides(path: Path, overrides: list[str] | None):
    """Load a config file, then apply ``--set section.key=value`` overrides (TOML values)."""
    import tomllib

    from discover.config import ConfigError, config_from_dict, load_config, read_toml

    if not overrides:
        return load_config(path)
    data = read_toml(path)
    file_data = copy.deepcopy(data)
    set_keys = set()
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set {item!r}: write SECTION.KEY=VALUE, e.g. --set meta.seed=1")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        *sections, leaf = key.strip().split(".")
        node = data
        for sec in sections:
            node = node.setdefault(sec, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {sec!r} is not a section")
        node[leaf] = value
        set_keys.add(key.strip())
    for note in drop_stale_keys(data, file_data, set_keys):
        print(f"note: {note}", file=sys.stderr)
    try:
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path} with --set {' '.join(overrides)}: {e}") from None


def drop_stale_keys(data: dict, file_data: dict, set_keys: set[str]) -> list[str]:
    """After ``--set`` picks another class for a section (``rule.kind=polynomial`` on a config
    written for an MLP) or another teacher, the file's keys that only the old one had
    (``hidden``; the old teacher's parameters) are dropped, each named in a note; keys given
    with ``--set`` are never dropped, so a misspelled one is still an error."""
    import dataclasses

    from discover.config import SELECTORS, section_class

    def drop(new: dict, old: dict, keep, prefix: str) -> list[str]:
        stale = [k for k in old if k in new and not keep(k) and f"{prefix}.{k}" not in set_keys]
        for k in stale:
            del new[k]
        return stale

    notes = []
    for sec, key in SELECTORS.items():
        new, old = data.get(sec, {}), file_data.get(sec, {})
        if f"{sec}.{key}" not in set_keys or not isinstance(new, dict) or new.get(key) == old.get(key):
            continue
        try:
            fields = {f.name for f in dataclasses.fields(section_class(sec, str(new[key])))}
        except user_errors():  # an unknown name: config_from_dict says so, with the choices
            continue
        stale = drop(new, old, fields.__contains__, sec)
        if stale:
            notes.append(f"--set {sec}.{key}={new[key]}: dropped [{sec}] {', '.join(stale)} of the config's "
                         f"{key} = {old.get(key)!r}, which {new[key]!r} does not take")
    teacher = data.get("task", {}).get("teacher") if isinstance(data.get("task"), dict) else None
    old_teacher = file_data.get("task", {}).get("teacher", {}) if isinstance(file_data.get("task"), dict) else {}
    if (isinstance(teacher, dict) and "task.teacher.rule" in set_keys and isinstance(teacher.get("params"), dict)
            and teacher.get("rule") != old_teacher.get("rule")):
        used = teacher_parameters(str(teacher.get("rule")), tuple(teacher["params"]))
        stale = drop(teacher["params"], old_teacher.get("params", {}), used.__contains__, "task.teacher.params")
        if stale:
            notes.append(f"--set task.teacher.rule: dropped [task.teacher.params] {', '.join(stale)} of the "
                         f"config's teacher {old_teacher.get('rule')!r}, which the new teacher does not use")
    return notes


def teacher_parameters(rule: str, names: tuple[str, ...]) -> set[str]:
    """The parameter names a teacher (canonical name or equation) takes; all of ``names``
    when the equation does not parse (config_from_dict then says why)."""
    from discover.equations import EquationError, free_parameters, parse_equation
    from discover.rules import CANONICAL
    from discover.rules.base import DEFAULT_TIMESCALES

    if rule in CANONICAL:
        c = CANONICAL[rule]
        return {k for k, _ in c.params} | {k for k, _ in c.timescales} | set(DEFAULT_TIMESCALES)
    try:
        return set(free_parameters(parse_equation(rule, params=names))) | set(DEFAULT_TIMESCALES)
    except EquationError:
        return set(names)


def user_errors() -> tuple[type, ...]:
    from discover.config import ConfigError
    from discover.equations import EquationError
    from discover.io import RunDirError
    from discover.meta import MetaTrainingError
    from discover.registry import PluginError
    from distill.backends import BackendUnavailable
    from distill.stage import DistillError

    return (ConfigError, EquationError, RunDirError, MetaTrainingError, BackendUnavailable, PluginError,
            DistillError)


def fail(message: str) -> int:
    print("error: " + textwrap.fill(str(message).strip(), 100, subsequent_indent="  ",
                                    replace_whitespace=False, break_long_words=False,
                                    break_on_hyphens=False), file=sys.stderr)
    return 2


def guarded(fn, *args, **kw) -> int:
    try:
        fn(*args, **kw)
        return 0
    except user_errors() as e:
        return fail(e.args[0] if e.args else str(e))
    except KeyboardInterrupt:
        return fail("interrupted; files written so far are intact (meta-training resumes from its checkpoint)")


# -- commands -------------------------------------------------------------------------------
def load_checked(spec: str | None, overrides: list[str] | None, backend: str | None = None):
    """The config, validated as a whole before any work: its sections (discover), then
    what only the later stages know (the distillation backend, canonical names), then the
    task, network and rule it builds (an import path that does not import, a teacher
    equation that does not parse; cheap: no simulation)."""
    from discover.build import build_task, check_size
    from distill.stage import check_config

    path = resolve_config(spec)
    cfg = load_with_overrides(path, overrides)
    check_config(cfg, backend)
    check_size(cfg, build_task(cfg))
    return path, cfg


def cmd_discover(args) -> None:
    from discover import distributed, stage
    from distill.stage import check_config

    several = distributed.check_arguments(args.coordinator, args.num_processes, args.process_id, args.distributed)
    if several:  # the config's own checks first (no JAX), then join: JAX must not have computed yet
        check_config(load_with_overrides(resolve_config(args.config), args.set))
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    _, cfg = load_checked(args.config, args.set)
    out = Path(args.out or Path("runs") / cfg.name)
    stage.run(cfg, out, progress=not args.quiet)
    if not distributed.is_writer():
        import jax

        print(f"discover: process {jax.process_index()} of {jax.process_count()} done (process 0 writes {out})")
        return
    print(f"discover: rule and meta-training history written to {out}")
    warn_fit(out)


def warn_fit(run_dir) -> None:
    """Print the run's poor-fit warning (``manifest.json`` ``fit``), if any."""
    from discover.io import read_manifest
    from discover.stage import fit_warning

    msg = fit_warning(read_manifest(run_dir).get("fit"))
    if msg:
        print(textwrap.fill("warning: poor fit: " + msg, 100, subsequent_indent="  "), file=sys.stderr)


def cmd_distill(args) -> None:
    from distill import stage

    front = stage.run(None, args.run_dir, backend=args.backend, progress=not args.quiet)
    sel = front[front["selected"]]
    if "synapse" in front:  # one rule per synapse type: one selected equation each
        picks = "; ".join(f"{r['synapse']}: dw = {r['equation']}" for _, r in sel.iterrows())
        print(f"distill: {len(front)} equations on the front; selected: {picks}")
    else:
        print(f"distill: {len(front)} equations on the front; selected: dw = {sel['equation'].iloc[0]}")
    print(f"         written to {Path(args.run_dir) / 'equations.csv'}")
    warn_fit(args.run_dir)


def cmd_verify(args) -> None:
    from distill import verify

    verify.run(None, args.run_dir, progress=not args.quiet)
    print(f"verify: {Path(args.run_dir) / 'verification.csv'}")


def cmd_report(args) -> None:
    from analysis import report

    paths = report.run(args.run_dir)
    print(f"report: {paths['report_md']}  {paths['report_html']}")


def cmd_compare(args) -> None:
    from analysis import compare

    out = Path(args.out or Path("runs") / "comparison")
    paths = compare.compare_runs(args.run_dirs, out)
    print(f"compare: {len(args.run_dirs)} runs; table {paths['csv']} and {paths['tex']}, figure {paths['png']}")


def cmd_run(args) -> None:
    from analysis import report
    from discover import stage as dstage
    from distill import stage as sstage
    from distill import verify

    path, cfg = load_checked(args.config, args.set, args.backend)
    out = Path(args.out or Path("runs") / cfg.name)
    quiet = args.quiet
    print(f"plasticity run: config {path}, run directory {out}", flush=True)
    dstage.run(cfg, out, progress=not quiet)
    front = sstage.run(cfg, out, backend=args.backend, progress=not quiet)
    verify.run(cfg, out, progress=not quiet)
    paths = report.run(out)
    from discover.io import read_csv, selected_equation

    ver = read_csv(out / "verification.csv").set_index("rule")
    if "synapse" in front:  # one rule per synapse type: each type's pick, then all of them at once
        from discover.io import selected_ids

        ids = set(selected_ids(out))
        print()
        for _, r in front[front["id"].astype(str).isin(ids)].iterrows():
            print(f"selected equation ({r['synapse']}):  dw = {r['equation']}")
        rel = ver.loc["equations", "relative_to_neural"] if "equations" in ver.index else float("nan")
        print(f"verified in the simulator, all equations at once: {rel:.1%} of the neural rule's objective "
              f"({len(front)} equations on the fronts)")
    else:
        sel = selected_equation(out)
        rel = ver.loc[f"eq{sel['id']}", "relative_to_neural"] if f"eq{sel['id']}" in ver.index else float("nan")
        print(f"\nselected equation:  dw = {sel['equation']}")
        print(f"verified in the simulator: {rel:.1%} of the neural rule's objective ({len(front)} equations on the "
              "front)")
    print(f"report: {paths['report_md']}")
    warn_fit(out)


def parse_params(assignments: list[str] | None) -> dict[str, float]:
    """``--param NAME=VALUE`` options as numbers."""
    from discover.config import ConfigError

    params = {}
    for item in assignments or []:
        name, _, value = item.partition("=")
        try:
            params[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--param {item!r}: write NAME=VALUE with a number, e.g. --param A_plus=0.01") from None
        if not math.isfinite(params[name.strip()]):
            raise ConfigError(f"--param {item!r}: {name.strip()} must be a finite number")
    return params


def protocol_rule(spec: str, assignments: list[str] | None):
    """A canonical name, an equation string, or a run directory (its neural rule)."""
    from discover.build import load_rule
    from discover.config import ConfigError
    from discover.rules import make_symbolic_rule

    params = parse_params(assignments)
    if Path(spec).is_dir():
        if params:
            raise ConfigError("--param applies to canonical rules and equations, not to a run directory's rule")
        return load_rule(spec)
    try:
        rule = make_symbolic_rule(spec, params, label="rule")
    except KeyError as e:
        raise ConfigError(e.args[0]) from None
    import jax

    return rule, rule.init(jax.random.key(0))


def number_list(text: str, flag: str, positive: bool = False) -> tuple[float, ...]:
    """``"0.1,10,20"`` as numbers; a clear error for anything else."""
    from discover.config import ConfigError

    out = []
    for part in text.split(","):
        try:
            v = float(part)
        except ValueError:
            raise ConfigError(f"{flag} {text!r}: {part.strip()!r} is not a number; write e.g. {flag} 0.1,10,20"
                              ) from None
        if not math.isfinite(v) or (positive and v <= 0):
            kind = "finite positive" if positive else "finite"
            raise ConfigError(f"{flag} {text!r}: {part.strip()} must be a {kind} number")
        out.append(v)
    return tuple(out)


def cmd_protocol(args) -> None:
    from analysis import protocols
    from discover.config import ConfigError
    from discover.io import atomic_write_text, check_out_file

    for flag, value in (("--dt", args.dt), ("--freq", args.freq), ("--train-interval", args.train_interval)):
        if not math.isfinite(value):
            raise ConfigError(f"{flag} {value}: must be a finite number")
        if value <= 0:
            unit = {"--dt": "the simulation step, ms", "--freq": "Hz", "--train-interval": "seconds"}[flag]
            raise ConfigError(f"{flag} {value}: must be > 0 ({unit})")
    for flag, value in (("--pairs", args.pairs), ("--trains", args.trains), ("--per-train", args.per_train)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value}: must be >= 1")
    if args.per_train is not None and args.pairs is not None:
        raise ConfigError("--pairs and --per-train both set the pairings of a protocol; give one (--per-train with "
                          "--trains)")
    freqs = number_list(args.freqs, "--freqs", positive=True) if args.freqs else (1, 5, 10, 20, 30, 40, 50)
    lags = number_list(args.lags, "--lags") if args.lags else (10, -10)
    if args.kind != "frequency":
        unused = [f for f, v in (("--freqs", args.freqs), ("--lags", args.lags), ("--trains", args.trains),
                                 ("--per-train", args.per_train)) if v is not None]
        if unused:
            raise ConfigError(f"{unused[0]} applies to the frequency protocol, not to {args.kind}")
    if args.kind != "data" and args.data:
        raise ConfigError(f"--data applies to the data protocol, not to {args.kind}")
    out = check_out_file(args.out) if args.out else None
    rule, params = protocol_rule(args.rule, args.param)
    try:
        if args.kind == "pairing":
            df = protocols.pairing_protocol(rule, params, pairs=args.pairs or 1, freq_hz=args.freq, dt=args.dt)
            fig = protocols.window_figure(df, label=args.rule)
        elif args.kind == "frequency":
            pairs = args.per_train or args.pairs or 60
            df = protocols.frequency_protocol(rule, params, freqs_hz=freqs, lags_ms=lags, pairs=pairs, dt=args.dt,
                                              trains=args.trains or 1, train_interval_s=args.train_interval)
            fig = protocols.frequency_figure(df, label=args.rule)
        elif args.kind == "triplet":
            df = protocols.triplet_protocol(rule, params, pairs=args.pairs or 60, freq_hz=args.freq, dt=args.dt)
            fig = protocols.triplet_figure(df, label=args.rule)
        else:
            df, error = protocols.data_protocol(rule, params, args.data or ["sjostrom2001"], dt=args.dt)
            fig = protocols.data_figure(df, label=args.rule)
            print(f"protocol: E = {error:.4g} on {len(df)} experiments (mean squared deviation in units of the SEM)",
                  file=sys.stderr)
    except protocols.ProtocolError as e:
        raise ConfigError(f"{args.kind} protocol: {e}") from None
    except KeyError as e:  # a rule over variables a spiking neuron does not have (x*y)
        raise ConfigError(f"--rule {args.rule!r}: the {args.kind} protocol pairs pre- and postsynaptic spikes of "
                          f"spiking neurons, and the {e.args[0]}; pass a spiking rule (e.g. stdp_pair, or an "
                          "equation of s_pre, s_post, tr_pre, tr_post, w)") from None
    if out is not None:
        atomic_write_text(out, df.to_csv(index=False))
        fig.savefig(out.with_suffix(".png"), dpi=150)
        print(f"protocol: {out} and {out.with_suffix('.png')}")
    else:
        print(df.to_csv(index=False), end="")


def cmd_export(args) -> None:
    from analysis import export
    from discover.config import ConfigError
    from discover.io import atomic_write_text, check_out_file

    out = check_out_file(args.out) if args.out else None
    suffix = {"brian2": ".py", "nestml": ".nestml"}[args.to]
    if out is not None and out.suffix != suffix:
        kind = "Python module" if args.to == "brian2" else "NESTML model"
        raise ConfigError(f"--out {out}: a {args.to} export is a {kind}; name it {out.with_suffix(suffix).name}")
    try:
        if Path(args.rule).is_dir():
            if args.param:
                raise ConfigError("--param applies to canonical rules and equations, not to a run directory's "
                                  "selected equation")
            rule = export.from_run_dir(args.rule)
        else:
            params = parse_params(args.param)
            try:
                rule = export.from_spec(args.rule, params)
            except KeyError as e:
                raise ConfigError(e.args[0]) from None
        text = export.export(rule, args.to)
    except export.ExportError as e:
        raise ConfigError(f"export {args.rule!r} --to {args.to}: {e}") from None
    if out is None:
        print(text, end="")
        return
    atomic_write_text(out, text)
    print(f"export: {out}")


def cmd_list(args) -> None:
    from discover.registry import META_OPTIMIZERS, NETWORKS, RULES, TASKS
    from discover.rules import CANONICAL
    from distill.backends import BACKENDS

    print("built-in configs:")
    for name, p in builtin_configs().items():
        first = next((ln[1:].strip() for ln in p.read_text().splitlines() if ln.startswith("#")), "")
        print(f"  {name:<18} {first}")
    print("tasks ([task] name):              " + ", ".join(TASKS))
    print("networks ([network] kind):        " + ", ".join(NETWORKS))
    print("rule kinds ([rule] kind):         " + ", ".join(n for n in RULES if n != "symbolic")
          + " (learnable); symbolic (equations)")
    print("meta-optimizers ([meta] optimizer): " + ", ".join(META_OPTIMIZERS) + " (cma_es, open_es: evolution "
          "strategies)")
    print("your own: name a class by import path, e.g. [task] name = \"my_module:MyTask\" (README, "
          "\"Bring your own task\")")
    print("canonical rules:")
    for c in CANONICAL.values():
        print(f"  {c.name:<13} [{c.network}] dw = {c.equation}   ({c.source})")
    print("distillation backends: " + ", ".join(BACKENDS))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="plasticity", description="Discover plasticity rules with meta-learning "
                                "and write them down as equations.")
    sub = p.add_subparsers(dest="command", required=True)

    def quiet(sp):
        sp.add_argument("--quiet", action="store_true", help="no progress output")

    def overrides(sp):
        sp.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="override a config value (TOML syntax), e.g. --set meta.seed=1; repeatable")

    sp = sub.add_parser("run", help="the whole pipeline (default: the built-in Oja demo)")
    sp.add_argument("config", nargs="?", default=None, help="TOML file or built-in config name")
    sp.add_argument("--out", help="run directory (default runs/<name>)")
    sp.add_argument("--backend", help="distillation backend (overrides [distill] backend)")
    quiet(sp)
    overrides(sp)
    sp.set_defaults(fn=cmd_run)

    sp = sub.add_parser("discover", help="meta-train a neural plasticity rule")
    sp.add_argument("config")
    sp.add_argument("--out")
    grp = sp.add_argument_group("several processes (jax.distributed; README: Many machines)")
    grp.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address and a free port")
    grp.add_argument("--num-processes", type=int, metavar="N", help="how many processes take part")
    grp.add_argument("--process-id", type=int, metavar="I", help="this process's number, 0 .. N-1")
    grp.add_argument("--distributed", action="store_true",
                     help="take the three from the cluster's environment (SLURM, Open MPI)")
    quiet(sp)
    overrides(sp)
    sp.set_defaults(fn=cmd_discover)

    sp = sub.add_parser("distill", help="fit equations to a trained rule")
    sp.add_argument("run_dir")
    sp.add_argument("--backend")
    quiet(sp)
    sp.set_defaults(fn=cmd_distill)

    sp = sub.add_parser("verify", help="re-run every rule in the simulator")
    sp.add_argument("run_dir")
    quiet(sp)
    sp.set_defaults(fn=cmd_verify)

    sp = sub.add_parser("report", help="figures, LaTeX tables and report of a run")
    sp.add_argument("run_dir")
    sp.set_defaults(fn=cmd_report)

    sp = sub.add_parser("compare", help="one table and one figure comparing the selected equations of several runs")
    sp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    sp.add_argument("--out", help="output folder (default runs/comparison)")
    sp.set_defaults(fn=cmd_compare)

    sp = sub.add_parser("protocol", help="STDP window, frequency dependence, triplets, or measured data, for any rule")
    sp.add_argument("kind", choices=["pairing", "frequency", "triplet", "data"],
                    help="pairing: the STDP window; frequency: dw vs pairing frequency; triplet: Wang et al. 2005's "
                         "triplets; data: the experiments of protocol tables (--data) beside the measured dw")
    sp.add_argument("--rule", required=True, help="canonical name, equation string, or run directory")
    sp.add_argument("--param", action="append", metavar="NAME=VALUE", help="rule parameter; repeatable")
    sp.add_argument("--dt", type=float, default=0.1, help="simulation step (ms)")
    sp.add_argument("--pairs", type=int, default=None, help="pairings (default: 1 for pairing, 60 for frequency)")
    sp.add_argument("--freq", type=float, default=1.0, help="pairing frequency (Hz), pairing and triplet protocols")
    sp.add_argument("--freqs", help="frequency protocol: comma-separated frequencies (Hz), e.g. 0.1,10,20")
    sp.add_argument("--lags", help="frequency protocol: comma-separated lags t_post - t_pre (ms), e.g. -25,0,25")
    sp.add_argument("--trains", type=int, default=None, help="frequency protocol: trains of --per-train pairings")
    sp.add_argument("--per-train", type=int, default=None, help="frequency protocol: pairings per train")
    sp.add_argument("--train-interval", type=float, default=10.0, help="seconds from one train to the next")
    sp.add_argument("--data", action="append", metavar="NAME|CSV",
                    help="data protocol: built-in data set (sjostrom2001, bipoo1998, wang2005) or protocol table; "
                         "repeatable")
    sp.add_argument("--out", help="CSV file (a PNG figure is written beside it); default: CSV to stdout")
    sp.set_defaults(fn=cmd_protocol)

    sp = sub.add_parser("export", help="a spiking rule as a Brian2 synapse module or a NESTML synapse model")
    sp.add_argument("rule", help="run directory (its selected equation), canonical name, or equation string")
    sp.add_argument("--to", required=True, choices=["brian2", "nestml"])
    sp.add_argument("--param", action="append", metavar="NAME=VALUE",
                    help="rule parameter, trace time constant (tau_pre=20) or weight bound (w_max=1); repeatable")
    sp.add_argument("--out", help="file to write (.py for Brian2, .nestml for NESTML); default: stdout")
    sp.set_defaults(fn=cmd_export)

    sp = sub.add_parser("list", help="built-in tasks, rules, configs and backends")
    sp.set_defaults(fn=cmd_list)
    return p


#: options whose value is a list that may start with a minus sign (``--lags -25,0,25``)
LIST_OPTIONS = ("--lags", "--freqs")


def join_list_values(argv: list[str]) -> list[str]:
    """``--lags -25,0,25`` as ``--lags=-25,0,25``: argparse takes a value that starts with
    ``-`` and is not a plain negative number for an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in LIST_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(join_list_values(sys.argv[1:] if argv is None else list(argv)))
    return guarded(args.fn, args)


if __name__ == "__main__":
    sys.exit(main())
