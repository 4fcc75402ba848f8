"""MAC address vendors from the IEEE registration authority's registries.

The IEEE assigns blocks of MAC addresses in four registries: MA-L (24-bit prefixes, the classic
OUI), MA-M (28 bits), MA-S (36 bits) and the older IAB (36 bits). Plantwarden ships them as
package data (`data/ieee-registries.csv.gz`, each registry with the date it was published,
`data/ieee-registries.json`), and a newer copy of any registry, in either of the IEEE's formats
(`oui.csv` and friends: "Registry,Assignment,Organization Name,Organization Address"; or
`oui.txt`: "XXXXXX (base 16) Organization"), replaces the shipped one (`plantwarden vendors
update`). A lookup takes the longest prefix that matches: a block of an MA-S assignment inside
an MA-L one belongs to the MA-S holder.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path

BITS = {"MA-L": 24, "MA-M": 28, "MA-S": 36, "IAB": 36}
"""How many leading bits of a MAC address each registry's assignments fix."""
TABLE_FILE = "ieee-registries.csv.gz"
INDEX_FILE = "ieee-registries.json"
_TXT_LINE = re.compile(r"^\s*([0-9A-Fa-f]{6})\s+\(base 16\)\s*(.*?)\s*$")
_TXT_KIND = re.compile(r"^\s*(OUI/MA-L|MA-M|MA-S|OUI-36/MA-S|IAB)\b")


class RegistryError(ValueError):
    """A registry file that cannot be read as one of the IEEE's formats."""


@dataclass(frozen=True)
class Registry:
    """One IEEE registry: its name (`BITS`), publication date, source, and assignments."""

    name: str
    published: date
    source: str
    assignments: Mapping[int, str] = field(repr=False)
    """Organization by assignment, the assignment as an integer of `BITS[name]` bits."""


def parse_registry_file(text: str, published: date, source: str) -> list[Registry]:
    """The registries in one IEEE file (CSV or TXT format); a RegistryError if it holds none."""
    if text.startswith("\ufeff"):
        text = text[1:]
    found: dict[str, dict[int, str]] = {}
    if text.lstrip().startswith("Registry,"):
        for row in csv.DictReader(io.StringIO(text)):
            name, assignment = (row.get("Registry") or "").strip(), (row.get("Assignment") or "").strip()
            if name not in BITS:
                raise RegistryError(f"{source}: unknown registry {name!r}")
            if len(assignment) * 4 != BITS[name] or not _is_hex(assignment):
                raise RegistryError(f"{source}: {name} assignment {assignment!r} is not {BITS[name]} bits")
            found.setdefault(name, {})[int(assignment, 16)] = (row.get("Organization Name") or "").strip()
    else:
        kind = _TXT_KIND.search(text[:500].splitlines()[0] if text.strip() else "")
        if kind is None or kind.group(1) != "OUI/MA-L":
            raise RegistryError(f"{source}: neither an IEEE registry CSV nor the MA-L oui.txt")
        for line in text.splitlines():
            match = _TXT_LINE.fullmatch(line)
            if match:
                found.setdefault("MA-L", {})[int(match.group(1), 16)] = match.group(2)
    if not found:
        raise RegistryError(f"{source}: no assignments found")
    return [Registry(name, published, source, assignments) for name, assignments in sorted(found.items())]


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


