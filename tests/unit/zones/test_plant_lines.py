"""A site name is one line: what `plant validate` takes, `plant apply` takes, and the rest is placed."""

from __future__ import annotations

import re
import unicodedata

import pytest

from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.zones.applied import apply_plant
from plantwarden.zones.plant.lines import ONE_LINE_PATTERN
from plantwarden.zones.plant.load import PlantFileError, load_plant_bytes

PLANT = """\
version: 1
sites:
  - id: plant-a
    name: {name}
    zones:
      - {{id: cell-1, purdue_level: 1, subnets: [10.1.1.0/24], security_level: 2}}
"""

NAMES = [
    '"Plant A"',
    '"  Plant A\\n"',  # spaces and a line break at the ends are taken off
    ">\n      Plant\n      A",  # folded: 'Plant A\n'
    '"Caf\\u00e9 \\U0001F3ED"',
    '"Plant\\nA"',
    "|\n      Plant\n      A",  # literal: 'Plant\nA\n'
    '"Plant\\tA"',
    '"Plant\\u2028A"',
    '"Plant\\u00a0A"',
    '"Plant\\u200bA"',
    '"Plant\\u202eA"',
    '"Plant\\U000E0041"',  # a tag character: a format character past U+FFFF
    '"Plant\\U0010FFFD"',  # private use past U+FFFF
    '"   "',
    '"\\n"',
]


def _problems(name: str) -> list[tuple[int, int, str]]:
    try:
        load_plant_bytes(PLANT.format(name=name).encode())
    except PlantFileError as error:
        return [(p.line, p.column, p.message) for p in error.problems]
    return []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ('"Plant\\nA"', "a line break (in 'Plant\\nA')"),
        ("|\n      Plant\n      A", "a line break (in 'Plant\\nA\\n')"),
        ('"Plant\\rA"', "a line break"),
        ('"Plant\\u2029A"', "a line break"),
        ('"Plant\\tA"', "a tab"),
        ('"Plant\\x07A"', "a control character (U+0007)"),
        ('"Plant\\u202eA"', "an invisible format character (U+202E)"),
        ('"Plant\\u3000A"', "a space other than the plain space (U+3000)"),
        ('"Plant\\U000E0041"', "an invisible format character (U+E0041)"),
        ('"Plant\\U0010FFFD"', "a private-use, surrogate or unassigned character (U+10FFFD)"),
    ],
)
def test_a_site_name_that_is_not_one_line_is_placed_with_the_reason(name: str, reason: str) -> None:
    [(line, column, message)] = _problems(name)
    assert (line, column) == (4, 11)
    assert message.startswith(f"a site name is one line of printable characters: it holds {reason}"), message


def test_a_blank_site_name_is_placed() -> None:
    assert _problems('"   "') == [(4, 11, "a site name is blank: write one or leave the key out")]


@pytest.mark.parametrize("name", NAMES)
def test_what_validates_applies(store: Store, ctx: Context, name: str) -> None:
    migrate.ensure_ready(store)
    raw = PLANT.format(name=name).encode()
    try:
        load_plant_bytes(raw)
    except PlantFileError:
        validates = False
    else:
        validates = True
    try:
        with store.transaction() as session:
            apply_plant(session, ctx, raw, "plant.yaml")
    except InvalidInput:
        applies = False
    else:
        applies = True
    assert validates == applies


def test_the_schema_pattern_takes_what_the_service_takes() -> None:
    """For every assigned character up to U+FFFF but surrogates, anywhere in a name; editors use it."""
    pattern = re.compile(ONE_LINE_PATTERN)
    wrong = []
    for code in range(0x10000):
        char = chr(code)
        if unicodedata.category(char) in ("Cn", "Cs"):
            continue
        for text in (f"a{char}b", char, f"{char}a", f"a{char}", f" {char} a{char}"):
            if bool(pattern.search(text)) != text.strip().isprintable():
                wrong.append(f"U+{code:04X} in {text!r}")
    assert not wrong, wrong[:10]
