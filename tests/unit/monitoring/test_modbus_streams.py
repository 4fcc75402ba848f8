"""Modbus over TCP streams: the same PDUs whatever the batches, each once, and the TCP findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.pcap import read_capture
from plantwarden.monitoring.sensor import Sensor
from plantwarden.sim import modbus_messages as modbus
from plantwarden.sim.traffic.generator import generate
from plantwarden.sim.wire import IpHost, Link, Segment, TcpConnection, TcpEnd, ip_bytes, mac_bytes

S = 1_000_000_000


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("streams") / "plant.pcap"
    generate(path, seed=31, packets=12_000, attacks=["plc-stop", "unauthorized-write"])
    return path


def rows(path: Path, batch_size: int) -> list[tuple[int, ...]]:
    sensor = Sensor()
    found: list[tuple[int, ...]] = []
    for batch in read_capture(path, batch_size=batch_size):
        result = sensor.process(batch)
        columns = result.columns
        frames = result.packet + batch.first_number
        for index in range(len(columns)):
            row = columns.row(index)
            found.append(
                (int(frames[index]), row["transaction_id"], row["function_code"], row["is_response"])
            )
    sensor.finish()
    return found


@pytest.mark.parametrize("batch_size", [1, 7, 250])
def test_the_pdus_do_not_depend_on_how_packets_are_batched(capture: Path, batch_size: int) -> None:
    assert rows(capture, batch_size) == rows(capture, 65536)


def connection() -> TcpConnection:
    client = TcpEnd(IpHost(ip_bytes("10.0.0.1")), 40000, 1000)
    server = TcpEnd(IpHost(ip_bytes("10.0.0.2")), 502, 5000, timestamps=False)
    return TcpConnection(client, server, Link(mac_bytes("02:00:00:00:00:01"), mac_bytes("02:00:00:00:00:02")))


def batch_of(segments: list[Segment]) -> PacketBatch:
    return PacketBatch.from_packets([(int(s.time * S), s.frame) for s in segments])


def read_request(transaction: int) -> bytes:
    return modbus.adu(transaction, 1, modbus.request_pdu(modbus.read(3, transaction, 2)))


def test_a_split_pdu_and_a_retransmission_are_each_counted_once() -> None:
    tcp = connection()
    first, second = read_request(1), read_request(2)
    segments = [*tcp.handshake(1.0, 0.001)]
    segments.append(tcp.send(1.1, True, first + second[:9], push=False))
    segments.append(tcp.send(1.2, True, second[9:]))
    segments.append(tcp.retransmit(1.5, True, second[9:]))
    segments.append(tcp.send(1.6, True, read_request(3)))
    sensor = Sensor()
    result = sensor.process(batch_of(segments))
    assert result.columns.transaction_id.tolist() == [1, 2, 3]
    assert (result.packet + 1).tolist() == [4, 5, 7]  # each PDU at the frame that completes it
    assert sensor.finish().stream_findings["retransmission"] == 1


def test_overlapping_data_that_differs_is_reported_and_the_first_copy_kept() -> None:
    tcp = connection()
    segments = [*tcp.handshake(1.0, 0.001), tcp.send(1.1, True, read_request(1))]
    evasion = tcp.retransmit(1.2, True, read_request(9))  # the same sequence numbers, other bytes
    sensor = Sensor()
    result = sensor.process(batch_of([*segments, evasion]))
    assert result.columns.transaction_id.tolist() == [1]
    assert sensor.finish().stream_findings["overlap_mismatch"] == 1


def test_a_gap_restarts_the_stream_at_the_next_whole_pdu() -> None:
    tcp = connection()
    segments = [*tcp.handshake(1.0, 0.001), tcp.send(1.1, True, read_request(1))]
    tcp.send(1.2, True, read_request(2))  # lost before the capture point
    segments.append(tcp.send(1.3, True, read_request(3)))
    sensor = Sensor()
    result = sensor.process(batch_of(segments))
    assert result.columns.transaction_id.tolist() == [1, 3]
    assert sensor.finish().stream_findings["gap"] == 1


def test_requests_are_paired_with_their_answers_or_recorded_unanswered() -> None:
    tcp = connection()
    image = {"holding": {1: 7, 2: 8}}
    request = modbus.read(3, 1, 2)
    segments = [*tcp.handshake(1.0, 0.001)]
    segments.append(tcp.send(1.1, True, modbus.adu(1, 1, modbus.request_pdu(request))))
    segments.append(tcp.send(1.105, False, modbus.adu(1, 1, modbus.response_pdu(request, image))))
    segments.append(tcp.send(1.2, True, modbus.adu(2, 1, modbus.request_pdu(modbus.read(3, 5, 1)))))
    segments.append(tcp.send(1.21, False, modbus.adu(2, 1, modbus.response_pdu(modbus.read(3, 5, 1), image))))
    segments.append(tcp.send(1.3, True, modbus.adu(3, 1, modbus.request_pdu(request))))
    sensor = Sensor()
    sensor.process(batch_of(segments))
    counters = sensor.finish()
    assert (counters.requests, counters.answered, counters.exceptions, counters.unanswered) == (3, 2, 1, 1)
    assert counters.protocol_records == 3
