"""What every industrial protocol module declares, and what every one of its decoders gives.

A protocol module (`protocols/<name>/`) declares a `ProtocolModule`: the protocol's name (the
records plane's `Protocol` member of that name), how completely it is decoded (`Support`), the
specifications it follows, and where it is found (TCP and UDP ports, Ethernet types). Its
decoders give, per PDU, a `Summary`: the fields every protocol record carries besides time,
flow, direction and protocol (which the sensor knows): the function or service (code and
name), its operation category, the unit and target objects it addresses, its result or
exception, and how well it parsed.

Each module has two paths that give identical summaries:

- exact: `decode_payload(payload, from_server) -> (messages, leftover)`, one TCP segment's
  bytes (after the bytes left over from the segment before) or one datagram, PDU by PDU, with
  every variable-size part; `leftover` holds the bytes of an incomplete last PDU (TCP), and each
  message's `summary()` gives its `Summary`;
- fast: a column extractor over many payloads of a batch at once (`SummaryColumns` plus the
  protocol's own columns), which leaves what it cannot take to the exact path.

A module also says how its answers find their requests (`RequestKeys`): per PDU a key that a
request and its answer share within a connection (S7's PDU reference, DNP3's application
sequence, OPC UA's request id, ...), or `ONE_WAY` for a request that expects no answer, or
`NOT_RECORDED` for a PDU that is neither a request nor an answer to one (acknowledgements,
keep-alives, cyclic I/O, monitoring data, pushes). The sensor records one protocol record per
request, with its answer's result.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_TARGETS",
    "NOT_RECORDED",
    "ONE_WAY",
    "Column",
    "MessageColumns",
    "Operation",
    "ParseStatus",
    "ProtocolModule",
    "RequestKeys",
    "StreamCheck",
    "Summary",
    "SummaryColumns",
    "Support",
    "decode_segments",
    "one_way_requests",
]


class Operation(enum.IntEnum):
    """What a PDU does to the device, in every protocol's terms: the categories that conduits,
    roles and the storage policy are written in (the same codes as the records plane's)."""

    OTHER = 0
    READ = 1
    WRITE = 2
    PROGRAM = 3
    """Changes the device's logic or firmware: block download, delete, copy RAM to ROM."""
    CONTROL = 4
    """Changes the device's state: start, stop, restart, operate, select, freeze."""
    DIAGNOSTIC = 5
    MALFORMED = 6
    """Not a well-formed PDU: no function could be read."""
    IDENTIFY = 7
    """Asks who the device is: identity, module and component identification."""


class Support(enum.StrEnum):
    """How completely a module decodes its protocol."""

    COMPLETE = "complete"
    """Every message type of the listed specifications is decoded, with its fields."""
    PARTIAL = "partial"
    """The common messages are decoded; the rest are recorded by code, with status PARTIAL."""
    DETECT_ONLY = "detect-only"
    """The protocol is recognised and its message type recorded; nothing inside it is decoded."""


class ParseStatus(enum.IntEnum):
    """How far a PDU was decoded (a closed list, stored as a `uint8` column)."""

    OK = 0
    """Every field of the PDU was decoded and the PDU ends where its last field does."""
    PARTIAL = 1
    """Decoded up to a part the module does not know (an object of unknown size, an
    encrypted body, a message type it only detects); what was decoded is right."""
    MALFORMED = 2
    """The PDU breaks its specification; the record's `finding` says how."""


@dataclass(frozen=True, slots=True)
class ProtocolModule:
    """A protocol module's declaration: what it decodes, how completely, after which texts."""

    name: str
    """The records plane's `Protocol` member of this name, lower case (e.g. "s7comm")."""
    support: Support
    references: tuple[str, ...]
    """The specifications followed, as citable titles (with version and section where useful)."""
    tcp_ports: tuple[int, ...] = ()
    udp_ports: tuple[int, ...] = ()
    ethertypes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Summary:
    """One PDU in common terms; "none" values are -1 for numbers (0 for `quantity`), empty texts."""

    function_code: int
    """The protocol's function, service, command or message type code (-1 if none was read)."""
    function: str
    """Its name, as the specification spells it (lower case, words joined by underscores)."""
    operation: Operation
    is_response: bool
    """Sent by the server (the answering side)."""
    unit: int = -1
    """Unit, slave, station, common address or rack/slot addressed."""
    address: int = -1
    """The first target's address (register, object, information object, byte address)."""
    quantity: int = 0
    """How many targets, items or objects the PDU addresses (as the protocol counts them: DNP3's
    first object header's count, S7's items, IEC 104's information objects)."""
    targets: tuple[str, ...] = ()
    """The target objects, each as readable text (e.g. "DB1.DBW4", "g30v2 0-9", "class 0x04
    instance 1 attribute 3"); at most `MAX_TARGETS`, the count in `quantity`."""
    result: int = -1
    """A response's result: 0 success, > 0 the protocol's error or exception code; -1 for a
    request or a response that carries none."""
    status: ParseStatus = ParseStatus.OK
    finding: int = 0
    """The module's finding code (its own closed `IntEnum`, 0 when none)."""


MAX_TARGETS = 32
"""Target texts kept per PDU (the `quantity` column still counts them all)."""

_DTYPES: dict[str, Any] = {
    "function_code": np.int32,
    "function": object,
    "operation": np.uint8,
    "is_response": np.bool_,
    "unit": np.int32,
    "address": np.int64,
    "quantity": np.int32,
    "targets": object,
    "result": np.int32,
    "status": np.uint8,
    "finding": np.uint8,
}


@dataclass(slots=True)
class SummaryColumns:
    """`Summary` as columns, one row per PDU (the fast path's form); `targets` holds tuples."""

    function_code: npt.NDArray[np.int32]
    function: npt.NDArray[np.object_]
    operation: npt.NDArray[np.uint8]
    is_response: npt.NDArray[np.bool_]
    unit: npt.NDArray[np.int32]
    address: npt.NDArray[np.int64]
    quantity: npt.NDArray[np.int32]
    targets: npt.NDArray[np.object_]
    result: npt.NDArray[np.int32]
    status: npt.NDArray[np.uint8]
    finding: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.function_code)

    @classmethod
    def from_summaries(cls, summaries: Sequence[Summary]) -> SummaryColumns:
        """Columns from the exact path's summaries."""
        values: dict[str, Any] = {}
        for name, dtype in _DTYPES.items():
            cells = [getattr(summary, name) for summary in summaries]
            if dtype is object:
                column = np.empty(len(cells), dtype=object)
                for row, cell in enumerate(cells):
                    column[row] = cell  # one by one: a tuple stays one object
            else:
                column = np.array(cells, dtype=dtype)
            values[name] = column
        return cls(**values)

    def summaries(self) -> list[Summary]:
        """Row by row, as the exact path gives them (to compare the two paths)."""
        names = [field.name for field in fields(Summary)]
        rows = zip(*(getattr(self, name).tolist() for name in names), strict=True)
        summaries = []
        for row in rows:
            values = dict(zip(names, row, strict=True))
            values["operation"] = Operation(values["operation"])
            values["status"] = ParseStatus(values["status"])
            values["targets"] = tuple(values["targets"])
            summaries.append(Summary(**values))
        return summaries


