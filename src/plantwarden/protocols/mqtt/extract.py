"""The fast path: `extract` frames and decodes many payload segments at once into `MqttColumns`.

Vectorised with numpy: the framing (all segments walked together, one packet per step, by the
remaining length's variable byte integer), the fixed header of every packet, and whole PUBACK,
PUBREC, PUBREL, PUBCOMP (packet id only), PINGREQ, PINGRESP and empty DISCONNECT packets, and
PUBLISH packets' QoS, flags, topic length and packet id. Decoded per row in Python: PUBLISH
topics (text), and by the exact decoder every other packet (CONNECT, CONNACK, SUBSCRIBE,
SUBACK, UNSUBSCRIBE, UNSUBACK, MQTT 5 acknowledgements with reason codes and properties, AUTH)
and every malformed one. The result is row for row what `exact.decode_segments` gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Operation, ParseStatus, SummaryColumns
from plantwarden.protocols.mqtt.columns import SCHEMA, MqttColumns
from plantwarden.protocols.mqtt.exact import MAX_VARINT, decode
from plantwarden.protocols.mqtt.messages import (
    DISCONNECT,
    PACKET_TYPES,
    PINGREQ,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
)

Ints = npt.NDArray[np.int64]
_NAMES = np.array(PACKET_TYPES, dtype=object)


def _walk(buffer: npt.NDArray[np.uint8], starts: Ints, lengths: Ints) -> tuple[Ints, Ints, Ints, Ints, Ints]:
    """Every packet's (segment, position in `buffer`, size, fixed header size; 0 when the
    framing is lost there), in (segment, position) order, and the leftovers."""
    last = max(len(buffer) - 1, 0)
    position = starts.astype(np.int64).copy()
    end = position + lengths.astype(np.int64)
    leftover = np.zeros(len(starts), dtype=np.int64)
    active = np.flatnonzero(end > position)
    found: list[tuple[Ints, Ints, Ints, Ints]] = []
    while active.size:
        at, stop = position[active], end[active]
        value = np.zeros(len(active), dtype=np.int64)
        header = np.zeros(len(active), dtype=np.int64)
        decided = np.zeros(len(active), dtype=np.bool_)
        incomplete = np.zeros(len(active), dtype=np.bool_)
        for index in range(MAX_VARINT):
            there = at + 1 + index < stop
            incomplete |= ~decided & ~there
            decided |= ~there
            byte = buffer[np.minimum(at + 1 + index, last)].astype(np.int64)
            taking = ~decided
            value[taking] |= (byte[taking] & 0x7F) << (7 * index)
            finished = taking & (byte & 0x80 == 0)
            header[finished] = 2 + index
            decided |= finished
        lost = ~decided
        size = np.where(lost, stop - at, header + value)
        incomplete |= ~lost & (at + size > stop)
        leftover[active[incomplete]] = (stop - at)[incomplete]
        taken = ~incomplete
        found.append((active[taken], at[taken], size[taken], np.where(lost, 0, header)[taken]))
        position[active[taken]] += size[taken]
        going = taken & ~lost
        active = active[going][position[active[going]] < end[active[going]]]
    columns = [np.concatenate([f[i] for f in found]) if found else np.zeros(0, np.int64) for i in range(4)]
    order = np.lexsort((columns[1], columns[0]))
    segment, at, size, header = (column[order] for column in columns)
    return segment, at, size, header, leftover


def extract(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> MqttColumns:
    """The packet rows of the segments `buffer[start:start + length]`, each starting at a packet
    boundary; `from_server[i]` tells whether segment i was sent by the server."""
    buffer = np.asarray(buffer, dtype=np.uint8)
    segment, at, size, header, leftover = _walk(buffer, np.asarray(starts), np.asarray(lengths))
    rows = len(segment)
    last = max(len(buffer) - 1, 0)
    pdu_index = (np.arange(rows) - np.searchsorted(segment, segment, side="left")).astype(np.int32)
    offset = at - np.asarray(starts, dtype=np.int64)[segment]
    is_response = np.asarray(from_server, dtype=np.bool_)[segment]

    def octet(where: Ints) -> Ints:
        return buffer[np.minimum(where, last)].astype(np.int64)

    first = octet(at)
    kind, flags = first >> 4, first & 0x0F
    framed = header > 0
    remaining = size - header
    body = at + header
    empty = framed & np.isin(kind, (PINGREQ, PINGRESP, DISCONNECT)) & (flags == 0) & (remaining == 0)
    acks = np.isin(kind, (PUBACK, PUBREC, PUBCOMP)) & (flags == 0) | (kind == PUBREL) & (flags == 2)
    acks &= framed & (remaining == 2)
    qos = (flags >> 1) & 3
    topic_length = (octet(body) << 8) | octet(body + 1)
    publish = framed & (kind == PUBLISH) & (qos < 3) & (remaining >= 2)
    publish &= 2 + topic_length + np.where(qos > 0, 2, 0) <= remaining
    id_at = np.where(kind == PUBLISH, body + 2 + topic_length, body)
    packet_id = (octet(id_at) << 8) | octet(id_at + 1)

    topics = np.empty(rows, dtype=object)
    topics.fill(())
    data = buffer.tobytes()
    for row in np.flatnonzero(publish).tolist():
        start = int(body[row]) + 2
        try:
            topic = data[start : start + int(topic_length[row])].decode("utf-8")
        except UnicodeDecodeError:
            publish[row] = False
            continue
        if "\x00" in topic or "+" in topic or "#" in topic:
            publish[row] = False
        else:
            topics[row] = (topic,) if topic else ()
    done = empty | acks | publish

    own: dict[str, Any] = {}
    for column in SCHEMA:
        own[column.name] = np.empty(rows, dtype=column.dtype)
        own[column.name].fill(column.none)
    own["packet_type"][done] = kind[done]
    own["flags"][done] = flags[done]
    own["remaining_length"][done] = remaining[done]
    own["qos"][publish] = qos[publish]
    own["retain"][publish] = (flags[publish] & 1) == 1
    own["dup"][publish] = (flags[publish] & 8) == 8
    with_id = acks | (publish & (qos > 0))
    own["packet_id"][with_id] = packet_id[with_id]

    function = np.empty(rows, dtype=object)
    function.fill("")
    function[done] = _NAMES[kind[done]]
    summary = SummaryColumns(
        function_code=np.where(done, kind, -1).astype(np.int32),
        function=function,
        operation=np.where(publish & ~is_response, Operation.WRITE, Operation.OTHER).astype(np.uint8),
        is_response=is_response.copy(),
        unit=np.full(rows, -1, dtype=np.int32),
        address=np.full(rows, -1, dtype=np.int64),
        quantity=np.fromiter((len(t) for t in topics.tolist()), np.int32, rows),
        targets=topics,
        result=np.full(rows, -1, dtype=np.int32),
        status=np.full(rows, ParseStatus.OK, dtype=np.uint8),
        finding=np.zeros(rows, dtype=np.uint8),
    )

    rest = np.flatnonzero(~done)
    if rest.size:
        messages = [
            decode(data[a : a + s], bool(r), int(o))
            for a, s, r, o in zip(
                at[rest].tolist(),
                size[rest].tolist(),
                is_response[rest].tolist(),
                offset[rest].tolist(),
                strict=True,
            )
        ]
        exact = MqttColumns.from_messages(SCHEMA, messages, segment[rest], pdu_index[rest], leftover)
        for column in SCHEMA:
            own[column.name][rest] = exact.own[column.name]
        for name in (
            "function_code",
            "function",
            "operation",
            "address",
            "quantity",
            "targets",
            "result",
            "status",
            "finding",
        ):
            getattr(summary, name)[rest] = getattr(exact.summary, name)
    return MqttColumns(segment, pdu_index, offset, summary, own, leftover)
