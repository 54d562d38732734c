"""Hints for misspelled names: the nearest valid name, and look-alike letters.

Used by every message that rejects a name (a config key, a choice, a registered class, a
canonical rule, a built-in config, an equation's symbol), so that a typo is answered
with the fix, and a Cyrillic ``х`` that looks like ``x`` is named as such.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable

# letters that render like ASCII ones (Cyrillic, Greek); the usual confusables of names
LOOKALIKES = {
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y", "\u0445": "x",
    "\u0456": "i", "\u0455": "s", "\u0458": "j", "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K",
    "\u041c": "M", "\u041d": "H", "\u041e": "O", "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0425": "X",
    "\u03b1": "a", "\u03bf": "o", "\u03c1": "p", "\u03bd": "v", "\u03c7": "x", "\u0391": "A", "\u0392": "B",
    "\u0395": "E", "\u0397": "H", "\u0399": "I", "\u039a": "K", "\u039c": "M", "\u039d": "N", "\u039f": "O",
    "\u03a1": "P", "\u03a4": "T", "\u03a7": "X", "\u03a5": "Y", "\u0396": "Z",
    "\u2212": "-", "\u2013": "-", "\u00d7": "*", "\u00b7": "*", "\u2217": "*",
}


def ascii_lookalike(name: str) -> str | None:
    """``name`` with look-alike letters replaced by their ASCII twins, when it has any."""
    if name.isascii():
        return None
    fixed = "".join(LOOKALIKES.get(ch, ch) for ch in name)
    return fixed if fixed != name else None


def non_ascii(name: str) -> str:
    """A sentence naming the non-ASCII characters of ``name`` (empty when it is ASCII)."""
    bad = [ch for ch in dict.fromkeys(name) if not ch.isascii()]
    if not bad:
        return ""
    named = ", ".join(f"{ch!r} ({unicodedata.name(ch, f'U+{ord(ch):04X}')})" for ch in bad)
    twin = ascii_lookalike(name)
    looks = f"; it looks like {twin!r}: type it with ASCII letters" if twin else ""
    return f" {name!r} is not ASCII: it holds {named}{looks}."


def did_you_mean(name: object, options: Iterable[str], cutoff: float = 0.6) -> str:
    """`` " Did you mean 'x'?"`` for the nearest of ``options`` (a look-alike's ASCII twin
    first, named as such), or the non-ASCII sentence alone, or ``""``; callers append it
    to a message that ends in a full stop."""
    options = [str(o) for o in options]
    if not isinstance(name, str):
        return ""
    twin = ascii_lookalike(name)
    if twin is not None and twin in options:
        return non_ascii(name)
    close = difflib.get_close_matches(name, options, n=1, cutoff=cutoff)
    if not close:
        lower = {o.lower(): o for o in options}
        close = [lower[name.lower()]] if name.lower() in lower else []
    return non_ascii(name) + (f" Did you mean {close[0]!r}?" if close else "")
