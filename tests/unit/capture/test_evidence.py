"""The evidence ring against tshark: slices read back by tshark hold exactly the packets tshark's
own filter picks from the original capture; rotation, age, restart, torn tails, bad arguments."""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.capture.batch import LINKTYPE_ETHERNET, LINKTYPE_RAW, PacketBatch
from plantwarden.capture.evidence import (
    MIN_SEGMENT_BYTES,
    EvidenceError,
    EvidenceRing,
    EvidenceRingBusy,
    evidence_item,
    pcap_records,
)
from plantwarden.capture.pcap import read_capture
from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.sim.traffic.generator import generate
from tests.output_support import files_of, full_disk

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
FIELDS = ("-T", "fields", "-e", "frame.time_epoch", "-e", "ip.src", "-e", "ip.dst")
PACKETS = 6000
BUSY_HOST = "127.10.1.10"
END = 1 << 62


def tshark_rows(capture: Path, *arguments: str) -> list[tuple[str, ...]]:
    """(time, ip.src, ip.dst) of every frame tshark reads (and keeps, given -Y)."""
    assert TSHARK is not None
    command = [TSHARK, "-n", "-r", str(capture), *arguments, *FIELDS]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return [tuple(line.split("\t")) for line in result.stdout.splitlines()]


def to_ns(epoch: str) -> int:
    return int(Decimal(epoch) * 1_000_000_000)


def epoch(ts_ns: int) -> str:
    return f"{ts_ns // 1_000_000_000}.{ts_ns % 1_000_000_000:09d}"


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plant's traffic (VLAN-tagged Modbus, DNS, NTP, ARP ...), small and always available."""
    path = tmp_path_factory.mktemp("evidence") / "plant.pcap"
    generate(path, seed=7, packets=PACKETS)
    return path


@pytest.fixture(scope="module")
def original_rows(capture: Path) -> list[tuple[str, ...]]:
    """tshark's reading of the whole original capture (read once: tshark takes a while to start)."""
    if TSHARK is None:
        pytest.skip("tshark is not installed (apt-get install tshark)")
    return tshark_rows(capture)


def batches(capture: Path, size: int = 997) -> Iterator[PacketBatch]:
    return read_capture(capture, batch_size=size)


def fill(ring: EvidenceRing, capture: Path, size: int = 997) -> None:
    for batch in batches(capture, size):
        ring.add(batch)


def all_times(capture: Path) -> list[int]:
    return [int(ts) for batch in batches(capture) for ts in batch.ts_ns]


@needs_tshark
@pytest.mark.parametrize("hosts", [(BUSY_HOST,), ("127.10.2.11", "127.10.3.13"), ()])
def test_slice_is_what_tshark_filters_from_the_original(
    capture: Path, tmp_path: Path, hosts: tuple[str, ...]
) -> None:
    times = all_times(capture)
    since, until = times[1000], times[4500]
    with EvidenceRing(tmp_path / "ring", segment_bytes=MIN_SEGMENT_BYTES) as ring:
        fill(ring, capture)
        assert len(ring.segments()) > 3
        written = ring.write_slice(tmp_path / "slice.pcap", since, until, hosts)
    window = f"frame.time_epoch >= {epoch(since)} && frame.time_epoch < {epoch(until)}"
    hosts_filter = " || ".join(f"ip.addr=={host}" for host in hosts)
    display = f"({window}) && ({hosts_filter})" if hosts else window
    expected = tshark_rows(capture, "-Y", display)
    got = tshark_rows(written.path)
    assert got == expected
    assert written.packets == len(expected) > 100
    assert written.format == "pcap"
    assert written.size == written.path.stat().st_size
    assert all(since <= to_ns(row[0]) < until for row in got)


