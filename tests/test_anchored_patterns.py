"""An id checked with a regular expression cannot end in a line break.

Python's `$` matches at the end of the text and also before a final line break, so
`re.compile(r"^[a-z0-9-]+$").match("plant-a\\n")` holds: `site add 'plant-a<newline>'` stored a
site whose id broke every listing it was in. Checks use `fullmatch` (and plant.yaml's schema
patterns are read as ECMA-262 reads them, `zones.plant.load.ecma_pattern`). The source is scanned
so that a new check written with `match` or `search` on a pattern anchored with `$` fails here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest

from plantwarden.accounts.services import check_grant_input
from plantwarden.core.errors import PlantwardenError
from plantwarden.core.records.partitions import check_writer_name
from plantwarden.monitoring.telemetry import check_site
from plantwarden.pki.certs import DeviceIdentity
from plantwarden.zones.plant.load import PlantFileError, ecma_pattern, load_plant_bytes
from plantwarden.zones.plant.schema import PLANT_SCHEMA

SOURCE = Path(__file__).resolve().parent.parent / "src" / "plantwarden"
RIVERSIDE = SOURCE / "sim" / "riverside.yaml"
_END_DOLLAR = re.compile(r"(?<!\\)\$(?:\)|\|)*\Z|(?<!\\)\$\|")
"""A `$` at the end of a pattern (or of one of its alternatives)."""


def _anchored_patterns(tree: ast.Module) -> dict[str, int]:
    """Names bound to `re.compile(<literal ending in $>)` without re.MULTILINE, with their lines."""
    found = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        is_compile = isinstance(call.func, ast.Attribute) and call.func.attr == "compile"
        if not is_compile or not call.args or not isinstance(call.args[0], ast.Constant):
            continue
        pattern = call.args[0].value
        flags = ast.unparse(call.args[1]) if len(call.args) > 1 else ""
        if isinstance(pattern, str | bytes) and "MULTILINE" not in flags and "re.M" not in flags:
            text = pattern if isinstance(pattern, str) else pattern.decode("latin-1")
            if _END_DOLLAR.search(text):
                found.update({t.id: node.lineno for t in node.targets if isinstance(t, ast.Name)})
    return found


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _module_patterns(root: Path) -> dict[str, dict[str, int]]:
    """Each module's anchored patterns, by dotted module name (`plantwarden.zones.services`)."""
    return {
        ".".join(path.relative_to(root.parent).with_suffix("").parts): _anchored_patterns(_tree(path))
        for path in sorted(root.rglob("*.py"))
    }


def _loose_uses(path: Path, elsewhere: dict[str, dict[str, int]] | None = None) -> Iterator[str]:
    """`NAME.match(...)`/`NAME.search(...)` on a pattern anchored with `$` (defined in the module,
    or imported from one of `elsewhere`), and `re.match("...$")`."""
    tree = _tree(path)
    anchored = _anchored_patterns(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in (elsewhere or {}):
            theirs = (elsewhere or {})[node.module]
            for alias in node.names:
                if alias.name in theirs:
                    anchored[alias.asname or alias.name] = theirs[alias.name]
    where = path.name
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("match", "search"):
            continue
        owner = node.func.value
        if isinstance(owner, ast.Name) and owner.id in anchored:
            yield f"{where}:{node.lineno}: {owner.id}.{node.func.attr}() (pattern line {anchored[owner.id]})"
        elif (
            isinstance(owner, ast.Name)
            and owner.id == "re"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and _END_DOLLAR.search(node.args[0].value)
        ):
            yield f"{where}:{node.lineno}: re.{node.func.attr}() with a pattern ending in $"


def test_no_check_matches_a_pattern_anchored_with_dollar_loosely() -> None:
    modules = _module_patterns(SOURCE)
    loose = [
        f"{path.parent.relative_to(SOURCE)}/{use}"
        for path in sorted(SOURCE.rglob("*.py"))
        for use in _loose_uses(path, modules)
    ]
    assert not loose, "use fullmatch (Python's $ matches before a final line break):\n" + "\n".join(loose)


def test_the_scan_finds_a_loose_check(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import re\n"
        'SLUG = re.compile(r"^[a-z]+$")\n'
        'ALT = re.compile(r"^(a|b)$|^c$")\n'
        'LINES = re.compile(r"^x$", re.MULTILINE)\n'
        'OPEN = re.compile(r"^[a-z]+")\n'
        "SLUG.match(value)\n"
        "ALT.search(value)\n"
        "SLUG.fullmatch(value)\n"
        "LINES.match(value)\n"
        "OPEN.match(value)\n"
        're.match(r"^a$", value)\n'
        "from plantwarden.zones.services import SLUG as ZONE_SLUG\n"
        "ZONE_SLUG.match(value)\n"
    )
    assert list(_loose_uses(sample, {"plantwarden.zones.services": {"SLUG": 20}})) == [
        "sample.py:6: SLUG.match() (pattern line 2)",
        "sample.py:7: ALT.search() (pattern line 3)",
        "sample.py:11: re.match() with a pattern ending in $",
        "sample.py:13: ZONE_SLUG.match() (pattern line 20)",
    ]


CHECKS: list[tuple[str, Callable[[str], object]]] = [
    ("telemetry site", check_site),
    ("grant site", lambda value: check_grant_input("viewer", value, None)),
    ("grant zone", lambda value: check_grant_input("viewer", "plant-a", value)),
    ("records writer", check_writer_name),
    ("certificate site", lambda value: DeviceIdentity(site=value, device="plc-1", zone="cell-1")),
    ("certificate device", lambda value: DeviceIdentity(site="plant-a", device=value, zone="cell-1")),
]


@pytest.mark.parametrize(("what", "check"), CHECKS, ids=[what for what, _ in CHECKS])
def test_an_id_with_a_line_break_at_its_end_is_refused(what: str, check: Callable[[str], object]) -> None:
    check("plant-a")  # the id itself passes
    with pytest.raises(PlantwardenError):
        check("plant-a\n")


def _patterns(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


def test_every_schema_pattern_ends_at_the_end_of_the_text() -> None:
    patterns = sorted(set(_patterns(PLANT_SCHEMA)))
    assert len(patterns) >= 4
    for pattern in patterns:
        assert "$" not in ecma_pattern(pattern).pattern.replace("\\$", ""), pattern


def test_a_plant_id_with_a_line_break_at_its_end_is_refused_at_its_line() -> None:
    text = RIVERSIDE.read_text(encoding="utf-8")
    assert load_plant_bytes(text.encode()).sites[0].id == "riverside"
    broken = text.replace("  - id: riverside\n", '  - id: "riverside\\n"\n', 1)
    line = broken.splitlines().index('  - id: "riverside\\n"') + 1
    with pytest.raises(PlantFileError) as caught:
        load_plant_bytes(broken.encode())
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (
            line,
            "'riverside\\n' is not valid: use 1-63 lower-case letters, digits and inner hyphens",
        )
    ]
