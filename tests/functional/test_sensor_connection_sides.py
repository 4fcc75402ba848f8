"""Which side of a connection the sensor takes for the server, and so which protocol it speaks.

Two ways the sensor misstated traffic: a capture that starts in the middle of a connection,
with a packet from the server (the flow was stored with the PLC as its client), and a client
whose source port happens to be another protocol's (a Modbus master polling from port 2404,
whose connection the IEC 104 dissector claimed). Generated captures show each case; the shared
captures where they were found are checked against tshark when they are present.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from plantwarden.capture.pcap import read_capture
from plantwarden.core.records.schema import FLOWS, PROTOCOL_RECORDS, Protocol, address_text
from plantwarden.monitoring.protocol_streams import StreamProtocol
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.sensor import Sensor, SensorCounters
from plantwarden.sim import modbus_messages as modbus
from plantwarden.sim.pcap import PcapWriter
from plantwarden.sim.wire import IpHost, Link, Segment, TcpConnection, TcpEnd, ip_bytes, mac_bytes
from tests.functional.test_sensor_protocol_records import Kept
from tests.tshark_support import fields

DATASETS = Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
MODBUS_LONG = DATASETS / "pcaps/iti-ics-security-tools/modbus/long/ModbusTCP.pcap"
LEMAY = DATASETS / "pcaps/lemay-modbus-cset16/characterization_modbus_6RTU_with_operate.pcap"
MASTER, PLC = "10.0.0.1", "10.0.0.2"
TESTFR_ACT, TESTFR_CON = bytes([0x68, 4, 0x43, 0, 0, 0]), bytes([0x68, 4, 0x83, 0, 0, 0])
Endpoints = tuple[str, int, str, int]
"""(client address, client port, server address, server port)."""


def connection(client_port: int, server_port: int) -> TcpConnection:
    client = TcpEnd(IpHost(ip_bytes(MASTER)), client_port, 1000)
    server = TcpEnd(IpHost(ip_bytes(PLC)), server_port, 5000, timestamps=False)
    return TcpConnection(client, server, Link(mac_bytes("02:00:00:00:00:01"), mac_bytes("02:00:00:00:00:02")))


def modbus_polls(tcp: TcpConnection, start: float, count: int) -> list[Segment]:
    """`count` reads of two holding registers, each answered."""
    image = {"holding": {0: 7, 1: 9}}
    segments = []
    for transaction in range(count):
        request = modbus.read(3, 0, 2)
        time = start + transaction * 0.1
        segments.append(tcp.send(time, True, modbus.adu(transaction, 1, modbus.request_pdu(request))))
        answer = modbus.adu(transaction, 1, modbus.response_pdu(request, image))
        segments.append(tcp.send(time + 0.01, False, answer))
    return segments


def write(path: Path, segments: list[Segment]) -> Path:
    with PcapWriter(path.open("wb"), owns_stream=True) as writer:
        for segment in segments:
            writer.write(1_700_000_000 + segment.time, segment.frame)
    return path


def sense(
    capture: Path, batch_size: int = 65536, protocols: tuple[StreamProtocol, ...] = tuple(PROTOCOLS.values())
) -> tuple[SensorCounters, Kept, dict[int, list[bool]]]:
    """The capture through a sensor decoding Modbus and `protocols`: its counters, its records,
    and per frame the sides (from the server?) of the Modbus PDUs it completes."""
    kept = Kept()
    sensor = Sensor(writer=kept, protocols=protocols)
    sides: dict[int, list[bool]] = {}
    for batch in read_capture(capture, batch_size=batch_size):
        found = sensor.process(batch)
        for packet, side in zip(found.packet.tolist(), found.from_server.tolist(), strict=True):
            sides.setdefault(batch.first_number + packet, []).append(side)
    return sensor.finish(), kept, sides


def records(kept: Kept, kind: object) -> dict[str, npt.NDArray[np.generic]]:
    """The records of `kind` the sensor wrote, as columns."""
    batches = [batch for batch in kept.batches if batch.kind is kind]
    assert batches, f"no {kind} records"
    return {name: np.concatenate([batch.columns[name] for batch in batches]) for name in batches[0].columns}


def tcp_flows(kept: Kept) -> set[Endpoints]:
    """The TCP flow records as (client, client port, server, server port)."""
    flows = records(kept, FLOWS)
    rows = zip(
        *(flows[name].tolist() for name in ("src_addr", "src_port", "dst_addr", "dst_port")), strict=True
    )
    tcp = flows["transport"] == 6
    return {
        (address_text(src), src_port, address_text(dst), dst_port)
        for (src, src_port, dst, dst_port), is_tcp in zip(rows, tcp.tolist(), strict=True)
        if is_tcp
    }


@pytest.mark.parametrize("batch_size", [1, 65536])
def test_a_capture_that_starts_with_the_server_s_packet_keeps_the_master_as_client(
    tmp_path: Path, batch_size: int
) -> None:
    tcp = connection(57184, 502)
    segments = [tcp.ack(1.0, False), *modbus_polls(tcp, 1.1, 3)]  # no handshake: mid-connection
    counters, kept, sides = sense(write(tmp_path / "middle.pcap", segments), batch_size)
    assert tcp_flows(kept) == {(MASTER, 57184, PLC, 502)}
    assert records(kept, FLOWS)["protocol"].tolist() == [Protocol.MODBUS]
    assert [sides[frame] for frame in sorted(sides)] == [[False], [True]] * 3
    assert (counters.requests, counters.answered, counters.unsolicited) == (3, 3, 0)


@pytest.mark.parametrize("opened", [True, False], ids=["with handshake", "mid-connection"])
def test_a_master_polling_from_the_iec_104_port_speaks_modbus(tmp_path: Path, opened: bool) -> None:
    tcp = connection(2404, 502)
    segments = [*tcp.handshake(1.0, 0.001)] if opened else [tcp.ack(1.0, False)]
    segments += modbus_polls(tcp, 1.1, 2)
    counters, kept, sides = sense(write(tmp_path / "polls.pcap", segments))
    iec104 = counters.protocols["iec104"]
    assert (iec104.segments, iec104.pdus, iec104.malformed) == (0, 0, 0)
    assert counters.modbus_pdus == 4 and [sides[frame] for frame in sorted(sides)] == [[False], [True]] * 2
    stored = records(kept, PROTOCOL_RECORDS)
    assert stored["protocol"].tolist() == [Protocol.MODBUS] * 2
    assert {address_text(one) for one in stored["src_addr"].tolist()} == {MASTER}
    assert stored["src_port"].tolist() == [2404, 2404] and stored["status"].tolist() == [0, 0]
    assert tcp_flows(kept) == {(MASTER, 2404, PLC, 502)}


def test_a_client_polling_from_the_modbus_port_speaks_iec_104(tmp_path: Path) -> None:
    tcp = connection(502, 2404)
    segments = [*tcp.handshake(1.0, 0.001), tcp.send(1.1, True, TESTFR_ACT), tcp.send(1.2, False, TESTFR_CON)]
    counters, kept, _ = sense(write(tmp_path / "iec104.pcap", segments))
    assert counters.modbus_segments == 0 and counters.modbus_pdus == 0
    assert counters.protocols["iec104"].pdus == 2 and counters.protocols["iec104"].malformed == 0
    assert tcp_flows(kept) == {(MASTER, 502, PLC, 2404)}
    assert records(kept, FLOWS)["protocol"].tolist() == [Protocol.IEC104]


def test_which_protocol_a_connection_speaks_does_not_depend_on_which_are_decoded(tmp_path: Path) -> None:
    """A client polling a DNP3 outstation (port 20000) from port 502, with only Modbus decoded:
    the connection is DNP3's, not Modbus's, though DNP3 is not decoded."""
    tcp = connection(502, 20000)
    segments = [*tcp.handshake(1.0, 0.001), *modbus_polls(tcp, 1.1, 1)]
    counters, kept, _ = sense(write(tmp_path / "dnp3.pcap", segments), protocols=())
    assert (counters.modbus_segments, counters.modbus_pdus) == (0, 0)
    assert tcp_flows(kept) == {(MASTER, 502, PLC, 20000)}
    assert records(kept, FLOWS)["protocol"].tolist() == [Protocol.UNKNOWN]


def shared(capture: Path) -> Path:
    if not capture.is_file():
        pytest.skip(f"the shared capture {capture} is absent (set PW_DATASETS to the shared datasets)")
    return capture


def test_the_long_modbus_capture_s_flows_are_tshark_s_queries() -> None:
    """The capture starts with an ACK from PLC 141.81.0.86:502 to the master's port 57184."""
    capture = shared(MODBUS_LONG)
    _, kept, _ = sense(capture)
    queries = fields(
        capture, ["ip.src", "tcp.srcport", "ip.dst", "tcp.dstport"], "mbtcp && tcp.dstport == 502"
    )
    expected = {(src, int(sport), dst, int(dport)) for src, sport, dst, dport in queries}
    assert ("141.81.0.10", 57184, "141.81.0.86", 502) in expected
    assert tcp_flows(kept) == expected