def test_a_slice_that_fills_the_disk_keeps_the_file_it_would_replace(capture: Path, tmp_path: Path) -> None:
    """`sensor evidence -o`: the slice handed over yesterday stays as it was, and no partial
    capture is left beside it (the temporary had a fixed name and was left behind)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "slice.pcap").write_bytes(b"the slice handed to the investigators, kept" * 20)
    before = files_of(out)
    with EvidenceRing(tmp_path / "ring", segment_bytes=MIN_SEGMENT_BYTES) as ring:
        fill(ring, capture)
        with pytest.raises(OSError, match="File too large"), full_disk():
            ring.write_slice(out / "slice.pcap", 0, END)
        assert files_of(out) == before
        assert ring.write_slice(out / "slice.pcap", 0, END).packets == PACKETS
        assert stat.S_IMODE((out / "slice.pcap").stat().st_mode) == 0o600  # packets, as the ring keeps them


def test_a_slice_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """A slice holds the plant's packets (credentials sent in clear among them): 0600 as the ring's
    own files, new or replacing a file others could read."""
    frame = b"\xff" * 12 + b"\x08\x00" + bytes(20)
    batch = PacketBatch.from_packets([(1_767_600_000 * 1_000_000_000, frame)])
    shared = tmp_path / "shared.pcap"
    shared.write_bytes(b"old")
    shared.chmod(0o644)
    with EvidenceRing(tmp_path / "ring") as ring:
        ring.add(batch)
        for target in (tmp_path / "new.pcap", shared):
            ring.write_slice(target, 0, END)
            assert stat.S_IMODE(target.stat().st_mode) == 0o600, target


@needs_tshark
def test_limit_keeps_the_first_matching_packets(capture: Path, tmp_path: Path) -> None:
    with EvidenceRing(tmp_path / "ring", segment_bytes=MIN_SEGMENT_BYTES) as ring:
        fill(ring, capture)
        whole = ring.write_slice(tmp_path / "whole.pcap", 0, END, [BUSY_HOST])
        limited = ring.write_slice(tmp_path / "limited.pcap", 0, END, [BUSY_HOST], limit_packets=25)
    assert limited.packets == 25
    assert tshark_rows(limited.path) == tshark_rows(whole.path)[:25]


@needs_tshark
def test_vlan_qinq_ipv6_and_arp_frames(tmp_path: Path) -> None:
    """Tagged IPv4 and IPv6 match by their IP; an ARP frame naming the host is no IP packet."""
    mac = bytes.fromhex("020000000001") + bytes.fromhex("020000000002")
    ipv4 = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, bytes([10, 0, 0, 5]), bytes([10, 0, 0, 9])
    )
    udp = struct.pack("!HHHH", 1000, 2000, 8, 0)
    v6_source = bytes.fromhex("fd000000000000000000000000000005")
    ipv6 = struct.pack("!IHBB16s16s", 0x60000000, 8, 17, 64, v6_source, bytes(15) + b"\x09") + udp
    tag = struct.pack("!HH", 0x8100, 10)
    qinq = struct.pack("!HH", 0x88A8, 100) + struct.pack("!HH", 0x8100, 20)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac[6:], bytes([10, 0, 0, 5]), bytes(6), bytes(4))
    frames = [
        mac + tag + b"\x08\x00" + ipv4 + udp,
        mac + qinq + b"\x08\x00" + ipv4 + udp,
        mac + qinq + b"\x86\xdd" + ipv6,
        mac + b"\x08\x06" + arp,
        mac + b"\x08\x00" + ipv4.replace(bytes([10, 0, 0, 5]), bytes([10, 0, 0, 7])) + udp,
    ]
    start = 1_767_600_000 * 1_000_000_000
    batch = PacketBatch.from_packets([(start + i * 1000, frame) for i, frame in enumerate(frames)])
    original = tmp_path / "original.pcap"
    with EvidenceRing(tmp_path / "ring") as ring:
        ring.add(batch)
        ring.write_slice(original, 0, END)
        written = ring.write_slice(tmp_path / "slice.pcap", 0, END, ["10.0.0.5", "fd00::5"])
    assert written.packets == 3
    expected = tshark_rows(original, "-Y", "ip.addr==10.0.0.5 || ipv6.addr==fd00::5")
    assert tshark_rows(written.path) == expected
    assert len(expected) == 3


@needs_tshark
def test_several_link_types_make_a_pcapng_slice(tmp_path: Path) -> None:
    ipv4 = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20, 1, 0, 64, 6, 0, bytes([10, 0, 0, 5]), bytes([10, 0, 0, 9])
    )
    ethernet = PacketBatch.from_packets([(1_000_000_000, bytes(12) + b"\x08\x00" + ipv4)])
    raw = PacketBatch.from_packets([(2_000_000_000, ipv4)], linktype=LINKTYPE_RAW)
    with EvidenceRing(tmp_path / "ring") as ring:
        ring.add(ethernet)
        ring.add(raw)
        ring.add(ethernet)
        assert [segment.linktype for segment in ring.segments()] == [
            LINKTYPE_ETHERNET,
            LINKTYPE_RAW,
            LINKTYPE_ETHERNET,
        ]
        written = ring.write_slice(tmp_path / "slice.pcapng", 0, END, ["10.0.0.9"])
    assert written.format == "pcapng"
    rows = tshark_rows(written.path)
    assert [row[1:] for row in rows] == [("10.0.0.5", "10.0.0.9")] * 3
    assert [to_ns(row[0]) for row in rows] == [1_000_000_000, 2_000_000_000, 1_000_000_000]


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.pcap"))


@needs_tshark
def test_rotation_keeps_the_newest_packets_under_max_bytes(
    capture: Path, original_rows: list[tuple[str, ...]], tmp_path: Path
) -> None:
    directory = tmp_path / "ring"
    max_bytes = 3 * MIN_SEGMENT_BYTES
    with EvidenceRing(directory, max_bytes=max_bytes, segment_bytes=MIN_SEGMENT_BYTES) as ring:
        for batch in batches(capture, 500):
            ring.add(batch)
            on_disk = sum(path.stat().st_size for path in segment_files(directory))
            assert on_disk == ring.size <= max_bytes
        kept = ring.write_slice(tmp_path / "kept.pcap", 0, END)
    assert capture.stat().st_size > 2 * max_bytes
    original = original_rows
    rows = tshark_rows(kept.path)
    assert max_bytes - 2 * MIN_SEGMENT_BYTES < kept.size <= max_bytes
    assert rows == original[-len(rows) :]
    assert segment_files(directory)[0].name != "000000000001.pcap"


def test_old_segments_go_after_max_age(capture: Path, tmp_path: Path) -> None:
    times = all_times(capture)
    assert times[-1] - times[0] > 90 * 1_000_000_000
    with EvidenceRing(tmp_path / "ring", segment_bytes=MIN_SEGMENT_BYTES, max_age_s=30) as ring:
        fill(ring, capture)
        segments = ring.segments()
    newest = max(times)
    assert all(segment.last_ns >= newest - 30 * 1_000_000_000 for segment in segments)
    assert min(segment.first_ns for segment in segments) > times[0]


@needs_tshark
def test_restart_continues_the_ring(
    capture: Path, original_rows: list[tuple[str, ...]], tmp_path: Path
) -> None:
    directory = tmp_path / "ring"
    parts = list(batches(capture, 1500))
    with EvidenceRing(directory, segment_bytes=MIN_SEGMENT_BYTES) as ring:
        for batch in parts[:2]:
            ring.add(batch)
    with EvidenceRing(directory, segment_bytes=MIN_SEGMENT_BYTES) as ring:
        for batch in parts[2:]:
            ring.add(batch)
        written = ring.write_slice(tmp_path / "all.pcap", 0, END)
    assert tshark_rows(written.path) == original_rows
    index = json.loads((directory / "index.json").read_text())
    assert [entry["name"] for entry in index["segments"]] == [path.name for path in segment_files(directory)]


def test_a_file_named_like_a_segment_with_other_digits_is_not_one(tmp_path: Path) -> None:
    directory = tmp_path / "ring"
    directory.mkdir()
    (directory / "².pcap").write_bytes(b"")  # str.isdigit() took it, int() then raised
    (directory / "١٢.pcap").write_bytes(b"")
    with EvidenceRing(directory, segment_bytes=MIN_SEGMENT_BYTES) as ring:
        assert list(ring.segments()) == []


CRASH = """
import os, sys
from plantwarden.capture.evidence import EvidenceRing
from plantwarden.capture.pcap import read_capture
ring = EvidenceRing(sys.argv[1], segment_bytes=1 << 16)
for batch in read_capture(sys.argv[2], batch_size=1000):
    ring.add(batch)
