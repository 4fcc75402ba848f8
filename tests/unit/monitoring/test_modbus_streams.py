"""Modbus over TCP streams: the same PDUs whatever the batches, each once, and the TCP findings."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.pcap import read_capture
from plantwarden.monitoring import modbus_streams
from plantwarden.monitoring.sensor import Sensor
from plantwarden.protocols.modbus import Extracted
from plantwarden.sim import modbus_messages as modbus
from plantwarden.sim.traffic.generator import generate
from plantwarden.sim.wire import IpHost, Link, Segment, TcpConnection, TcpEnd, ip_bytes, mac_bytes

S = 1_000_000_000


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("streams") / "plant.pcap"
    generate(path, seed=31, packets=12_000, attacks=["plc-stop", "unauthorized-write"])
    return path


@pytest.fixture(scope="module")
def short_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same plant and attacks in fewer packets, for batches of one packet (each batch has a
    fixed cost, so 12,000 of them take half a minute)."""
    path = tmp_path_factory.mktemp("streams") / "short.pcap"
    generated = generate(path, seed=31, packets=3_000, attacks=["plc-stop", "unauthorized-write"])
    assert generated.ledger["attack_packets"] > 0
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


@pytest.mark.parametrize("batch_size", [7, 250])
def test_the_pdus_do_not_depend_on_how_packets_are_batched(capture: Path, batch_size: int) -> None:
    assert rows(capture, batch_size) == rows(capture, 65536)


def test_batches_of_one_packet_give_the_same_pdus(short_capture: Path) -> None:
    assert rows(short_capture, 1) == rows(short_capture, 65536)


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


def test_a_split_pdu_and_what_follows_it_stay_on_the_fast_path() -> None:
    tcp = connection()
    first, second = read_request(1), read_request(2)
    segments = [*tcp.handshake(1.0, 0.001)]
    segments.append(tcp.send(1.1, True, first + second[:9], push=False))
    segments.append(tcp.send(1.2, True, second[9:]))
    segments.append(tcp.send(1.3, True, read_request(3)))
    sensor = Sensor()
    result = sensor.process(batch_of(segments))
    assert result.columns.transaction_id.tolist() == [1, 2, 3]
    assert (result.packet + 1).tolist() == [4, 5, 6]
    assert result.columns.offset.tolist() == [0, 0, 0]  # the second PDU starts in the pending bytes
    assert result.exact_segments == 2  # the SYN and the SYN-ACK only


def test_a_pdu_split_over_three_segments_is_decoded_once_where_it_ends() -> None:
    tcp = connection()
    second = read_request(2)
    segments = [*tcp.handshake(1.0, 0.001)]
    segments.append(tcp.send(1.1, True, read_request(1) + second[:3], push=False))
    segments.append(tcp.send(1.2, True, second[3:8], push=False))
    segments.append(tcp.send(1.3, True, second[8:] + read_request(3)))
    for batches in ([segments], [[segment] for segment in segments]):
        sensor = Sensor()
        found = [(int(row), tid) for part in batches for row, tid in _frames_and_ids(sensor, part)]
        assert found == [(4, 1), (6, 2), (6, 3)]


def _frames_and_ids(sensor: Sensor, segments: list[Segment]) -> list[tuple[int, int]]:
    first = int(sensor.counters.packets) + 1
    batch = PacketBatch.from_packets([(int(s.time * S), s.frame) for s in segments], first_number=first)
    result = sensor.process(batch)
    frames = (result.packet + batch.first_number).tolist()
    return list(zip(frames, result.columns.transaction_id.tolist(), strict=True))


def everything(path: Path, batch_size: int) -> tuple[list[list[int]], dict[str, int], int]:
    """Every column of every PDU (with its frame), the stream findings and the exact segments."""
    sensor = Sensor()
    found: list[list[int]] = []
    for batch in read_capture(path, batch_size=batch_size):
        result = sensor.process(batch)
        found += [
            [int(frame), *row]
            for frame, row in zip(
                (result.packet + batch.first_number).tolist(),
                zip(*(column.tolist() for column in result.columns.arrays().values()), strict=True),
                strict=True,
            )
        ]
    counters = sensor.finish()
    return found, dict(counters.stream_findings), counters.exact_segments


@pytest.mark.parametrize(("batch_size", "which"), [(7, "short_capture"), (65536, "capture")])
def test_the_exact_path_alone_gives_what_the_fast_path_gives(
    request: pytest.FixtureRequest, batch_size: int, which: str
) -> None:
    capture: Path = request.getfixturevalue(which)
    fast, fast_findings, fast_exact = everything(capture, batch_size)

    def nothing_sound(extracted: Extracted) -> np.ndarray:
        return np.ones(len(extracted.leftover), dtype=bool)

    with patch.object(modbus_streams, "_unsound", nothing_sound):  # every segment on the exact path
        exact, exact_findings, exact_count = everything(capture, batch_size)
    assert fast == exact and fast_findings == exact_findings
    assert exact_count > 10 * fast_exact


ACTIONS = st.lists(
    st.tuples(
        st.integers(0, 1),  # which connection
        st.booleans(),  # from the client
        st.sampled_from(["send", "send", "send", "send", "again", "altered", "lost", "back"]),
        st.integers(1, 40),  # bytes
        st.booleans(),  # the last packet of its batch
    ),
    min_size=1,
    max_size=40,
)


def _stream_bytes(seed: int) -> bytes:
    """PDUs end to end, with a few bytes of garbage between some."""
    parts = [read_request(tid) + (b"\x00\x07\x01" if (tid * seed) % 7 == 3 else b"") for tid in range(60)]
    return b"".join(parts)