class VendorTable:
    """Vendors by MAC address prefix, over a set of registries (one of each name)."""

    def __init__(self, registries: Iterable[Registry]) -> None:
        self.registries = {registry.name: registry for registry in registries}
        self._by_bits = sorted(
            ((BITS[name], registry.assignments) for name, registry in self.registries.items()),
            key=lambda pair: -pair[0],
        )

    def lookup(self, mac: int | bytes | str) -> str | None:
        """The organization holding the block of `mac` (48-bit int, 6 bytes, or text with `:`,
        `-` or `.` separators), or None; locally administered and group addresses have none."""
        value = mac_value(mac)
        if value >> 40 & 0x03:  # the U/L or I/G bit of the first octet
            return None
        for bits, assignments in self._by_bits:
            found = assignments.get(value >> (48 - bits))
            if found is not None:
                return found
        return None

    def replaced(self, newer: Iterable[Registry]) -> VendorTable:
        """This table with each of `newer` in place of the registry of its name."""
        return VendorTable([*{**self.registries, **{r.name: r for r in newer}}.values()])

    def stored(self) -> tuple[bytes, dict[str, dict[str, object]]]:
        """The table in the package data's format: the gzipped CSV of every assignment, and the
        index (each registry's publication date, source and count). `cli.vendors` writes them."""
        rows = io.StringIO()
        writer = csv.writer(rows, lineterminator="\n")
        writer.writerow(("registry", "assignment", "organization"))
        for name, registry in sorted(self.registries.items()):
            digits = BITS[name] // 4
            for assignment, organization in sorted(registry.assignments.items()):
                writer.writerow((name, f"{assignment:0{digits}X}", organization))
        index: dict[str, dict[str, object]] = {
            name: {
                "published": r.published.isoformat(),
                "source": r.source,
                "assignments": len(r.assignments),
            }
            for name, r in sorted(self.registries.items())
        }
        return gzip.compress(rows.getvalue().encode(), mtime=0), index

    @classmethod
    def read(cls, table: bytes, index_text: str, where: str) -> VendorTable:
        """A table from its stored form (`write`)."""
        try:
            index = json.loads(index_text)
            if isinstance(index, dict) and "table" in index:  # a stored index names its table file
                index = index["registries"]
            assignments: dict[str, dict[int, str]] = {name: {} for name in index}
            for row in csv.DictReader(io.StringIO(gzip.decompress(table).decode())):
                assignments[row["registry"]][int(row["assignment"], 16)] = row["organization"]
            return cls(
                Registry(name, date.fromisoformat(meta["published"]), meta["source"], assignments[name])
                for name, meta in index.items()
            )
        except (ValueError, KeyError, OSError, EOFError) as error:
            raise RegistryError(f"{where}: the vendor table is damaged ({error})") from error


@cache
def shipped() -> VendorTable:
    """The registries shipped with Plantwarden."""
    data = resources.files("plantwarden.protocols.identity") / "data"
    return VendorTable.read((data / TABLE_FILE).read_bytes(), (data / INDEX_FILE).read_text(), "package data")


def load(folder: Path | None) -> VendorTable:
    """The shipped registries, with those stored in `folder` (by `update`) in their place. The
    stored index names its table file (`stored_table_file`), so that the index, written last,
    switches from one whole pair to the next."""
    table = shipped()
    if folder is None or not (folder / INDEX_FILE).exists():
        return table
    index_text = (folder / INDEX_FILE).read_text()
    table_file = folder / stored_table_file(index_text)
    try:
        data = table_file.read_bytes()
    except OSError as error:
        raise RegistryError(f"{folder}: the vendor table is damaged ({error})") from error
    stored = VendorTable.read(data, index_text, str(folder))
    return table.replaced(stored.registries.values())


def stored_table_file(index_text: str) -> str:
    """The table file a stored index names (`TABLE_FILE` for an index written before it named one)."""
    try:
        index = json.loads(index_text)
    except ValueError:
        return TABLE_FILE  # `read` says the index is damaged
    name = index.get("table") if isinstance(index, dict) else None
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".csv.gz"):
        return TABLE_FILE
    return name


def mac_value(mac: int | bytes | str) -> int:
    """A MAC address as a 48-bit integer; a ValueError for anything else."""
    if isinstance(mac, int):
        if not 0 <= mac < 1 << 48:
            raise ValueError(f"{mac} is not a 48-bit MAC address")
        return mac
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError(f"{mac!r} is not 6 bytes")
        return int.from_bytes(mac, "big")
    digits = re.sub(r"[:.\-]", "", mac.strip())
    if len(digits) != 12 or not _is_hex(digits):
        raise ValueError(f"{mac!r} is not a MAC address")
    return int(digits, 16)
