"""`IdentityColumns`: one row per frame given to `extract_identity`, one numpy array per field.

Both paths produce it: `extract_identity` directly, the exact path (`decode_identity` frame by
frame) through `IdentityColumns.from_decoded`. The identity schema (name, dtype, "none" value) is
declared once, in `SCHEMA`; the common per-PDU fields are a `SummaryColumns`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Summary, SummaryColumns
from plantwarden.protocols.identity.fields import Identity

Array = npt.NDArray[Any]


class Kind(enum.IntEnum):
    """Which protocol a frame is decoded as (the `kinds` argument of `extract_identity`)."""

    ARP = 1
    """EtherType 0x0806 (and RARP 0x8035): from the ARP header on."""
    LLDP = 2
    """EtherType 0x88CC: from the first TLV on."""
    DCP = 3
    """EtherType 0x8892 with frame id 0xFEFC-0xFEFF: from the frame id on."""
    DHCP = 4
    """UDP 67/68: the UDP payload (the BOOTP message)."""


class Column(NamedTuple):
    """One identity column: its name (an `Identity` field, or `row`/`kind`), dtype, "none" value."""

    name: str
    dtype: type[np.generic] | type[object]
    none: Any
    help: str


SCHEMA: tuple[Column, ...] = (
    Column("row", np.int64, 0, "index of the frame in `starts`"),
    Column("kind", np.uint8, 0, "`Kind`"),
    Column("mac", np.int64, -1, "48-bit MAC address the frame claims (see `Identity.mac`)"),
    Column("ip", np.int64, -1, "IPv4 address the frame claims (see `Identity.ip`)"),
    Column("name", object, "", "host name, system name or NameOfStation"),
    Column("vendor_text", object, "", "vendor class, system description or DCP vendor text"),
    Column("vendor_id", np.int32, -1, "DCP vendor id"),
    Column("device_id", np.int32, -1, "DCP device id"),
    Column("xid", np.int64, -1, "DHCP or DCP transaction id"),
    Column("gratuitous", np.bool_, False, "gratuitous ARP"),
    Column("probe", np.bool_, False, "ARP probe"),
    Column("sets_ip", np.bool_, False, "DCP Set of the IP parameters"),
    Column("sets_name", np.bool_, False, "DCP Set of NameOfStation"),
    Column("resets", np.bool_, False, "DCP factory reset"),
)
NAMES = tuple(column.name for column in SCHEMA)
IDENTITY_NAMES = NAMES[2:]
assert Identity._fields == IDENTITY_NAMES


@dataclass(slots=True)
class IdentityColumns:
    """One row per frame, in input order; `summary` holds the common fields, the rest `SCHEMA`."""

    summary: SummaryColumns
    row: Array
    kind: Array
    mac: Array
    ip: Array
    name: Array
    vendor_text: Array
    vendor_id: Array
    device_id: Array
    xid: Array
    gratuitous: Array
    probe: Array
    sets_ip: Array
    sets_name: Array
    resets: Array

    def __len__(self) -> int:
        return len(self.row)

    @classmethod
    def from_decoded(
        cls, kinds: Sequence[int], decoded: Sequence[tuple[Summary, Identity]]
    ) -> IdentityColumns:
        """The columns of the exact decoders' results, frame by frame in input order."""
        identities = [identity for _, identity in decoded]
        given: dict[str, Array] = {
            "row": np.arange(len(decoded), dtype=np.int64),
            "kind": np.asarray(kinds, dtype=np.uint8),
        }
        for column in SCHEMA[2:]:
            array = np.empty(len(identities), dtype=column.dtype)
            for index, identity in enumerate(identities):
                array[index] = getattr(identity, column.name)
            given[column.name] = array
        return cls(SummaryColumns.from_summaries([summary for summary, _ in decoded]), **given)

    @classmethod
    def concatenate(cls, parts: Sequence[IdentityColumns]) -> IdentityColumns:
        """The rows of `parts` together, ordered by `row`."""
        row = np.concatenate([part.row for part in parts]) if parts else np.zeros(0, np.int64)
        order = np.argsort(row, kind="stable")
        summary_names = SummaryColumns.__dataclass_fields__
        summary = SummaryColumns(
            **{
                name: np.concatenate([getattr(part.summary, name) for part in parts])[order]
                if parts
                else getattr(SummaryColumns.from_summaries([]), name)
                for name in summary_names
            }
        )
        given = {
            column.name: (
                np.concatenate([getattr(part, column.name) for part in parts])[order]
                if parts
                else np.zeros(0, dtype=column.dtype)
            )
            for column in SCHEMA
        }
        return cls(summary, **given)

    def arrays(self) -> dict[str, Array]:
        """The identity columns by name, in `SCHEMA` order."""
        return {name: getattr(self, name) for name in NAMES}

    def identities(self) -> list[Identity]:
        """Row by row, as the exact decoders give them."""
        rows = zip(*(getattr(self, name).tolist() for name in IDENTITY_NAMES), strict=True)
        return [Identity(*row) for row in rows]

    def differences(self, other: IdentityColumns) -> list[str]:
        """What differs from `other`: the row count, or each column's first differing row."""
        if len(self) != len(other):
            return [f"{len(self)} rows against {len(other)}"]
        found = []
        pairs = [(name, getattr(self, name), getattr(other, name)) for name in NAMES]
        pairs += [
            (f"summary.{name}", getattr(self.summary, name), getattr(other.summary, name))
            for name in SummaryColumns.__dataclass_fields__
        ]
        for name, mine, theirs in pairs:
            if mine.dtype != theirs.dtype:
                found.append(f"{name}: dtype {mine.dtype} against {theirs.dtype}")
                continue
            unequal = [
                i for i, (a, b) in enumerate(zip(mine.tolist(), theirs.tolist(), strict=True)) if a != b
            ]
            if unequal:
                found.append(f"{name}: row {unequal[0]}: {mine[unequal[0]]!r} against {theirs[unequal[0]]!r}")
        return found