ONE_WAY = -1
"""`RequestKeys` key of a request that expects no answer (recorded on its own, with no answer)."""
NOT_RECORDED = -2
"""`RequestKeys` key of a PDU that is neither a request nor the answer to one (counted only)."""


@dataclass(frozen=True, slots=True)
class RequestKeys:
    """How a protocol's answers find their requests: `keys(own, summary)` gives per PDU row a
    key >= 0 that a request and its answer share within a connection (and no other request in
    flight on it does), or `ONE_WAY`, or `NOT_RECORDED`; `own` holds the protocol's own columns
    named in `columns` (the same fields of the exact path's messages), `summary` the rows'
    summaries. Keys fit 31 bits."""

    columns: tuple[str, ...]
    keys: Callable[[dict[str, npt.NDArray[Any]], SummaryColumns], npt.NDArray[np.int64]]


_Own = dict[str, npt.NDArray[Any]]


@dataclass(frozen=True, slots=True)
class StreamCheck:
    """What a protocol checks across the PDUs of a connection (IEC 104's sequence numbers, OPC
    UA's secure channel): `check(state, connection, from_server, own, summary)` gives per PDU row
    (in capture order) a code of `codes` (0: nothing to say), keeping what it needs of each
    connection in `state` (by connection id; the caller drops a connection's entry when it ends).
    `own` holds the protocol's own columns named in `columns`."""

    columns: tuple[str, ...]
    codes: type[enum.IntEnum]
    check: Callable[
        [dict[int, Any], npt.NDArray[np.int64], npt.NDArray[np.bool_], _Own, SummaryColumns],
        npt.NDArray[np.uint8],
    ]


