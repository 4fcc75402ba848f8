"""Payloads of a capture, read with the sensor's own reader and layer decoder, for the protocol
modules' oracle tests: each TCP segment's new bytes (retransmissions dropped, as the sensor does)
or each UDP datagram, with its frame number and direction; and the PDUs an exact decoder finds in
them, keyed like tshark's output by (frame number, index of the PDU within the frame).

A PDU split over segments is keyed by the frame that completes it, as tshark shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from plantwarden.capture.layers.columns import PROTO_TCP, PROTO_UDP
from plantwarden.capture.layers.decode import decode_layers
from plantwarden.capture.pcap import read_capture
from plantwarden.capture.tcp import TcpStream

SYN = 0x02
Message = TypeVar("Message")
DecodePayload = Callable[[bytes, bool], tuple[list[Message], bytes]]
"""An exact decoder: (payload, from_server) -> (the complete PDUs' messages, the bytes of an
incomplete last PDU, to be put before the next segment of the same direction)."""


@dataclass(frozen=True, slots=True)
class Payload:
    frame: int
    from_server: bool
    data: bytes
    stream: tuple[bytes, int, bytes, int]
    """(source address, source port, destination address, destination port)."""


def payloads(capture: Path, transport: int, ports: tuple[int, ...]) -> Iterator[Payload]:
    """Every TCP segment (`transport` 6) or UDP datagram (17) to or from `ports` that carries
    bytes, in capture order; for TCP only the bytes not seen before on its direction."""
    streams: dict[tuple[bytes, int, bytes, int], TcpStream] = {}
    for batch in read_capture(capture):
        layers = decode_layers(batch)
        for row in range(len(batch)):
            if int(layers.ip_proto[row]) != transport or int(layers.payload_offset[row]) < 0:
                continue
            source, destination = int(layers.src_port[row]), int(layers.dst_port[row])
            if source not in ports and destination not in ports:
                continue
            key = (bytes(layers.src_addr[row]), source, bytes(layers.dst_addr[row]), destination)
            start, length = int(layers.payload_offset[row]), int(layers.payload_length[row])
            data = batch.buffer[start : start + length].tobytes()
            if transport == PROTO_TCP:
                stream = streams.setdefault(key, TcpStream())
                sequence = int(layers.tcp_seq[row])
                if int(layers.tcp_flags[row]) & SYN:
                    stream.syn(sequence)
                data = stream.accept(sequence, data) if data else b""
            elif transport != PROTO_UDP:
                raise ValueError(f"transport {transport} is neither TCP nor UDP")
            if data:
                yield Payload(batch.first_number + row, source in ports, data, key)


def decoded(
    capture: Path, transport: int, ports: tuple[int, ...], decode_payload: DecodePayload[Message]
) -> dict[tuple[int, int], tuple[bool, Message]]:
    """Every PDU `decode_payload` finds, by (frame, index within the frame), with its direction.

    TCP bytes left over at the end of a segment go before the next one of the same direction;
    a datagram is decoded on its own."""
    found: dict[tuple[int, int], tuple[bool, Message]] = {}
    leftovers: dict[tuple[bytes, int, bytes, int], bytes] = {}
    for payload in payloads(capture, transport, ports):
        data = leftovers.pop(payload.stream, b"") + payload.data
        messages, rest = decode_payload(data, payload.from_server)
        if rest and transport == PROTO_TCP:
            leftovers[payload.stream] = rest
        for index, message in enumerate(messages):
            found[payload.frame, index] = (payload.from_server, message)
    return found
