"""Fact kinds and keys, and a batch's observations of facts (`facts` computes them).

`Observations` holds the facts with a value as `Observation`s and the plain ones (asset, edge,
service) as `Plain` groups of the batch, so that the learner builds nothing for a plain fact it
already knows; read as a list it builds every observation, in order.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from plantwarden.core.parsing import INTEGER
from plantwarden.core.records.schema import Protocol

Part = str | int


class FactKind(enum.StrEnum):
    """The kinds of learned fact."""

    ASSET = "asset"
    EDGE = "edge"
    SERVICE = "service"
    WRITTEN_RANGE = "written_range"
    POLLING = "polling"
    SETPOINT = "setpoint"


KEY_FIELDS: dict[FactKind, tuple[str, ...]] = {
    FactKind.ASSET: ("address",),
    FactKind.EDGE: ("client", "server", "transport", "port", "protocol"),
    FactKind.SERVICE: ("client", "server", "transport", "port", "protocol", "function"),
    FactKind.WRITTEN_RANGE: ("server", "unit", "protocol", "table"),
    FactKind.POLLING: ("client", "server", "protocol", "function", "unit", "address"),
    FactKind.SETPOINT: ("server", "unit", "address", "table"),
}
TEXT_FIELDS = frozenset({"address", "client", "server", "table"})
"""Fields kept as text when they are not a number (an address, the address space)."""

TABLES: dict[str, tuple[str, str]] = {
    "coil": ("coil", "coils"),
    "holding": ("holding register", "holding registers"),
    "file": ("file record", "file records"),
    "-": ("address", "addresses"),
}
"""The address spaces of written addresses (the key's `table`), with their words (one, many):
Modbus writes coils (functions 5, 15), holding registers (6, 16, 22, 23) or file records (21);
another protocol's addresses are one space (`-`)."""
TABLE_CODES = ("-", "coil", "holding", "file")
"""`TABLES`' names by the code `facts` computes per record (0 for another protocol)."""
MODBUS_TABLES: dict[int, int] = {5: 1, 15: 1, 6: 2, 16: 2, 22: 2, 23: 2, 21: 3}
"""Modbus write function code -> `TABLE_CODES` index."""


def legacy_table(kind: FactKind, parts: tuple[Part, ...]) -> str:
    """The table of a key stored before keys had one (its writes to coils and registers mixed):
    a Modbus one is taken for holding registers, where most writes go; another protocol's `-`."""
    if kind is FactKind.WRITTEN_RANGE and parts[2] != Protocol.MODBUS:
        return "-"
    return "holding"


class FactKey(NamedTuple):
    """One fact's identity: its kind, its site and the values of its key fields. A named tuple:
    hashing and comparing keys (several dictionary look-ups per fact and batch) stay in C."""

    kind: FactKind
    site: str
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        """The key as stored: the parts joined with `|` (addresses as text)."""
        return "|".join(str(part) for part in self.parts)

    def named(self) -> dict[str, Part]:
        """The key's parts by field name."""
        return dict(zip(KEY_FIELDS[self.kind], self.parts, strict=True))

    @classmethod
    def parse(cls, kind: str, site: str, text: str) -> FactKey:
        """The key stored as `text` (numbers come back as ints, addresses as text). A written
        range or setpoint key stored without its table gets one (`legacy_table`)."""
        fact_kind = FactKind(kind)
        raw = text.split("|")
        fields = KEY_FIELDS[fact_kind]
        legacy = fields[-1] == "table" and len(raw) == len(fields) - 1
        if len(raw) != len(fields) and not legacy:
            raise ValueError(f"a {kind} key has {len(fields)} parts, not {len(raw)}: {text!r}")
        parts = tuple(_part(name, value) for name, value in zip(fields, raw, strict=False))
        if legacy:
            parts = (*parts, legacy_table(fact_kind, parts))
        elif fact_kind in (FactKind.WRITTEN_RANGE, FactKind.SETPOINT) and parts[-1] not in TABLES:
            raise ValueError(f"{parts[-1]!r} is not an address space ({', '.join(TABLES)}): {text!r}")
        return cls(fact_kind, site, parts)


def _part(name: str, value: str) -> Part:
    return value if name in TEXT_FIELDS and not INTEGER.fullmatch(value) else int(value)


@dataclass(slots=True)
class Observation:
    """A fact as one batch shows it. `value` holds what the records say about the fact's value
    (empty for assets and edges); `server`/`client` are the addresses it is about (for its
    scopes), `row` the batch row of its first record (for evidence)."""

    key: FactKey
    value: dict[str, Any]
    first_ns: int
    last_ns: int
    count: int
    server: str
    client: str | None
    segment: str
    row: int
    samples: list[dict[str, Any]] = field(default_factory=list)


class Plain:
    """The groups of one plain kind (asset, edge, service: facts without a value) of a batch at
    one site, kept as columns: `raws[g]` the bytes of group g's key fields (its identity within
    kind and site), `key(g)` its key, `make(g, key)` its observation. The learner builds the
    observations of the groups whose fact it does not know yet, and only counts the others."""

    __slots__ = ("counts", "highs", "key", "kind", "make", "raws", "site")

    def __init__(
        self,
        kind: FactKind,
        site: str,
        raws: list[bytes],
        highs: list[int],
        counts: list[int],
        key: Callable[[int], FactKey],
        make: Callable[[int, FactKey], Observation],
    ) -> None:
        self.kind, self.site, self.raws, self.highs, self.counts = kind, site, raws, highs, counts
        self.key, self.make = key, make

    def observations(self) -> list[Observation]:
        return [self.make(g, self.key(g)) for g in range(len(self.raws))]


class Observations(list[Observation]):
    """A batch's observations, in order: kinds with a value as observations, plain kinds as
    `Plain` groups (`parts`). Read as a list it is one (the plain groups' observations are built
    on first use); `learner.Baseline.observe` walks `parts` instead, and so builds nothing for
    the plain facts it already knows: most of a batch on a steady network."""

    def __init__(self, parts: list[Plain | list[Observation]]) -> None:
        super().__init__()
        self.parts = parts
        self.pending = bool(parts)

    def fill(self) -> None:
        """Build every observation into the list (once)."""
        if self.pending:
            self.pending = False
            for part in self.parts:
                list.extend(self, part.observations() if isinstance(part, Plain) else part)


def _filled(name: str) -> Callable[..., Any]:
    method = getattr(list, name)

    def call(self: Observations, *args: Any, **kwargs: Any) -> Any:
        self.fill()
        return method(self, *args, **kwargs)

    call.__name__ = name
    return call


for _name in (
    *("__iter__", "__len__", "__getitem__", "__contains__", "__reversed__", "__repr__"),
    *("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__add__", "__mul__", "__rmul__"),
    *("__iadd__", "__imul__", "__setitem__", "__delitem__", "append", "extend", "insert", "pop"),
    *("remove", "sort", "reverse", "clear", "copy", "count", "index"),
):
    setattr(Observations, _name, _filled(_name))
