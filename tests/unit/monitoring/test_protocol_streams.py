"""The stream path of the protocols beside Modbus: whatever the segments (split PDUs,
retransmissions, both directions) and the batches, the PDUs are the exact decoder's over the
reassembled stream, each once, at the packet that completes it."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwarden.capture.batch import PacketBatch
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.sensor import Sensor
from plantwarden.protocols import iec104
from plantwarden.protocols.common import Summary
from plantwarden.sim.wire import IpHost, Link, Segment, TcpConnection, TcpEnd, ip_bytes, mac_bytes
from tests.unit.protocols.dnp3 import builders as dnp3_builders

S = 1_000_000_000
IEC104 = PROTOCOLS["iec104"]


def connection() -> TcpConnection:
    client = TcpEnd(IpHost(ip_bytes("10.0.0.1")), 40000, 1000)
    server = TcpEnd(IpHost(ip_bytes("10.0.0.2")), 2404, 5000, timestamps=False)
    return TcpConnection(client, server, Link(mac_bytes("02:00:00:00:00:01"), mac_bytes("02:00:00:00:00:02")))


def interrogation(send: int, receive: int, common: int) -> bytes:
    """An I frame: C_IC_NA_1 (100), cause activation (6), IOA 0, QOI 20 (104 sec. 5.1, 101 sec. 7.3.4.1)."""
    asdu = bytes([100, 1, 6, 0]) + struct.pack("<H", common) + b"\0\0\0" + bytes([20])
    return bytes([0x68, 4 + len(asdu)]) + struct.pack("<HH", send << 1, receive << 1) + asdu


def supervisory(receive: int) -> bytes:
    return bytes([0x68, 4, 0x01, 0x00]) + struct.pack("<H", receive << 1)


TESTFR_ACT = bytes([0x68, 4, 0x43, 0, 0, 0])

apdus = st.one_of(
    st.builds(interrogation, st.integers(0, 0x7FFF), st.integers(0, 0x7FFF), st.integers(0, 0xFFFF)),
    st.builds(supervisory, st.integers(0, 0x7FFF)),
    st.just(TESTFR_ACT),
    st.binary(min_size=1, max_size=3),  # junk: framing is lost for the rest of the segment, on both paths
)


@st.composite
def conversations(draw: st.DrawFn) -> tuple[list[Segment], dict[bool, list[bytes]]]:
    """Segments of one connection, and per direction (from the client?) the data of its segments
    in order, retransmissions left out."""
    tcp = connection()
    segments = [*tcp.handshake(1.0, 0.001)]
    streams: dict[bool, list[bytes]] = {True: [], False: []}
    time = 1.1
    for _ in range(draw(st.integers(1, 12))):
        from_client = draw(st.booleans())
        data = b"".join(draw(st.lists(apdus, min_size=1, max_size=4)))
        cuts = sorted(draw(st.sets(st.integers(1, len(data) - 1), max_size=3))) if len(data) > 1 else []
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            time += 0.01
            segments.append(tcp.send(time, from_client, data[start:end]))
            streams[from_client].append(data[start:end])
            if draw(st.integers(0, 9)) == 0:
                time += 0.01
                segments.append(tcp.retransmit(time, from_client, data[start:end]))
    return segments, streams


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations(), st.sampled_from([1, 2, 3, 5, 64]))
def test_any_segmenting_and_batching_gives_the_exact_decoders_pdus(
    conversation: tuple[list[Segment], dict[bool, list[bytes]]], batch_size: int
) -> None:
    segments, streams = conversation
    sensor = Sensor(protocols=(IEC104,))
    found: dict[bool, list[Summary]] = {True: [], False: []}
    for first in range(0, len(segments), batch_size):
        part = segments[first : first + batch_size]
        batch = PacketBatch.from_packets([(int(s.time * S), s.frame) for s in part], first_number=first + 1)
        sensor.process(batch)
        result = sensor.last_protocols["iec104"]
        for side, summary in zip(result.from_server.tolist(), result.summary.summaries(), strict=True):
            found[not side].append(summary)
    counters = sensor.finish()
    for from_client, chunks in streams.items():
        expected, pending = [], b""
        for chunk in chunks:  # the exact decoder, segment by segment, behind what was left over
            messages, pending = iec104.decode_payload(pending + chunk, not from_client)
            expected += [message.summary() for message in messages]
        assert found[from_client] == expected
    assert counters.protocols["iec104"].pdus == sum(len(found[side]) for side in found)


def test_a_split_apdu_is_counted_at_the_packet_that_completes_it_and_a_retransmission_once() -> None:
    tcp = connection()
    first, second = interrogation(0, 0, 1), interrogation(1, 0, 1)
    segments = [*tcp.handshake(1.0, 0.001)]
    segments.append(tcp.send(1.1, True, first + second[:5], push=False))
    segments.append(tcp.send(1.2, True, second[5:]))
    segments.append(tcp.retransmit(1.5, True, second[5:]))
    segments.append(tcp.send(1.6, True, TESTFR_ACT))
    sensor = Sensor(protocols=(IEC104,))
    sensor.process(PacketBatch.from_packets([(int(s.time * S), s.frame) for s in segments]))
    result = sensor.last_protocols["iec104"]
    assert (result.packet + 1).tolist() == [4, 5, 7]
    assert [s.function for s in result.summary.summaries()] == ["c_ic_na_1", "c_ic_na_1", "testfr_act"]
    counters = sensor.finish()
    assert counters.stream_findings["retransmission"] == 1
    assert counters.protocols["iec104"].segments == 4 and counters.protocols["iec104"].exact_segments == 2


@pytest.mark.parametrize("cut", [10, 150, 300, 600])
def test_a_dnp3_fragment_whose_frames_are_cut_anywhere_is_put_together(cut: int) -> None:
    # A response of three link frames (292, 292 and 140 bytes) in two TCP segments, cut inside
    # the first frame, inside the second, or between them: the sensor must hand the frame that
    # ends the fragment the whole application layer, and pair it with its request.
    values = b"".join(struct.pack("<Bi", 0x01, value) for value in range(120))
    master, outstation = 1, 10
    request = dnp3_builders.request(1, dnp3_builders.all_objects(60, 1), sequence=3)
    asked = dnp3_builders.link_frame(
        dnp3_builders.MASTER_TO_OUTSTATION, outstation, master, dnp3_builders.transport(request)
    )
    fragment = dnp3_builders.response(
        129, 0, 0, dnp3_builders.start_stop(30, 1, 0, 119, width=2) + values, sequence=3
    )
    answer = b"".join(
        dnp3_builders.frames_for(fragment, dnp3_builders.OUTSTATION_TO_MASTER, master, outstation)
    )
    client = TcpEnd(IpHost(ip_bytes("10.0.0.1")), 40000, 1000)
    server = TcpEnd(IpHost(ip_bytes("10.0.0.2")), 20000, 5000, timestamps=False)
    tcp = TcpConnection(client, server, Link(mac_bytes("02:00:00:00:00:01"), mac_bytes("02:00:00:00:00:02")))
    segments = [*tcp.handshake(1.0, 0.001), tcp.send(1.1, True, asked)]
    segments += [tcp.send(1.2, False, answer[:cut], push=False), tcp.send(1.21, False, answer[cut:])]
    for size in (1, len(segments)):
        sensor = Sensor(protocols=(PROTOCOLS["dnp3"],))
        functions: list[int] = []
        for start in range(0, len(segments), size):
            part = segments[start : start + size]
            first = sensor.counters.packets + 1
            sensor.process(
                PacketBatch.from_packets([(int(s.time * 1e9), s.frame) for s in part], first_number=first)
            )
            functions += sensor.last_protocols["dnp3"].summary.function_code.tolist()
        counters = sensor.finish().protocols["dnp3"]
        assert functions[0] == 1 and functions[-1] == 129, functions
        assert (counters.requests, counters.answered) == (1, 1)
