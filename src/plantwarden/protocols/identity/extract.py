"""Both paths over many frames of a batch: `extract_identity` (fast) and `decode_identity_frames`
(exact, frame by frame), each giving `IdentityColumns` with one row per frame in input order.

The fast path takes ARP entirely with numpy; for DCP, DHCP and LLDP it reads the fixed-offset
headers (and the three mandatory LLDP TLVs) with numpy, findings included, and walks the blocks,
options and further TLVs per row in Python (see each protocol module's `extract_...`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Summary, SummaryColumns
from plantwarden.protocols.identity.arp import decode_arp, extract_arp
from plantwarden.protocols.identity.columns import SCHEMA, IdentityColumns, Kind
from plantwarden.protocols.identity.dhcp import decode_dhcp, extract_dhcp
from plantwarden.protocols.identity.fields import Identity
from plantwarden.protocols.identity.lldp import decode_lldp, extract_lldp
from plantwarden.protocols.identity.pn_dcp import decode_dcp, extract_dcp

Array = npt.NDArray[Any]


class Message(Protocol):
    def summary(self) -> Summary: ...

    def identity(self) -> Identity: ...


DECODERS: dict[Kind, Callable[[bytes], Message]] = {
    Kind.ARP: decode_arp,
    Kind.LLDP: decode_lldp,
    Kind.DCP: decode_dcp,
    Kind.DHCP: decode_dhcp,
}


EXTRACTORS: dict[Kind, Callable[[Array, Array, Array], Sequence[Message]]] = {
    Kind.LLDP: extract_lldp,
    Kind.DCP: extract_dcp,
    Kind.DHCP: extract_dhcp,
}


def decode_identity(kind: int, data: bytes) -> Message:
    """One frame's message, by the exact decoder of `kind`."""
    return DECODERS[Kind(kind)](data)


def decode_identity_frames(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    kinds: npt.NDArray[np.uint8],
) -> IdentityColumns:
    """The exact path: every frame decoded on its own, as columns."""
    decoded = []
    for start, length, kind in zip(starts.tolist(), lengths.tolist(), kinds.tolist(), strict=True):
        message = decode_identity(kind, buffer[start : start + length].tobytes())
        decoded.append((message.summary(), message.identity()))
    return IdentityColumns.from_decoded(kinds.tolist(), decoded)


def extract_identity(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    kinds: npt.NDArray[np.uint8],
) -> IdentityColumns:
    """The fast path: one row per frame, `kinds` saying which protocol each is (`Kind`); rows of
    an unknown kind are a ValueError (the caller picks frames by EtherType or port)."""
    kinds = np.asarray(kinds, dtype=np.uint8)
    starts, lengths = np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    unknown = ~np.isin(kinds, [kind.value for kind in Kind])
    if unknown.any():
        raise ValueError(f"unknown kinds {sorted(set(kinds[unknown].tolist()))}")
    parts = []
    for kind in Kind:
        rows = np.flatnonzero(kinds == kind)
        if not len(rows):
            continue
        if kind == Kind.ARP:
            summary, given = extract_arp(buffer, starts[rows], lengths[rows])
            parts.append(_part(rows, kind, summary, given))
            continue
        messages = EXTRACTORS[kind](buffer, starts[rows], lengths[rows])
        part = IdentityColumns.from_decoded(
            [kind] * len(rows), [(m.summary(), m.identity()) for m in messages]
        )
        part.row = rows.astype(np.int64)
        parts.append(part)
    return IdentityColumns.concatenate(parts)


def _part(rows: Array, kind: Kind, summary: SummaryColumns, given: dict[str, Array]) -> IdentityColumns:
    columns: dict[str, Array] = {
        "row": rows.astype(np.int64),
        "kind": np.full(len(rows), kind, dtype=np.uint8),
    }
    for column in SCHEMA[2:]:
        if column.name in given:
            columns[column.name] = np.asarray(given[column.name], dtype=column.dtype)
        else:
            array = np.empty(len(rows), dtype=column.dtype)
            array[:] = column.none
            columns[column.name] = array
    return IdentityColumns(summary, **columns)
