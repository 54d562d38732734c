"""mkdocs hooks: pages that are generated from the code, so the site cannot drift from it.

A page writes a marker and gets the text in its place:

- ``<!-- readme: HEADING -->``: that section of README.md (without its heading);
- ``<!-- vocabulary -->``: the local variables (``discover.vocabulary.VARIABLES``);
- ``<!-- registry: tasks|networks|rules|meta_optimizers|backends -->``: every registered
  class with its docstring and, for config sections, every key with its default;
- ``<!-- canonical -->``: the canonical rules with their parameters and sources;
- ``<!-- configs -->``: every built-in config, in full;
- ``<!-- commands -->``: ``plasticity COMMAND --help`` for every command.

Each tutorial ``notebooks/*.py`` (jupytext percent format) becomes the page
``tutorials/NAME.md`` (jupytext converts it; nothing is executed here: the tests run them).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!--\s*(readme|vocabulary|registry|canonical|configs|commands)\s*:?\s*(.*?)\s*-->")


def readme_section(heading: str) -> str:
    lines = (REPO / "README.md").read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"(#+)\s+(.*)", line)
        if m and m.group(2).strip() == heading:
            level = len(m.group(1))
            body = []
            for nxt in lines[i + 1:]:
                h = re.match(r"(#+)\s", nxt)
                if h and len(h.group(1)) <= level and not _in_fence(body):
                    break
                body.append(nxt)
            return "\n".join(body).strip() + "\n"
    raise KeyError(f"README.md has no section {heading!r} (docs marker <!-- readme: {heading} -->)")


def _in_fence(lines: list[str]) -> bool:
    return sum(1 for ln in lines if ln.lstrip().startswith("```")) % 2 == 1


def vocabulary() -> str:
    from discover.vocabulary import VARIABLES

    rows = ["| name | meaning | networks | side |", "|---|---|---|---|"]
    for v in VARIABLES.values():
        rows.append(f"| `{v.name}` | {v.meaning} | {', '.join(v.networks)} | {v.side} |")
    return "\n".join(rows) + "\n"


def _doc(obj) -> str:
    return textwrap.dedent(inspect.getdoc(obj) or "").strip()


def _first_paragraph(obj) -> str:
    return _doc(obj).split("\n\n")[0].replace("\n", " ")


def _config_table(cls) -> str:
    config = getattr(cls, "Config", None)
    if config is None or not dataclasses.is_dataclass(config):
        return ""
    rows = ["| key | default |", "|---|---|"]
    for f in dataclasses.fields(config):
        if f.name == "kind":
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        rows.append(f"| `{f.name}` | `{default!r}` |")
    return "\n".join(rows) + "\n"


def registry(which: str) -> str:
    from discover.registry import META_OPTIMIZERS, NETWORKS, RULES, TASKS
    from distill.backends import BACKENDS

    reg = {"tasks": TASKS, "networks": NETWORKS, "rules": RULES, "meta_optimizers": META_OPTIMIZERS,
           "backends": BACKENDS}[which]
    out = []
    for name in reg.names():
        cls = reg.get(name)
        out.append(f"### `{name}`\n\n{_first_paragraph(cls)}\n")
        table = _config_table(cls)
        if table:
            out.append(f"Keys of its config section:\n\n{table}")
    return "\n".join(out)


def canonical() -> str:
    from discover.rules import CANONICAL

    rows = ["| name | network | dw | parameters | time constants (ms) | source |", "|---|---|---|---|---|---|"]
    for c in CANONICAL.values():
        params = ", ".join(f"{k} = {v:g}" for k, v in c.params)
        taus = ", ".join(f"{k} = {v:g}" for k, v in c.timescales) or "—"
        rows.append(f"| `{c.name}` | {c.network} | `{c.equation}` | {params} | {taus} | {c.source} |")
    return "\n".join(rows) + "\n"


def configs() -> str:
    out = []
    for p in sorted((REPO / "configs").glob("*.toml")):
        text = p.read_text()
        first = next((ln[1:].strip() for ln in text.splitlines() if ln.startswith("#")), "")
        out.append(f"## `{p.name}`\n\n{first}\n\n```toml\n{text.rstrip()}\n```\n")
    return "\n".join(out)


def commands() -> str:
    import argparse

    from plasticity.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = [f"```text\n{parser.format_help().rstrip()}\n```\n"]
    for name, sp in sub.choices.items():
        sp.prog = f"plasticity {name}"
        out.append(f"## `plasticity {name}`\n\n```text\n{sp.format_help().rstrip()}\n```\n")
    return "\n".join(out)


def on_page_markdown(markdown, page, config, files):
    def fill(m):
        kind, arg = m.group(1), m.group(2)
        if kind == "readme":
            return readme_section(arg)
        if kind == "registry":
            return registry(arg)
        return {"vocabulary": vocabulary, "canonical": canonical, "configs": configs, "commands": commands}[kind]()

    return MARKER.sub(fill, markdown)


def tutorial_markdown(path: Path) -> str:
    import jupytext

    notebook = jupytext.reads(path.read_text(), fmt="py:percent")
    text = jupytext.writes(notebook, fmt="md")
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)  # jupytext's front matter
    source = f"notebooks/{path.name}"
    return (text.strip() + f"\n\n---\nThe source of this page is `{source}`; the tests execute it "
            f"(`tests/test_notebooks.py`). Run it with `python {source}`.\n")


def on_files(files, config):
    from mkdocs.structure.files import File

    for path in sorted((REPO / "notebooks").glob("*.py")):
        files.append(File.generated(config, f"tutorials/{path.stem}.md", content=tutorial_markdown(path)))
    return files