def _played(actions: list[tuple[int, bool, str, int, bool]], handshake: bool) -> list[list[Segment]]:
    """The captured segments of two connections acting out `actions`, cut into batches."""
    tcps = [connection(), connection()]
    tcps[1].client.port, tcps[1].client.sequence = 40001, 77
    sources = {(c, side): _stream_bytes(c * 2 + side + 1) for c in (0, 1) for side in (0, 1)}
    sent = dict.fromkeys(sources, 0)
    last: dict[tuple[int, int], bytes] = {}
    batches: list[list[Segment]] = [[*tcps[0].handshake(1.0, 0.001)] if handshake else []]
    time = 1.1
    for which, from_client, kind, size, cut in actions:
        tcp, key, time = tcps[which], (which, int(from_client)), time + 0.001
        if kind in ("again", "altered") and key in last:
            payload = last[key] if kind == "again" else bytes(b ^ 0x55 for b in last[key])
            batches[-1].append(tcp.retransmit(time, from_client, payload))
        elif kind == "back" and key in last:  # overlapping data, partly old, partly new
            sender = tcp.client if from_client else tcp.server
            sender.sequence = (sender.sequence - min(size, len(last[key]))) & 0xFFFFFFFF
            batches[-1].append(tcp.send(time, from_client, sources[key][sent[key] : sent[key] + size]))
        else:
            payload = sources[key][sent[key] : sent[key] + size] or b"\x00"
            sent[key] += size
            segment = tcp.send(time, from_client, payload)
            last[key] = payload
            if kind != "lost":
                batches[-1].append(segment)
        if cut:
            batches.append([])
    return [batch for batch in batches if batch]


def _everything_of(batches: list[list[Segment]]) -> tuple[list[list[int]], dict[str, int]]:
    sensor, found, first = Sensor(), [], 1
    for segments in batches:
        batch = PacketBatch.from_packets([(int(s.time * S), s.frame) for s in segments], first_number=first)
        result = sensor.process(batch)
        first += len(segments)
        frames = (result.packet + batch.first_number).tolist()
        columns = zip(*(column.tolist() for column in result.columns.arrays().values()), strict=True)
        found += [[frame, *row] for frame, row in zip(frames, columns, strict=True)]
    return found, dict(sensor.finish().stream_findings)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIONS, st.booleans())
def test_any_segmentation_retransmission_gap_or_overlap_reads_as_the_exact_path_reads_it(
    actions: list[tuple[int, bool, str, int, bool]], handshake: bool
) -> None:
    batches = _played(actions, handshake)

    def nothing_sound(extracted: Extracted) -> np.ndarray:
        return np.ones(len(extracted.leftover), dtype=bool)

    fast = _everything_of(batches)
    with patch.object(modbus_streams, "_unsound", nothing_sound):
        exact = _everything_of(batches)
    assert fast == exact


@pytest.mark.parametrize("cut", [None, 4])
def test_a_second_half_is_decoded_behind_the_bytes_really_pending(cut: int | None) -> None:
    # The second half of `split`, read alone, looks like a sound ADU and a partial one: as if
    # the next segment continued it. It does not: the stream stands at a boundary after it.
    split = modbus.adu(2, 1, bytes.fromhex("10 0000 0003 06 1234 0000 0006"))  # ends 00 00 00 06
    whole = modbus.adu(3, 1, bytes.fromhex("03 0000 0006"))
    tail = bytes.fromhex("0004 0000 0006")  # behind `whole`'s last six bytes, one more "ADU"
    tcp = connection()
    segments = [*tcp.handshake(1.0, 0.001)]
    segments.append(tcp.send(1.1, True, read_request(1) + split[:13], push=False))
    segments.append(tcp.send(1.2, True, split[13:] + whole))
    segments.append(tcp.send(1.3, True, tail))
    batches = [segments] if cut is None else [segments[:cut], segments[cut:]]
    found, _ = _everything_of(batches)
    assert [(row[0], row[4]) for row in found] == [(4, 1), (5, 2), (5, 3)]  # frame, transaction id

    def nothing_sound(extracted: Extracted) -> np.ndarray:
        return np.ones(len(extracted.leftover), dtype=bool)

    with patch.object(modbus_streams, "_unsound", nothing_sound):
        assert _everything_of(batches)[0] == found


def _all_unsound(extracted: Extracted) -> np.ndarray:
    return np.ones(len(extracted.leftover), dtype=bool)


@pytest.mark.parametrize("cut", [None, 4, 5])
def test_a_repeated_second_half_then_more_is_not_joined_twice(cut: int | None) -> None:
    """A write whose second half arrives, is retransmitted, and is followed by more data: the
    fast path (which keeps a repeat of the segment before it) reads what the exact path reads."""
    split = modbus.adu(2, 1, bytes.fromhex("10 0000 0003 06 1234 0000 0006"))  # ends 00 00 00 06
    whole = modbus.adu(3, 1, bytes.fromhex("03 0000 0006"))
    tail = bytes.fromhex("0004 0000 0006")
    tcp = connection()
    segments = [*tcp.handshake(1.0, 0.001)]
    segments.append(tcp.send(1.1, True, read_request(1) + split[:13], push=False))
    second = split[13:] + whole
    segments.append(tcp.send(1.2, True, second))
    segments.append(tcp.retransmit(1.25, True, second))
    segments.append(tcp.send(1.3, True, tail + read_request(4)))
    segments.append(tcp.send(1.4, True, read_request(5)))
    batches = [segments] if cut is None else [segments[:cut], segments[cut:]]
    fast = _everything_of(batches)
    with patch.object(modbus_streams, "_unsound", _all_unsound):  # every segment on the exact path
        exact = _everything_of(batches)
    assert fast == exact
