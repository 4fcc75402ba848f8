"""One-line text in plant.yaml: the rule of `core.parsing.one_line`, as a JSON Schema pattern and as a check.

The service takes a site name through `one_line`: it takes off the whitespace at the ends
(`str.strip`) and refuses what is left unless `str.isprintable()` holds: no line break, tab or other
control character, no format character (zero-width, bidirectional controls), no space but the plain
one, no private-use, surrogate or unassigned code point. `ONE_LINE_PATTERN` says exactly that for
every assigned character up to U+FFFF, in a regular expression that Python's `re` (what `plant
validate` runs) and ECMAScript (what editors run) read alike. `line_problem` runs `one_line` itself
on what the pattern cannot say (unassigned code points, characters past U+FFFF) and refuses a blank
value, as the service does.
"""

from __future__ import annotations

import unicodedata

from plantwarden.core.errors import InvalidInput
from plantwarden.core.parsing import one_line

# What str.strip() takes off: every character for which str.isspace() holds.
_SPACE = r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# The assigned characters up to U+FFFF that str.isprintable() refuses (Unicode 14), surrogates aside:
# a UTF-8 file holds none, and ECMAScript would take them for halves of the characters past U+FFFF.
_UNPRINTABLE = (
    r"\u0000-\u001f\u007f-\u00a0\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u1680\u180e"
    r"\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ue000-\uf8ff\ufeff\ufff9-\ufffb"
)
_INNER = f"[^{_UNPRINTABLE}]"
_END = f"[^{_UNPRINTABLE}\\u0020]"
ONE_LINE_PATTERN = f"^[{_SPACE}]*(?:{_END}(?:{_INNER}*{_END})?[{_SPACE}]*)?$"
"""Spaces at the ends, and printable characters between them (a blank value matches)."""

_LINE_BREAKS = frozenset("\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029")  # where str.splitlines() splits


def line_problem(what: str, value: str, limit: int) -> str | None:
    """Why the service's `one_line` would refuse `value` as `what` ("a site name"), or None."""
    if value and not value.strip():
        return f"{what} is blank: write one or leave the key out"
    try:
        one_line(value, what, limit)
    except InvalidInput:
        return not_one_line(what, value) or f"{what} has {len(value.strip())} characters; at most {limit}"
    return None


def not_one_line(what: str, value: str) -> str | None:
    """What keeps `value` from being one line of printable characters (its first such character)."""
    for char in value.strip():
        if not char.isprintable():
            return f"{what} is one line of printable characters: it holds {_name(char)} (in {value[:40]!r})"
    return None


def field_name(path: tuple[str | int, ...]) -> str:
    """The field at a path of plant.yaml in words: ("sites", 0, "name") is "a site name"."""
    owner = f"{str(path[-3]).removesuffix('s')} " if len(path) >= 3 else ""
    return f"a {owner}{path[-1]}" if path else "the value"


def _name(char: str) -> str:
    if char in _LINE_BREAKS:
        return "a line break"
    if char == "\t":
        return "a tab"
    code, category = f"U+{ord(char):04X}", unicodedata.category(char)
    if category == "Cc":
        return f"a control character ({code})"
    if category == "Cf":
        return f"an invisible format character ({code})"
    if category == "Zs":
        return f"a space other than the plain space ({code})"
    return f"a private-use, surrogate or unassigned character ({code})"