def test_the_lemay_capture_s_poll_from_port_2404_is_modbus_as_tshark_says() -> None:
    """Frame 228 opens 192.168.1.100:2404 -> 192.168.1.106:502; frames 231 and 234 are a
    Modbus query and its response."""
    capture = shared(LEMAY)
    counters, kept, sides = sense(capture, batch_size=64)
    theirs = fields(capture, ["frame.number", "tcp.srcport", "mbtcp.trans_id", "iec60870_104.apdulen"])
    modbus_frames = {int(frame): int(port) == 502 for frame, port, trans, _ in theirs if trans}
    assert {231: False, 234: True}.items() <= modbus_frames.items()
    assert not any(apdu for *_, apdu in theirs)
    assert {frame: side for frame, (side,) in sides.items()} == modbus_frames
    assert all(protocol.pdus == 0 for protocol in counters.protocols.values())
    stored = records(kept, PROTOCOL_RECORDS)
    from_2404 = (stored["src_port"] == 2404) | (stored["dst_port"] == 2404)
    assert stored["protocol"][from_2404].tolist() == [Protocol.MODBUS]
    assert [address_text(one) for one in stored["src_addr"][from_2404].tolist()] == ["192.168.1.100"]
    syns = fields(
        capture,
        ["ip.src", "tcp.srcport", "ip.dst", "tcp.dstport"],
        "tcp.flags.syn == 1 && tcp.flags.ack == 0",
    )
    assert tcp_flows(kept) == {(src, int(sport), dst, int(dport)) for src, sport, dst, dport in syns}