def one_way_requests(summary: SummaryColumns) -> npt.NDArray[np.int64]:
    """The keys to start from: every request `ONE_WAY`, every answer `NOT_RECORDED` (a request
    whose key cannot be read, a malformed one, is still recorded)."""
    return np.where(summary.is_response, NOT_RECORDED, ONE_WAY).astype(np.int64)


class Column(NamedTuple):
    """One of a protocol's own columns: its name (a field of the protocol's message too), numpy
    dtype, "none" value, and what it holds."""

    name: str
    dtype: Any
    none: Any
    help: str = ""


class _Message(Protocol):
    @property
    def offset(self) -> int: ...

    def summary(self) -> Summary: ...


Array = npt.NDArray[Any]


@dataclass(slots=True)
class MessageColumns:
    """A column extractor's output: per row (PDU) its segment (index into the input starts),
    index within the segment, byte offset, `summary`, and the protocol's own columns in `own`
    (by its schema); per input segment `leftover`, the bytes of an incomplete last PDU."""

    segment: npt.NDArray[np.int64]
    pdu_index: npt.NDArray[np.int32]
    offset: npt.NDArray[np.int64]
    summary: SummaryColumns
    own: dict[str, Array]
    leftover: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.segment)

    @classmethod
    def from_messages(
        cls,
        schema: Sequence[Column],
        messages: Sequence[_Message],
        segment: Sequence[int] | Array,
        pdu_index: Sequence[int] | Array,
        leftover: npt.NDArray[np.int64],
    ) -> MessageColumns:
        """The columns of an exact decoder's `messages` (labelled by `segment` and `pdu_index`)."""
        own = {}
        for column in schema:
            array = np.empty(len(messages), dtype=column.dtype)
            for row, message in enumerate(messages):
                array[row] = getattr(message, column.name)
            own[column.name] = array
        return cls(
            np.asarray(segment, dtype=np.int64),
            np.asarray(pdu_index, dtype=np.int32),
            np.fromiter((m.offset for m in messages), np.int64, len(messages)),
            SummaryColumns.from_summaries([m.summary() for m in messages]),
            own,
            leftover,
        )

    def differences(self, other: MessageColumns) -> list[str]:
        """What differs from `other` (empty when the two are identical)."""
        if len(self) != len(other):
            return [f"{len(self)} rows against {len(other)}"]
        if set(self.own) != set(other.own):
            return ["own columns"]
        pairs: list[tuple[str, Array, Array]] = [
            ("segment", self.segment, other.segment),
            ("pdu_index", self.pdu_index, other.pdu_index),
            ("offset", self.offset, other.offset),
            ("leftover", self.leftover, other.leftover),
        ]
        pairs += [(name, self.own[name], other.own[name]) for name in self.own]
        found = [
            name
            for name, mine, theirs in pairs
            if mine.dtype != theirs.dtype or not np.array_equal(mine, theirs)
        ]
        if self.summary.summaries() != other.summary.summaries():
            found.append("summary")
        return found


def decode_segments(
    decode_payload: Callable[[bytes, bool], tuple[Sequence[_Message], bytes]],
    schema: Sequence[Column],
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> MessageColumns:
    """A column extractor's exact twin: every segment `buffer[start:start + length]` through the
    exact decoder `decode_payload`, one at a time."""
    data = buffer.tobytes()
    messages: list[_Message] = []
    segments: list[int] = []
    indexes: list[int] = []
    leftover = np.zeros(len(starts), dtype=np.int64)
    rows = zip(starts.tolist(), lengths.tolist(), from_server.tolist(), strict=True)
    for segment, (start, length, server) in enumerate(rows):
        found, rest = decode_payload(data[start : start + length], bool(server))
        leftover[segment] = len(rest)
        messages += found
        segments += [segment] * len(found)
        indexes += range(len(found))
    return MessageColumns.from_messages(schema, messages, segments, indexes, leftover)
