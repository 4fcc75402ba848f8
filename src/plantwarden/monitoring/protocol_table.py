"""The protocol modules the sensor decodes beside Modbus, each adapted to the stream path.

Most modules export `MODULE` (their `ProtocolModule`), `extract(buffer, starts, lengths,
from_server)` giving columns with `summary`, `segment` (per row) and `leftover` (per segment),
and `decode_payload(payload, from_server)` giving messages with `summary()` and the bytes of a
partial last PDU. Where a module differs (S7comm's extractor returns its columns and leftovers
apart; DNP3, EtherNet/IP and BACnet have datagram decoders for UDP), its adapter says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from plantwarden.monitoring.protocol_streams import StreamProtocol
from plantwarden.protocols import bacnet, dnp3, enip, iec104, mqtt, opcua, s7comm
from plantwarden.protocols.common import ProtocolModule, Summary, SummaryColumns

Bytes = npt.NDArray[np.uint8]
Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Ports = npt.NDArray[np.uint16]
Rows = tuple[SummaryColumns, Ints]
"""Summaries, and each row's datagram."""
Split = Callable[[Any], tuple[Any, Ints]]


class _Module(Protocol):
    MODULE: ProtocolModule

    def extract(self, buffer: Any, starts: Any, lengths: Any, from_server: Any) -> Any: ...

    def decode_payload(self, payload: bytes, from_server: bool) -> tuple[list[Any], bytes]: ...


def _summaries(decode: Callable[[bytes, bool], tuple[list[Any], bytes]]) -> Callable[..., Any]:
    """`decode` giving summaries rather than messages."""

    def summaries(payload: bytes, from_server: bool) -> tuple[list[Summary], bytes]:
        messages, rest = decode(payload, from_server)
        return [message.summary() for message in messages], rest

    return summaries


def stream_protocol(
    module: _Module, columns: Callable[[Any], tuple[Any, Ints]] | None = None
) -> StreamProtocol:
    """`module` on the stream path (TCP); `columns` takes its extractor's output apart into
    (columns with `summary` and `segment`, leftover per segment) where that differs."""

    def extract(
        buffer: Bytes, starts: Ints, lengths: Ints, from_server: Mask
    ) -> tuple[SummaryColumns, Ints, Ints]:
        found = module.extract(buffer, starts, lengths, from_server)
        rows, leftover = columns(found) if columns else (found, found.leftover)
        summary: SummaryColumns = rows.summary
        return summary, np.asarray(rows.segment, dtype=np.int64), np.asarray(leftover, dtype=np.int64)

    return StreamProtocol(module.MODULE, extract, _summaries(module.decode_payload))


def _bacnet() -> StreamProtocol:
    def datagrams(
        buffer: Bytes, starts: Ints, lengths: Ints, from_server: Mask, _: Ports
    ) -> tuple[SummaryColumns, Ints]:
        found = bacnet.extract(buffer, starts, lengths, from_server)
        return found.summary, np.asarray(found.segment, dtype=np.int64)

    def one(payload: bytes, from_server: bool, _: int) -> list[Summary]:
        return [message.summary() for message in bacnet.decode_payload(payload, from_server)[0]]

    protocol = stream_protocol(bacnet)
    return StreamProtocol(protocol.module, protocol.extract, protocol.decode_payload, datagrams, one)


def _dnp3() -> StreamProtocol:
    def one(payload: bytes, from_server: bool, _: int) -> list[Summary]:
        return [message.summary() for message in dnp3.decode_datagram(payload, from_server)[0]]

    def datagrams(
        buffer: Bytes, starts: Ints, lengths: Ints, from_server: Mask, ports: Ports
    ) -> tuple[SummaryColumns, Ints]:
        # DNP3 over UDP is rare: each datagram through the exact decoder.
        found: list[Summary] = []
        segment: list[int] = []
        rows = zip(starts.tolist(), lengths.tolist(), from_server.tolist(), ports.tolist(), strict=True)
        for index, (start, length, server, port) in enumerate(rows):
            summaries = one(buffer[start : start + length].tobytes(), bool(server), port)
            found += summaries
            segment += [index] * len(summaries)
        return SummaryColumns.from_summaries(found), np.array(segment, dtype=np.int64)

    protocol = stream_protocol(dnp3)
    return StreamProtocol(protocol.module, protocol.extract, protocol.decode_payload, datagrams, one)


def _enip() -> StreamProtocol:
    def datagrams(
        buffer: Bytes, starts: Ints, lengths: Ints, from_server: Mask, ports: Ports
    ) -> tuple[SummaryColumns, Ints]:
        found = enip.extract(
            buffer, starts, lengths, from_server, datagram=ports == enip.UDP_PORT, io=ports == enip.IO_PORT
        )
        return found.summary, np.asarray(found.segment, dtype=np.int64)

    def one(payload: bytes, from_server: bool, port: int) -> list[Summary]:
        decode = enip.decode_io_datagram if port == enip.IO_PORT else enip.decode_datagram
        return [message.summary() for message in decode(payload, from_server)[0]]

    protocol = stream_protocol(enip)
    return StreamProtocol(protocol.module, protocol.extract, protocol.decode_payload, datagrams, one)


PROTOCOLS: dict[str, StreamProtocol] = {
    protocol.module.name: protocol
    for protocol in (
        _bacnet(),
        _dnp3(),
        _enip(),
        stream_protocol(iec104),
        stream_protocol(mqtt),
        stream_protocol(opcua),
        stream_protocol(s7comm, lambda found: (found.columns, found.leftover)),
    )
}
"""Every protocol the sensor decodes beside Modbus, by name."""
