"""The protocol modules the sensor decodes beside Modbus, each adapted to the stream path.

Most modules export `MODULE` (their `ProtocolModule`), `extract(buffer, starts, lengths,
from_server)` giving columns with `summary`, `segment` (per row) and `leftover` (per segment),
`decode_payload(payload, from_server)` giving messages with `summary()` and the bytes of a
partial last PDU, and in their `keys` module `REQUEST_KEYS`, read from their own columns (on
the columns, or in the columns' `own` or `ids` table) and from the same fields of the messages.
Where a module differs (S7comm's extractor returns its columns and leftovers apart; DNP3,
EtherNet/IP and BACnet have datagram decoders for UDP), its adapter says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from plantwarden.monitoring.protocol_streams import Own, StreamProtocol
from plantwarden.protocols import bacnet, dnp3, enip, iec104, mqtt, opcua, s7comm
from plantwarden.protocols.bacnet.keys import REQUEST_KEYS as BACNET_KEYS
from plantwarden.protocols.common import ProtocolModule, RequestKeys, StreamCheck, SummaryColumns
from plantwarden.protocols.dnp3.keys import REQUEST_KEYS as DNP3_KEYS
from plantwarden.protocols.dnp3.messages import TRANSPORT_FIN, TRANSPORT_FIR
from plantwarden.protocols.enip.keys import REQUEST_KEYS as ENIP_KEYS
from plantwarden.protocols.iec104.keys import REQUEST_KEYS as IEC104_KEYS
from plantwarden.protocols.iec104.sequences import SEQUENCE_CHECK
from plantwarden.protocols.mqtt.keys import REQUEST_KEYS as MQTT_KEYS
from plantwarden.protocols.opcua.channels import CHANNEL_CHECK
from plantwarden.protocols.opcua.keys import REQUEST_KEYS as OPCUA_KEYS
from plantwarden.protocols.s7comm.keys import REQUEST_KEYS as S7COMM_KEYS

Bytes = npt.NDArray[np.uint8]
Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Ports = npt.NDArray[np.uint16]


class _Module(Protocol):
    MODULE: ProtocolModule

    def extract(self, buffer: Any, starts: Any, lengths: Any, from_server: Any) -> Any: ...

    def decode_payload(self, payload: bytes, from_server: bool) -> tuple[list[Any], bytes]: ...


def own_column(found: Any, name: str) -> npt.NDArray[Any]:
    """An extractor's own column `name`: in its `own` or `ids` table, or an attribute."""
    for holder in ("own", "ids"):
        table = getattr(found, holder, None)
        if isinstance(table, dict) and name in table:
            return np.asarray(table[name])
    return np.asarray(getattr(found, name))


def own_columns(found: Any, names: tuple[str, ...]) -> Own:
    """An extractor's own columns `names`."""
    return {name: own_column(found, name) for name in names}


def summariser(names: tuple[str, ...]) -> Callable[[list[Any]], tuple[SummaryColumns, Own]]:
    """The exact path's messages -> (summaries, their own columns `names`)."""

    def summarise(messages: list[Any]) -> tuple[SummaryColumns, Own]:
        summary = SummaryColumns.from_summaries([message.summary() for message in messages])
        return summary, {name: _field(messages, name) for name in names}

    return summarise


def _names(keys: RequestKeys, check: StreamCheck | None) -> tuple[str, ...]:
    """The own columns the sensor reads of a module with `keys` and `check`."""
    return tuple(dict.fromkeys(keys.columns + (check.columns if check else ())))


def _field(messages: list[Any], name: str) -> npt.NDArray[Any]:
    """The messages' field `name` as a column; an unsigned 64-bit field (EtherNet/IP's sender
    context) as the signed number of the same bits, as the extractors keep it."""
    values = [getattr(message, name) for message in messages]
    if not values:
        return np.zeros(0, dtype=np.int64)
    if any(isinstance(value, int) and value >= 1 << 63 for value in values):
        values = [value - (1 << 64) if value >= 1 << 63 else value for value in values]
    return np.array(values)


def stream_protocol(
    module: _Module,
    keys: RequestKeys,
    columns: Callable[[Any], tuple[Any, Ints]] | None = None,
    needs_state: Callable[[Any], Mask] | None = None,
    check: StreamCheck | None = None,
) -> StreamProtocol:
    """`module` on the stream path (TCP), its answers paired by `keys`, its connections checked
    by `check`; `columns` takes its extractor's output apart into (columns with `summary` and
    `segment`, leftover per segment) where that differs; `needs_state` finds the rows that need
    their stream's decoder."""
    names = _names(keys, check)

    def extract(
        buffer: Bytes, starts: Ints, lengths: Ints, from_server: Mask
    ) -> tuple[SummaryColumns, Own, Ints, Ints, Mask | None]:
        found = module.extract(buffer, starts, lengths, from_server)
        rows, leftover = columns(found) if columns else (found, found.leftover)
        summary: SummaryColumns = rows.summary
        segment = np.asarray(rows.segment, dtype=np.int64)
        stateful = needs_state(rows) if needs_state else None
        return summary, own_columns(rows, names), segment, np.asarray(leftover, dtype=np.int64), stateful

    return StreamProtocol(module.MODULE, extract, module.decode_payload, summariser(names), keys, check)


