r"""The report as blocks (heading, paragraph, note, math, table, figure, code) and its two renderers.

:mod:`analysis.report` builds a report once as a list of blocks; :func:`to_markdown` and
:func:`to_html` print it, so ``report.md`` and ``report.html`` cannot drift apart. The
HTML page is one self-contained file (CSS inline, figures embedded as base64 PNG, the
selected equation typeset to an image with matplotlib's mathtext).
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str  # inline markup: `code` and **bold** only


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Math:
    latex: str  # display math, without delimiters
    plain: str = ""  # the same equation as plain text
    image: bytes | None = None  # PNG of the typeset equation (HTML only)


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]  # cells in inline markup


@dataclass(frozen=True)
class FigureBlock:
    path: str  # relative to the run directory
    caption: str
    png: bytes = field(repr=False, default=b"")


@dataclass(frozen=True)
class Code:
    text: str
    language: str = ""
    summary: str = ""  # HTML: a collapsed <details> with this summary


Block = Heading | Para | Note | Math | Table | FigureBlock | Code

# --------------------------------------------------------------------------- formatting


def number(x: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant figures for Markdown/HTML (``n/a`` for NaN)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x) or x == 0:
        return str(x) if x else "0"
    text = f"{x:#.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa.rstrip('.')}e{int(exponent)}"
    return text.rstrip(".")


def code(text: Any) -> str:
    text = str(text)
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


def interval(lo: Any, hi: Any) -> str:
    lo, hi = float(lo), float(hi)
    if math.isnan(lo) or math.isnan(hi):
        return "n/a"
    return f"[{number(lo)}, {number(hi)}]"


def seconds(s: Any) -> str:
    try:
        s = float(s)
    except (TypeError, ValueError):
        return str(s)
    if math.isnan(s):
        return "n/a"
    if s >= 120:
        return f"{s:.0f} s ({s / 60:.1f} min)"
    return f"{s:.3g} s"


def equation_image(latex: str) -> bytes | None:
    """PNG of ``$\\Delta w = latex$`` typeset by mathtext, or None if it cannot parse."""
    from . import style

    text = rf"$\Delta w = {latex}$"
    if not latex or not style.mathtext_ok(text):
        return None
    import matplotlib
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties

    buf = io.BytesIO()
    with matplotlib.rc_context(style.RC):
        mathtext.math_to_image(text, buf, prop=FontProperties(size=14), dpi=150, format="png")
    return buf.getvalue()


# --------------------------------------------------------------------------- renderers


def _md_cell(text: str) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block]) -> str:
    """Render blocks as GitHub-flavoured Markdown (math as ``$$...$$``)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Note):
            out.append("> **Note:** " + b.text)
        elif isinstance(b, Math):
            out.append(f"$$\n{b.latex}\n$$")
            if b.plain:
                out.append(f"As text: {code('dw = ' + b.plain)}")
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.header) + " |",
                     "|" + "|".join("---" for _ in b.header) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, FigureBlock):
            pdf = Path(b.path).with_suffix(".pdf").as_posix()
            out.append(f"![{b.caption}]({b.path})\n\n*{b.caption}* (PDF: `{pdf}`)")
        elif isinstance(b, Code):
            prefix = f"{b.summary}:\n\n" if b.summary else ""
            out.append(f"{prefix}```{b.language}\n{b.text}\n```")
    return "\n\n".join(out) + "\n"


_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _inline_html(text: str) -> str:
    """`code` and **bold** inline markup to HTML, everything else escaped."""
    parts = re.split(r"(``.+?``|`[^`]+`)", str(text))
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append("<code>" + html.escape(part.strip("`")) + "</code>")
        else:
            out.append(_BOLD.sub(r"<strong>\1</strong>", html.escape(part)))
    return "".join(out)


def _b64(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; border-bottom: 2px solid #0072B2; padding-bottom: .3rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
th, td { padding: .25rem .7rem; text-align: left; vertical-align: top; }
thead th { border-top: 2px solid #222; border-bottom: 1px solid #222; }
tbody tr:last-child td { border-bottom: 2px solid #222; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .85rem; }
code { background: #f3f3f3; padding: 0 .2rem; border-radius: 3px; }
pre { background: #f6f6f6; padding: .7rem; overflow-x: auto; }
.note { background: #fff6e0; border-left: 4px solid #E69F00; padding: .4rem .8rem; }
.math { margin: 1rem 0; padding: .6rem 1rem; background: #f7fbff; border-left: 4px solid #0072B2; }
.math img { display: block; max-width: 100%; margin-bottom: .4rem; }
figure { margin: 1rem 0; } figure img { max-width: 100%; }
figcaption { font-size: .85rem; color: #555; }
""".strip()


def to_html(blocks: Sequence[Block], title: str = "Report") -> str:
    """Render blocks as one self-contained HTML page (inline CSS, base64 images)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_inline_html(b.text)}</p>")
        elif isinstance(b, Note):
            out.append(f'<p class="note"><strong>Note:</strong> {_inline_html(b.text)}</p>')
        elif isinstance(b, Math):
            img = (f'<img src="{_b64(b.image)}" alt="{html.escape(b.latex)}">' if b.image else "")
            out.append(
                f'<div class="math">{img}<div>LaTeX: <code>{html.escape(b.latex)}</code></div>'
                + (f"<div>Plain text: <code>dw = {html.escape(b.plain)}</code></div>" if b.plain else "")
                + "</div>"
            )
        elif isinstance(b, Table):
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.header)
            body = "\n".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>"
                             for row in b.rows)
            out.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>")
        elif isinstance(b, FigureBlock):
            pdf = Path(b.path).with_suffix(".pdf").as_posix()
            out.append(
                f'<figure><img src="{_b64(b.png)}" alt="{html.escape(b.caption)}">'
                f"<figcaption>{html.escape(b.caption)} (files: <code>{html.escape(b.path)}</code>, "
                f"<code>{html.escape(pdf)}</code>)</figcaption></figure>"
            )
        elif isinstance(b, Code):
            pre = f"<pre><code>{html.escape(b.text)}</code></pre>"
            if b.summary:
                pre = f"<details><summary>{html.escape(b.summary)}</summary>{pre}</details>"
            out.append(pre)
    body = "\n".join(out)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


__all__ = ["Heading", "Para", "Note", "Math", "Table", "FigureBlock", "Code", "Block", "number", "code", "interval",
           "seconds", "equation_image", "to_markdown", "to_html"]