os._exit(0)  # a crash: no close, the last segment is left open and out of the index
"""


@needs_tshark
def test_a_torn_tail_is_cut_to_the_last_whole_packet(
    capture: Path, original_rows: list[tuple[str, ...]], tmp_path: Path
) -> None:
    directory = tmp_path / "ring"
    subprocess.run([sys.executable, "-c", CRASH, str(directory), str(capture)], check=True)
    last = segment_files(directory)[-1]
    whole = last.stat().st_size
    indexed = {entry["name"] for entry in json.loads((directory / "index.json").read_text())["segments"]}
    assert last.name not in indexed
    with last.open("ab") as stream:
        stream.write(struct.pack("<IIII", 1, 0, 200, 200) + bytes(50))  # a record cut short
    with EvidenceRing(directory, segment_bytes=MIN_SEGMENT_BYTES) as ring:
        assert last.stat().st_size == whole
        written = ring.write_slice(tmp_path / "all.pcap", 0, END)
        assert tshark_rows(written.path) == original_rows
        ring.add(next(iter(batches(capture, 10))))
    assert len(tshark_rows(last)) > 0
    assert (
        sum(segment.packets for segment in EvidenceRing(directory, readonly=True).segments()) == PACKETS + 10
    )


def test_an_empty_segment_left_by_a_crash_is_removed(tmp_path: Path) -> None:
    directory = tmp_path / "ring"
    directory.mkdir()
    (directory / "000000000007.pcap").write_bytes(b"\x4d\x3c\xb2\xa1\x02\x00")
    with EvidenceRing(directory) as ring:
        assert ring.segments() == ()
        ring.add(PacketBatch.from_packets([(5, bytes(60))]))
        assert [segment.name for segment in ring.segments()] == ["000000000008.pcap"]
    assert not (directory / "000000000007.pcap").exists()


@needs_tshark
def test_a_reader_slices_while_the_writer_runs(capture: Path, tmp_path: Path) -> None:
    directory = tmp_path / "ring"
    with EvidenceRing(directory, segment_bytes=MIN_SEGMENT_BYTES) as ring:
        fill(ring, capture)
        with pytest.raises(EvidenceRingBusy):
            EvidenceRing(directory)
        reader = EvidenceRing(directory, readonly=True)
        data = reader.slice(0, END, [BUSY_HOST])
        assert data == ring.slice(0, END, [BUSY_HOST])
        with pytest.raises(EvidenceError, match="read-only"):
            reader.add(next(iter(batches(capture))))
    (tmp_path / "slice.pcap").write_bytes(data)
    assert tshark_rows(tmp_path / "slice.pcap") == tshark_rows(capture, "-Y", f"ip.addr=={BUSY_HOST}")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"segment_bytes": 1000}, "segment_bytes must be at least"),
        (
            {"max_bytes": MIN_SEGMENT_BYTES, "segment_bytes": 2 * MIN_SEGMENT_BYTES},
            "must be at least segment_bytes",
        ),
        ({"max_bytes": 1.5e9}, "whole number of bytes"),
        ({"max_age_s": 0}, "max_age_s must be a positive"),
        ({"max_age_s": -5.0}, "max_age_s must be a positive"),
    ],
)
def test_bad_ring_arguments(tmp_path: Path, arguments: dict[str, object], message: str) -> None:
    with pytest.raises(EvidenceError, match=message):
        EvidenceRing(tmp_path / "ring", **arguments)  # type: ignore[arg-type]


def test_bad_places(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(EvidenceError, match="not a directory"):
        EvidenceRing(tmp_path / "file")
    with pytest.raises(NotFound, match="no evidence ring"):
        EvidenceRing(tmp_path / "missing", readonly=True)
    ring = EvidenceRing(tmp_path / "ring")
    ring.close()
    with pytest.raises(EvidenceError, match="closed"):
        ring.add(PacketBatch.from_packets([(1, bytes(60))]))


@pytest.mark.parametrize(
    ("since", "until", "hosts", "limit", "message"),
    [
        (10, 10, (), None, "the window is empty"),
        (20, 10, (), None, "the window is empty"),
        (-1, 10, (), None, "since_ns must be nanoseconds"),
        (0, 1.5, (), None, "until_ns must be nanoseconds"),
        (0, 10, ("10.0.0.300",), None, "not an IPv4 or IPv6 address"),
        (0, 10, "10.0.0.1", None, "not the single string"),
        (0, 10, ("0.0.0.0",), None, "names no host"),
        (0, 10, (), 0, "limit_packets must be 1 or more"),
    ],
)
def test_bad_slice_arguments(
    tmp_path: Path, since: int, until: int, hosts: tuple[str, ...], limit: int | None, message: str
) -> None:
    with EvidenceRing(tmp_path / "ring") as ring, pytest.raises(InvalidInput, match=message):
        ring.slice(since, until, hosts, limit)
    with EvidenceRing(tmp_path / "ring") as ring, pytest.raises(EvidenceError, match="is not a directory"):
        ring.write_slice(tmp_path / "missing" / "slice.pcap", 0, 10)


def test_evidence_item_is_plain_json(tmp_path: Path) -> None:
    with EvidenceRing(tmp_path / "ring") as ring:
        ring.add(PacketBatch.from_packets([(1_767_600_000_123_456_789, bytes(60))]))
        written = ring.write_slice(
            tmp_path / "slice.pcap", 1_767_600_000_000_000_000, 1_767_600_001_000_000_000
        )
    item = written.evidence()
    assert json.loads(json.dumps(item)) == item
    assert item == {
        "kind": "pcap",
        "path": os.fspath(tmp_path / "slice.pcap"),
        "since": "2026-01-05T08:00:00+00:00",
        "until": "2026-01-05T08:00:01+00:00",
        "since_ns": 1_767_600_000_000_000_000,
        "until_ns": 1_767_600_001_000_000_000,
        "hosts": [],
        "packets": 1,
        "sha256": written.sha256,
        "bytes": 24 + 16 + 60,
    }
    stored = evidence_item("slice-42", 5, 9, ["10.0.0.5", "FD00::0005"], 3)
    assert stored["slice_id"] == "slice-42"
    assert (stored["src"], stored["dst"], stored["hosts"]) == ("10.0.0.5", "fd00::5", ["10.0.0.5", "fd00::5"])
    with pytest.raises(EvidenceError, match="packets must be a count"):
        evidence_item("slice-42", 5, 9, [], -1)
    with pytest.raises(EvidenceError, match="must not be empty"):
        evidence_item("", 5, 9, [], 1)


MAX_TS_NS = (1 << 32) * 1_000_000_000 - 1
packets_strategy = st.lists(
    st.tuples(st.integers(0, (1 << 63) - 1), st.binary(max_size=300), st.integers(0, 40)),
    min_size=1,
    max_size=30,
)


def reference_records(packets: list[tuple[int, bytes, int]]) -> bytes:
    """pcap records written one by one with struct, the layout numpy must reproduce."""
    out = b""
    for ts, frame, _ in packets:
        ts = min(ts, MAX_TS_NS)
        out += struct.pack("<IIII", ts // 1_000_000_000, ts % 1_000_000_000, len(frame), len(frame)) + frame
    return out


def laid_out(packets: list[tuple[int, bytes, int]], gaps: list[int]) -> PacketBatch:
    """A batch whose buffer holds the packets with `gaps[i]` bytes of junk before packet i."""
    buffer, offsets = bytearray(), []
    for (_, frame, _), gap in zip(packets, gaps, strict=True):
        buffer += bytes([0xEE]) * gap
        offsets.append(len(buffer))
        buffer += frame
    lengths = np.array([len(frame) for _, frame, _ in packets], dtype=np.int32)
    return PacketBatch(
        buffer=np.frombuffer(bytes(buffer), dtype=np.uint8),
        offsets=np.array(offsets, dtype=np.int64),
        lengths=lengths,
        wire_lengths=lengths.copy(),
        ts_ns=np.array([ts for ts, _, _ in packets], dtype=np.int64),
        linktypes=np.ones(len(packets), dtype=np.uint16),
        interfaces=np.zeros(len(packets), dtype=np.uint16),
    )


@settings(max_examples=100, deadline=None)
@given(packets_strategy, st.data())
def test_records_equal_struct_on_both_paths(
    packets: list[tuple[int, bytes, int]], data: st.DataObject
) -> None:
    """The copy of a batch spaced as in a pcap file (16 bytes between packets) and the gather of a
    batch with any gaps give the records struct writes one by one."""
    spaced = laid_out(packets, [16] * len(packets))
    gapped = laid_out(packets, [gap for _, _, gap in packets])
    expected = reference_records(packets)
    assert pcap_records(spaced).tobytes() == expected
    assert pcap_records(gapped).tobytes() == expected
    start = data.draw(st.integers(0, len(packets) - 1))
    stop = data.draw(st.integers(start + 1, len(packets)))
    assert pcap_records(spaced, start, stop).tobytes() == reference_records(packets[start:stop])
    assert pcap_records(gapped, start, stop).tobytes() == reference_records(packets[start:stop])