def _bacnet() -> StreamProtocol:
    def datagrams(
        buffer: Bytes, starts: Ints, lengths: Ints, from_server: Mask, _: Ports
    ) -> tuple[SummaryColumns, Own, Ints]:
        found = bacnet.extract(buffer, starts, lengths, from_server)
        return (
            found.summary,
            own_columns(found, BACNET_KEYS.columns),
            np.asarray(found.segment, dtype=np.int64),
        )

    def one(payload: bytes, from_server: bool, _: int) -> list[Any]:
        return list(bacnet.decode_payload(payload, from_server)[0])

    protocol = stream_protocol(bacnet, BACNET_KEYS)
    return replace(protocol, extract_datagrams=datagrams, decode_datagram=one)


def _dnp3() -> StreamProtocol:
    def one(payload: bytes, from_server: bool, _: int) -> list[Any]:
        return list(dnp3.decode_datagram(payload, from_server)[0])

    def datagrams(
        buffer: Bytes, starts: Ints, lengths: Ints, from_server: Mask, ports: Ports
    ) -> tuple[SummaryColumns, Own, Ints]:
        # DNP3 over UDP is rare: each datagram through the exact decoder.
        found: list[Any] = []
        segment: list[int] = []
        rows = zip(starts.tolist(), lengths.tolist(), from_server.tolist(), ports.tolist(), strict=True)
        for index, (start, length, server, port) in enumerate(rows):
            messages = one(buffer[start : start + length].tobytes(), bool(server), port)
            found += messages
            segment += [index] * len(messages)
        summary, own = protocol.summarise(found)
        return summary, own, np.array(segment, dtype=np.int64)

    def segments(found: Any) -> Mask:
        # A transport segment of a longer application fragment: its stream puts them together.
        transport = np.asarray(found.transport)
        whole = TRANSPORT_FIR | TRANSPORT_FIN
        stateful: Mask = (transport >= 0) & (transport & whole != whole)
        return stateful

    protocol = stream_protocol(dnp3, DNP3_KEYS, needs_state=segments)
    return replace(
        protocol, extract_datagrams=datagrams, decode_datagram=one, stream_decoder=dnp3.Reassembler
    )


def _enip() -> StreamProtocol:
    def datagrams(
        buffer: Bytes, starts: Ints, lengths: Ints, from_server: Mask, ports: Ports
    ) -> tuple[SummaryColumns, Own, Ints]:
        found = enip.extract(
            buffer, starts, lengths, from_server, datagram=ports == enip.UDP_PORT, io=ports == enip.IO_PORT
        )
        return found.summary, own_columns(found, ENIP_KEYS.columns), np.asarray(found.segment, dtype=np.int64)

    def one(payload: bytes, from_server: bool, port: int) -> list[Any]:
        decode = enip.decode_io_datagram if port == enip.IO_PORT else enip.decode_datagram
        return list(decode(payload, from_server)[0])

    protocol = stream_protocol(enip, ENIP_KEYS)
    return replace(protocol, extract_datagrams=datagrams, decode_datagram=one)


PROTOCOLS: dict[str, StreamProtocol] = {
    protocol.module.name: protocol
    for protocol in (
        _bacnet(),
        _dnp3(),
        _enip(),
        stream_protocol(iec104, IEC104_KEYS, check=SEQUENCE_CHECK),
        stream_protocol(mqtt, MQTT_KEYS),
        stream_protocol(opcua, OPCUA_KEYS, check=CHANNEL_CHECK),
        stream_protocol(s7comm, S7COMM_KEYS, lambda found: (found.columns, found.leftover)),
    )
}
"""Every protocol the sensor decodes beside Modbus, by name."""


def service_ports(modbus_ports: tuple[int, ...], protocols: tuple[StreamProtocol, ...]) -> set[int]:
    """The ports industrial servers listen on, as the flow table takes them to tell a connection's
    server from its client when it was not seen opening: the Modbus ports and those of every
    protocol module the sensor knows (decoded or not, so that a flow's direction does not depend
    on which protocols are turned on)."""
    ports = tcp_protocol_ports(modbus_ports, protocols)
    for protocol in (*PROTOCOLS.values(), *protocols):
        ports.update(protocol.module.udp_ports)
    return ports


def tcp_protocol_ports(modbus_ports: tuple[int, ...], protocols: tuple[StreamProtocol, ...]) -> set[int]:
    """The TCP ports of Modbus and of every protocol module the sensor knows (decoded or not, so
    that which protocol a connection speaks does not depend on which are turned on)."""
    ports = set(modbus_ports)
    for protocol in (*PROTOCOLS.values(), *protocols):
        ports.update(protocol.module.tcp_ports)
    return ports