def test_a_device_that_connects_out_from_the_modbus_port_still_speaks_modbus(tmp_path: Path) -> None:
    """As in modbus_test_data_part1.pcap (frame 88): the device opens the connection from port
    502 to the master's port 4446, which no protocol claims, and answers the master's requests
    on it; tshark decodes it as Modbus, and so does the sensor."""
    device = TcpEnd(IpHost(ip_bytes(PLC)), 502, 5000)
    master = TcpEnd(IpHost(ip_bytes(MASTER)), 4446, 1000, timestamps=False)
    tcp = TcpConnection(device, master, Link(mac_bytes("02:00:00:00:00:02"), mac_bytes("02:00:00:00:00:01")))
    request = modbus.read(3, 0, 2)
    segments = [
        *tcp.handshake(1.0, 0.001),
        tcp.send(1.1, False, modbus.adu(1, 1, modbus.request_pdu(request))),
        tcp.send(1.2, True, modbus.adu(1, 1, modbus.response_pdu(request, {"holding": {0: 7, 1: 9}}))),
    ]
    counters, kept, sides = sense(write(tmp_path / "reverse.pcap", segments))
    assert [sides[frame] for frame in sorted(sides)] == [[False], [True]]
    assert (counters.requests, counters.answered) == (1, 1)
    assert tcp_flows(kept) == {(PLC, 502, MASTER, 4446)}
    assert records(kept, FLOWS)["protocol"].tolist() == [Protocol.MODBUS]
