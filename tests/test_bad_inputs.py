"""A corpus of bad inputs (issue 17): configs, ``--set`` values, equation strings, protocol
arguments, damaged run directories and unusable output paths.

Every case must end in exit code 2, a one-paragraph ``error:`` message that names the
problem, no traceback, and no file of an existing run directory changed; after a rejected
input the corrected input with the same ``--out`` must work. Cases run the command line
in-process (``plasticity.cli.main``), so an exception that escapes it fails the test.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from plasticity.cli import main

TINY = """\
name = "tiny"
[task]
name = "oja_pca"
steps = 20
n_pre = 3
[rule]
kind = "polynomial"
inputs = ["x", "y", "w"]
degree = 2
[meta]
steps = 2
batch = 2
val_episodes = 2
eval_every = 1
save_every = 1
[distill]
samples = 40
episodes = 2
bootstrap = 5
[verify]
episodes = 2
"""

IMITATE = """\
name = "imitate_bad"
[task]
name = "imitate"
steps = 10
n_pre = 2
n_post = 1
[task.teacher]
rule = "oja"
[network]
kind = "rate"
[rule]
kind = "polynomial"
degree = 2
[meta]
steps = 2
batch = 2
val_episodes = 2
eval_every = 1
"""

MLP = TINY.replace('kind = "polynomial"\ninputs = ["x", "y", "w"]\ndegree = 2', 'kind = "mlp"')

LIF = """\
name = "lif_bad"
[task]
name = "imitate"
steps = 20
record_every = 10
n_pre = 3
n_post = 1
[task.teacher]
rule = "stdp_pair"
[network]
kind = "lif"
post_mode = "given"
[rule]
kind = "polynomial"
degree = 2
[meta]
steps = 2
batch = 2
val_episodes = 2
eval_every = 1
"""


def edit(text: str, section: str, line: str) -> str:
    """``text`` with the ``key = value`` lines of ``line`` set in ``[section]`` (replacing
    the same keys there; a new section at the end)."""
    keys = {ln.split("=", 1)[0].strip() for ln in line.splitlines()}
    out, current, done = [], None, False
    for ln in text.splitlines():
        if ln.startswith("["):
            current = ln.strip()[1:-1]
        elif current == section and ln.split("=", 1)[0].strip() in keys:
            continue
        out.append(ln)
        if current == section and ln.startswith("[") and not done:
            out.append(line)
            done = True
    if not done:
        out += [f"[{section}]", line]
    return "\n".join(out) + "\n"


@dataclass
class Case:
    id: str
    argv: list[str]  # {cfg}: the case's config file; {run}: a finished tiny run (a copy); {tmp}: a fresh folder
    fragments: tuple[str, ...]  # each must appear in the message (whitespace-insensitive)
    config: str | bytes | None = None  # the text (or bytes) of {cfg}
    damage: Callable[[Path], None] | None = None  # applied to {run} before the command


def garbage(name: str, data: bytes = b"\x00\xffnot what it should be\x13" * 7):
    def f(run: Path):
        (run / name).write_bytes(data)
    return f


def truncate(name: str):
    def f(run: Path):
        p = run / name
        p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)])
    return f


def empty(name: str):
    def f(run: Path):
        (run / name).write_bytes(b"")
    return f


def remove(name: str):
    def f(run: Path):
        p = run / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return f


def cfg(section: str, line: str, base: str = TINY, *fragments: str, id: str) -> Case:
    return Case(id, ["discover", "{cfg}", "--out", "{tmp}/out", "--quiet"], fragments or (f"[{section}]",),
                config=edit(base, section, line))


def bad_set(item: str, *fragments: str, id: str) -> Case:
    return Case(id, ["discover", "{cfg}", "--out", "{tmp}/out", "--quiet", "--set", item], fragments, config=TINY)


def teacher(rule: str, *fragments: str, id: str, params: str = "") -> Case:
    text = IMITATE.replace('rule = "oja"', f"rule = {rule!r}" if "'" not in rule else f'rule = "{rule}"')
    if params:
        text = text.replace("[network]", f"params = {params}\n[network]")
    return Case(id, ["discover", "{cfg}", "--out", "{tmp}/out", "--quiet"], fragments, config=text)


def protocol(*args: str, fragments: tuple[str, ...], id: str) -> Case:
    return Case(id, ["protocol", *args], fragments)


LONG_SUM = " + ".join(f"{i}*x*y" for i in range(1, 1001))
DEEP = "(" * 400 + "x*y" + ")" * 400
DEEPER = "(" * 5000 + "x" + ")" * 5000

CASES = [
    # -- the config file itself
    Case("config-not-utf8", ["discover", "{cfg}", "--out", "{tmp}/out"], ("not UTF-8",),
         config=b'name = "caf\xe9"\n'),
    Case("config-bad-toml", ["discover", "{cfg}", "--out", "{tmp}/out"], ("is not valid TOML", "line"),
         config="[task\nsteps = 3\n"),
    Case("config-bad-toml-with-set", ["discover", "{cfg}", "--out", "{tmp}/out", "--set", "meta.seed=1"],
         ("is not valid TOML",), config="[task\nsteps = 3\n"),
    Case("config-not-utf8-with-set", ["discover", "{cfg}", "--out", "{tmp}/out", "--set", "meta.seed=1"],
         ("not UTF-8",), config=b'name = "caf\xe9"\n'),
    Case("config-missing", ["discover", "{tmp}/nosuch.toml", "--out", "{tmp}/out"], ("nosuch.toml",)),
    Case("config-is-a-directory", ["discover", "{tmp}", "--out", "{tmp}/out"], ("neither a file",)),
    Case("config-section-not-a-table", ["discover", "{cfg}", "--out", "{tmp}/out"], ("[task]", "table"),
         config='task = 3\n'),
    Case("config-misspelled-name", ["discover", "oja_pac"], ("did you mean", "oja")),
    # -- integers, floats, ranges
    cfg("task", "n_pre = 1000000000000000000000000000000", TINY, "[task] n_pre", "too large", id="huge-n_pre"),
    cfg("meta", "batch = 1000000000000000000000000000000", TINY, "[meta] batch", "too large", id="huge-batch"),
    cfg("meta", "seed = 1000000000000000000000000000000", TINY, "[meta] seed", id="huge-seed"),
    cfg("meta", "seed = -1", TINY, "[meta] seed", ">= 0", id="negative-seed"),
    cfg("task", "steps = 2000000000", TINY, "memory", id="too-long-for-memory"),
    cfg("rule", "timescales = {tau_pre = -1.0}", LIF, "[rule.timescales] tau_pre", "> 0", id="negative-timescale"),
    cfg("rule", "timescales = {tau_pre = 0.0}", LIF, "[rule.timescales] tau_pre", "> 0", id="zero-timescale"),
    cfg("rule", "timescales = {tau_nosuch = 5.0}", LIF, "tau_nosuch", id="unknown-timescale"),
    cfg("meta", "grad_clip = -1.0", TINY, "[meta] grad_clip", id="negative-grad-clip"),
    cfg("meta", "dw_penalty = -1.0", TINY, "[meta] dw_penalty", ">= 0", id="negative-dw-penalty"),
    cfg("meta", "learning_rate = -0.01", TINY, "[meta] learning_rate", "> 0", id="negative-learning-rate"),
    cfg("meta", "learning_rate = nan", TINY, "[meta] learning_rate", "finite", id="nan-learning-rate"),
    cfg("meta", "learning_rate = inf", TINY, "[meta] learning_rate", "finite", id="inf-learning-rate"),
    cfg("meta", "steps = 0", TINY, "[meta] steps", "> 0", id="zero-meta-steps"),
    cfg("meta", "val_episodes = -1", TINY, "[meta] val_episodes", id="negative-val-episodes"),
    cfg("meta", "train_episodes = -1", TINY, "[meta] train_episodes", ">= 0", id="negative-train-episodes"),
    cfg("meta", 'lr_schedule = "cosin"', TINY, "[meta] lr_schedule", "cosine", id="misspelled-schedule"),
    cfg("meta", "learnig_rate = 0.1", TINY, "learnig_rate", "did you mean", "learning_rate", id="misspelled-key"),
    cfg("meta", 'optimizer = "adm"', TINY, "[meta] optimizer", "did you mean", "adam", id="misspelled-optimizer"),
    cfg("meta", 'steps = "ten"', TINY, "[meta] steps", "integer", id="string-for-int"),
    cfg("meta", "steps = 2.5", TINY, "[meta] steps", "integer", id="float-for-int"),
    cfg("network", "dt = 30.0", LIF, "[network] dt", "tau_m", id="dt-above-tau-m"),
    cfg("network", "dt = -1.0", LIF, "[network] dt", "> 0", id="negative-dt"),
    cfg("network", "w_min = 1.0\nw_max = 0.5", TINY, "w_min", "w_max", id="w-min-above-w-max"),
    cfg("network", 'kind = "lfi"', LIF, "[network] kind", "did you mean", "lif", id="misspelled-network"),
    cfg("network", 'activation = "relu2"', TINY, "[network] activation", id="unknown-activation"),
    cfg("task", "steps = 15\nrecord_every = 10", LIF, "multiple of record_every", id="steps-not-multiple"),
    cfg("task", "fit_threshold = 2.0", IMITATE, "[task] fit_threshold", "[0, 1]", id="fit-threshold-above-1"),
    cfg("task", "max_diverged = 2.0", IMITATE, "[task] max_diverged", "[0, 1)", id="max-diverged-above-1"),
    cfg("task", "w0_range = [1.0, 0.0]", IMITATE, "[task] w0_range", "low <= high", id="reversed-range"),
    cfg("task", "w0_range = [0.0, nan]", IMITATE, "[task] w0_range", "finite", id="nan-in-range"),
    cfg("task", 'name = "oja_pac"', TINY, "[task] name", "did you mean", "oja_pca", id="misspelled-task"),
    cfg("task", 'observe = "weight"', IMITATE, "[task] observe", "weights", id="misspelled-observe"),
    cfg("rule", "hidden = [0]", MLP, "[rule] hidden", "> 0", id="zero-hidden"),
    cfg("rule", "hidden = [16, -4]", MLP, "[rule] hidden", "> 0", id="negative-hidden"),
    cfg("rule", 'kind = "polynomal"', TINY, "[rule] kind", "did you mean", "polynomial", id="misspelled-rule"),
    cfg("rule", 'inputs = ["x", "y", "q"]', TINY, "[rule] inputs", "'q'", id="unknown-rule-input"),
    cfg("rule", "degree = 0", TINY, "[rule] degree", id="zero-degree"),
    cfg("rule", "output_scale = 0.0", TINY, "[rule] output_scale", "> 0", id="zero-output-scale"),
    cfg("distill", "bootstrap = -1", TINY, "[distill] bootstrap", ">= 0", id="negative-bootstrap"),
    cfg("distill", 'backend = "sparce"', TINY, "[distill] backend", "did you mean", "sparse", id="misspelled-backend"),
    cfg("distill", 'policy = "verifed"', TINY, "[distill] policy", "did you mean", "verified", id="misspelled-policy"),
    cfg("distill", "event_fraction = 1.5", TINY, "[distill] event_fraction", id="event-fraction-above-1"),
    cfg("distill", "verified_tolerance = -0.1", TINY, "[distill] verified_tolerance", ">= 0",
        id="negative-verified-tolerance"),
    cfg("distill", "refine_steps = -5", TINY, "[distill] refine_steps", ">= 0", id="negative-refine-steps"),
    cfg("distill", "backend_options = {nosuch = 1}", TINY, "nosuch", "sparse", id="unknown-backend-option"),
    cfg("verify", 'canonical = ["nosuch"]', TINY, "[verify] canonical", "nosuch", id="unknown-canonical"),
    cfg("verify", 'canonical = ["ojaa"]', TINY, "did you mean", "oja", id="misspelled-canonical"),
    cfg("verify", "episodes = 0", TINY, "[verify] episodes", "> 0", id="zero-verify-episodes"),
    Case("run-unknown-backend", ["run", "{cfg}", "--out", "{tmp}/out", "--backend", "nosuch", "--quiet"],
         ("--backend", "nosuch", "sparse"), config=TINY),
    # -- --set
    bad_set("meta.seed", "--set", "SECTION.KEY=VALUE", id="set-without-value"),
    bad_set("seed=1", "--set", "SECTION.KEY=VALUE", id="set-without-section"),
    bad_set("nosuch.key=1", "nosuch", id="set-unknown-section"),
    bad_set("meta.steps=abc", "[meta] steps", "integer", id="set-not-a-number"),
    bad_set("meta.learning_rate=nan", "[meta] learning_rate", "finite", id="set-nan"),
    bad_set("name.sub=1", "name", "not a section", id="set-into-a-value"),
    bad_set("meta.steps=1000000000000000000000000", "[meta] steps", "too large", id="set-huge"),
    # -- equation strings
    teacher("x*z", "unknown symbol 'z'", id="teacher-unknown-symbol"),
    teacher("\u0445*y", "not ASCII", "looks like", "'x'", id="teacher-cyrillic-x"),
    teacher("x*y +", "syntax error", id="teacher-syntax-error"),
    teacher("", "empty", id="teacher-empty"),
    teacher("__import__('os').system('true')", "not allowed", id="teacher-import"),
    teacher("x.real*y", "not allowed", id="teacher-attribute"),
    teacher("eta*x*y", "eta", "params", id="teacher-missing-parameter"),
    teacher("eta*x*y", "[task.teacher.params] eta", "finite", params="{eta = nan}", id="teacher-nan-parameter"),
    teacher("x*y/0", "not finite", id="teacher-divide-by-zero"),
    teacher(LONG_SUM, "teacher", "diverged", id="teacher-1000-terms"),  # parses (500500*x*y), then runs away
    teacher("x*y + " * 4000 + "x", "too long", "20,000", id="teacher-too-long"),
    teacher(DEEPER, "nested", id="teacher-deeply-nested"),
    teacher("0.01*x*y*exp(1000)", "teacher", "0.01*x*y*exp(1000)", "overflow", id="teacher-overflows"),
    teacher("0.5*x*y", "teacher", "diverged", "w_min", id="teacher-diverges"),
    # -- protocol arguments
    protocol("pairing", "--rule", "stdp_pair", "--pairs", "-3", fragments=("--pairs", ">= 1"), id="protocol-negative-pairs"),
    protocol("pairing", "--rule", "stdp_pair", "--pairs", "0", fragments=("--pairs", ">= 1"), id="protocol-zero-pairs"),
    protocol("pairing", "--rule", "stdp_pair", "--dt", "0", fragments=("--dt", "> 0"), id="protocol-zero-dt"),
    protocol("pairing", "--rule", "stdp_pair", "--dt", "nan", fragments=("--dt", "finite"), id="protocol-nan-dt"),
    protocol("pairing", "--rule", "stdp_pair", "--dt", "-0.1", fragments=("--dt", "> 0"), id="protocol-negative-dt"),
    protocol("pairing", "--rule", "stdp_pair", "--dt", "0.3", fragments=("dt = 0.3", "lag"), id="protocol-dt-off-grid"),
    protocol("pairing", "--rule", "stdp_pair", "--freq", "0", fragments=("--freq", "> 0"), id="protocol-zero-freq"),
    protocol("pairing", "--rule", "stdp_pair", "--freq", "inf", fragments=("--freq", "finite"), id="protocol-inf-freq"),
    protocol("pairing", "--rule", "x*y", fragments=("x*y", "spik"), id="protocol-rate-rule"),
    protocol("pairing", "--rule", "stdp_pari", fragments=("stdp_pari", "did you mean", "stdp_pair"),
             id="protocol-misspelled-rule"),
    protocol("pairing", "--rule", "stdp_pair", "--param", "A_plus=nan", fragments=("A_plus", "finite"),
             id="protocol-nan-param"),
    protocol("pairing", "--rule", "stdp_pair", "--param", "A_plus", fragments=("--param", "NAME=VALUE"),
             id="protocol-param-without-value"),
    protocol("pairing", "--rule", "stdp_pair", "--param", "nosuch=1", fragments=("nosuch", "A_plus"),
             id="protocol-unknown-param"),
    protocol("pairing", "--rule", "stdp_pair", "--out", "{tmp}/file.txt/out.csv", fragments=("--out", "file.txt"),
             id="protocol-out-under-a-file"),
    protocol("pairing", "--rule", "{run}", "--param", "A_plus=1", fragments=("--param", "run directory"),
             id="protocol-param-with-run-dir"),
    # -- damaged run directories
    Case("distill-params-truncated", ["distill", "{run}", "--quiet"], ("params.npz", "plasticity discover"),
         damage=truncate("rule/params.npz")),
    Case("distill-params-empty", ["distill", "{run}", "--quiet"], ("params.npz", "plasticity discover"),
         damage=empty("rule/params.npz")),
    Case("distill-params-garbage", ["distill", "{run}", "--quiet"], ("params.npz", "plasticity discover"),
         damage=garbage("rule/params.npz")),
    Case("distill-params-missing", ["distill", "{run}", "--quiet"], ("params.npz", "plasticity discover"),
         damage=remove("rule/params.npz")),
    Case("distill-rule-json-truncated", ["distill", "{run}", "--quiet"], ("rule.json", "plasticity discover"),
         damage=truncate("rule/rule.json")),
    Case("distill-rule-json-garbage", ["distill", "{run}", "--quiet"], ("rule.json", "plasticity discover"),
         damage=garbage("rule/rule.json", b'{"kind": 3}')),
    Case("distill-manifest-damaged", ["distill", "{run}", "--quiet"], ("manifest.json",),
         damage=garbage("manifest.json")),
    Case("distill-config-damaged", ["distill", "{run}", "--quiet"], ("config.toml",), damage=garbage("config.toml")),
    Case("distill-no-run-dir", ["distill", "{tmp}/nosuch", "--quiet"], ("does not exist", "plasticity discover")),
    Case("distill-run-dir-is-a-file", ["distill", "{tmp}/afile", "--quiet"], ("afile", "not a run directory")),
    Case("verify-equations-empty", ["verify", "{run}", "--quiet"], ("equations.csv", "plasticity distill"),
         damage=empty("equations.csv")),
    Case("verify-equations-garbage", ["verify", "{run}", "--quiet"], ("equations.csv", "plasticity distill"),
         damage=garbage("equations.csv")),
    Case("verify-equations-truncated", ["verify", "{run}", "--quiet"], ("equations.csv", "plasticity distill"),
         damage=truncate("equations.csv")),
    Case("verify-equations-missing", ["verify", "{run}", "--quiet"], ("equations.csv", "plasticity distill"),
         damage=remove("equations.csv")),
    Case("report-equations-garbage", ["report", "{run}"], ("equations.csv", "plasticity distill"),
         damage=garbage("equations.csv")),
    Case("report-history-garbage", ["report", "{run}"], ("meta_history.csv", "plasticity discover"),
         damage=garbage("meta_history.csv")),
    Case("report-verification-garbage", ["report", "{run}"], ("verification.csv", "plasticity verify"),
         damage=garbage("verification.csv")),
    Case("report-manifest-garbage", ["report", "{run}"], ("manifest.json",), damage=garbage("manifest.json")),
    Case("discover-checkpoint-state-garbage", ["discover", "{run}/config.toml", "--out", "{run}", "--quiet"],
         ("state.json", "checkpoint"), damage=garbage("checkpoint/state.json")),
    Case("discover-checkpoint-params-garbage", ["discover", "{run}/config.toml", "--out", "{run}", "--quiet"],
         ("params.npz", "SHA-256"), damage=lambda run: garbage(
             str(next((run / "checkpoint").glob("step-*")).relative_to(run) / "params.npz"))(run)),
    Case("compare-not-a-run", ["compare", "{tmp}", "--out", "{tmp}/cmp"], ("not a run directory",)),
    # -- output paths
    Case("out-is-a-file", ["discover", "{cfg}", "--out", "{tmp}/afile", "--quiet"], ("--out", "afile", "file"),
         config=TINY),
    Case("out-under-a-file", ["discover", "{cfg}", "--out", "{tmp}/afile/run", "--quiet"], ("--out", "afile"),
         config=TINY),
    Case("out-under-proc", ["discover", "{cfg}", "--out", "/proc/self/nosuch/run", "--quiet"],
         ("--out", "/proc/self/nosuch/run"), config=TINY),
    Case("compare-out-is-a-file", ["compare", "{run}", "--out", "{tmp}/afile"], ("--out", "afile"),),
]


@pytest.fixture(autouse=True)
def _time_limit():
    """A case that is not rejected would train; end it as a failure instead of waiting."""
    import signal

    def stop(*_):
        raise TimeoutError("not rejected within 120 s: the bad input was accepted and work started")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny run, discovered, distilled and verified (each case damages its own copy)."""
    d = tmp_path_factory.mktemp("finished")
    (d / "tiny.toml").write_text(TINY)
    run = d / "run"
    assert main(["run", str(d / "tiny.toml"), "--out", str(run), "--quiet"]) == 0
    return run


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_clear_error_and_changes_nothing(case, finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    if case.damage:
        case.damage(run)
    (tmp_path / "afile").write_text("a file, not a folder\n")
    (tmp_path / "file.txt").write_text("a file\n")
    cfg_path = tmp_path / "case.toml"
    if case.config is not None:
        cfg_path.write_bytes(case.config if isinstance(case.config, bytes) else case.config.encode())
    argv = [a.format(cfg=cfg_path, run=run, tmp=tmp_path) for a in case.argv]
    before = _digest(run)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    flat = " ".join(err.split()).lower()
    for f in case.fragments:
        f = f.format(cfg=cfg_path, run=run, tmp=tmp_path)
        assert " ".join(f.split()).lower() in flat or f.lower() in "".join(err.split()).lower(), (f, err)
    assert _digest(run) == before, "a rejected input changed a file of the run directory"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), \
        "a rejected input left files in --out"


def test_a_rejected_config_then_the_corrected_one_with_the_same_out_works(tmp_path, capsys):
    out = tmp_path / "out"
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(TINY, "meta", "grad_clip = -1.0"))
    assert main(["discover", str(bad), "--out", str(out), "--quiet"]) == 2
    good = tmp_path / "good.toml"
    good.write_text(TINY)
    capsys.readouterr()
    assert main(["discover", str(good), "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    assert (out / "rule" / "params.npz").is_file()


def test_run_directory_files_are_readable_as_the_umask_allows(finished_run):
    old = os.umask(0o022)
    os.umask(old)
    for p in finished_run.rglob("*"):
        if p.is_file():
            assert p.stat().st_mode & 0o777 == 0o666 & ~old, p
