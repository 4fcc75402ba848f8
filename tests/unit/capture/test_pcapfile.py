"""The pcap and pcapng readers: the shared captures against the inventory and tshark, hand-built
files of every variant, cut and corrupt files, any batch and chunk size, and a FIFO read live."""

from __future__ import annotations

import io
import itertools
import os
import struct
import subprocess
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.errors import CaptureCorrupt, CaptureTruncated, NotACapture
from plantwarden.capture.pcap import open_capture_reader, read_capture
from tests.tshark_support import tshark

DATASETS = Path(__file__).resolve().parents[4] / "shared" / "datasets"
INVENTORY = DATASETS / "PCAP_INVENTORY.tsv"
SUFFIXES = {".pcap", ".pcapng", ".cap"}
SHB, IDB, OPB, SPB, NRB, ISB, EPB, DSB, CUSTOM = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6, 0x0A, 0x40000BAD


@dataclass(frozen=True)
class Packet:
    """What a reader must give for one packet."""

    ts_ns: int
    data: bytes
    wire: int
    linktype: int = 1
    interface: int = 0


def packets_of(batches: list[PacketBatch]) -> list[Packet]:
    out = []
    for batch in batches:
        for i in range(len(batch)):
            out.append(
                Packet(
                    int(batch.ts_ns[i]),
                    batch.packet(i),
                    int(batch.wire_lengths[i]),
                    int(batch.linktypes[i]),
                    int(batch.interfaces[i]),
                )
            )
    return out


def read_bytes(content: bytes, name: str = "test.cap", *, read_size: int = 1 << 20) -> list[Packet]:
    stream = io.BytesIO(content)
    stream.name = name
    with open_capture_reader(stream, read_size=read_size) as reader:
        return packets_of(list(reader))


# ----- hand-built captures -------------------------------------------------------------------------


def pcap(packets: list[Packet], *, order: str = "<", nano: bool = False, linktype: int = 1) -> bytes:
    """A classic pcap file of `packets` (their times must fit the resolution)."""
    per_second = 1_000_000_000 if nano else 1_000_000
    out = struct.pack(order + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)
    for packet in packets:
        seconds, fraction = divmod(packet.ts_ns, 1_000_000_000)
        fraction //= 1_000_000_000 // per_second
        out += struct.pack(order + "IIII", seconds, fraction, len(packet.data), packet.wire) + packet.data
    return out


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def block(order: str, kind: int, body: bytes) -> bytes:
    body = padded(body)
    return struct.pack(order + "II", kind, 12 + len(body)) + body + struct.pack(order + "I", 12 + len(body))


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + padded(value)


def section(order: str) -> bytes:
    return block(order, SHB, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def interface(
    order: str, linktype: int, snaplen: int = 0, *, tsresol: int | None = None, offset: int = 0
) -> bytes:
    options = option(order, 2, b"eth-test")
    if tsresol is not None:
        options += option(order, 9, bytes([tsresol]))
    if offset:
        options += option(order, 14, struct.pack(order + "q", offset))
    return block(
        order, IDB, struct.pack(order + "HHI", linktype, 0, snaplen) + options + option(order, 0, b"")
    )


def enhanced(order: str, number: int, ticks: int, data: bytes, wire: int, options: bytes = b"") -> bytes:
    head = struct.pack(order + "IIIII", number, ticks >> 32, ticks & 0xFFFFFFFF, len(data), wire)
    return block(order, EPB, head + padded(data) + options)


def obsolete(order: str, number: int, ticks: int, data: bytes, wire: int) -> bytes:
    head = struct.pack(order + "HHIIII", number, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), wire)
    return block(order, OPB, head + data)


def simple(order: str, data: bytes, wire: int) -> bytes:
    return block(order, SPB, struct.pack(order + "I", wire) + data)


def frame(n: int, size: int) -> bytes:
    return bytes((n * 7 + i) % 256 for i in range(size))


T0 = 1_700_000_000


def two_section_blocks() -> tuple[list[bytes], list[Packet]]:
    """Two sections (little-, then big-endian), two interfaces each with other link types and
    resolutions, every packet block type, and blocks to skip; and the packets a reader must give."""
    le, be = "<", ">"
    ns_ticks = T0 * 10**9 + 123_456_789
    bin_ticks = (T0 << 10) + 512 + 3  # in 2^-10 s: 0.5029296875 s after T0
    epb_options = option(le, 2, b"\x01\x00\x00\x00") + option(le, 0, b"")
    blocks = [
        section(le),
        interface(le, 1, 64, tsresol=9),
        interface(le, 101, tsresol=0x80 | 10, offset=100),
        block(le, NRB, option(le, 1, b"\x0a\x00\x00\x01host\x00") + option(le, 0, b"")),
        enhanced(le, 0, ns_ticks, frame(1, 60), 60),
        enhanced(le, 1, bin_ticks, frame(2, 40), 1500, epb_options),
        simple(le, frame(3, 100)[:64], 100),  # cut to interface 0's snaplen
        obsolete(le, 1, bin_ticks + 1024, frame(4, 33), 33),
        block(le, ISB, struct.pack(le + "III", 0, 0, 0)),
        block(le, CUSTOM, b"\x00\x00\x00\x01pen"),
        section(be),
        interface(be, 228),
        interface(be, 1, tsresol=3),
        block(be, DSB, b"TLSK\x00\x00\x00\x04abcd"),
        enhanced(be, 1, T0 * 1000 + 7, frame(5, 54), 54),
        enhanced(be, 0, T0 * 10**6 + 999_999, frame(6, 20), 20),
        block(be, 0x12345678, b"unknown block"),
    ]
    expected = [
        Packet(T0 * 10**9 + 123_456_789, frame(1, 60), 60, 1, 0),
        Packet((T0 + 100) * 10**9 + 502_929_687, frame(2, 40), 1500, 101, 1),
        Packet(0, frame(3, 100)[:64], 100, 1, 0),
        Packet((T0 + 101) * 10**9 + 502_929_687, frame(4, 33), 33, 101, 1),
        Packet(T0 * 10**9 + 7_000_000, frame(5, 54), 54, 1, 3),
        Packet(T0 * 10**9 + 999_999_000, frame(6, 20), 20, 228, 2),
    ]
    return blocks, expected


def two_sections() -> tuple[bytes, list[Packet]]:
    blocks, expected = two_section_blocks()
    return b"".join(blocks), expected


def sample_packets(sizes: list[int], *, nano: bool = False) -> list[Packet]:
    step = 1 if nano else 1000
    return [
        Packet(T0 * 10**9 + n * 1_000_017 * step, frame(n, size), size + n % 3)
        for n, size in enumerate(sizes)
    ]


def single_section(packets: list[Packet]) -> tuple[bytes, list[int]]:
    """A one-interface pcapng file, and the offset where each block ends."""
    blocks = [section("<"), interface("<", 1)] + [
        enhanced("<", 0, p.ts_ns // 1000, p.data, p.wire) for p in packets
    ]
    ends = [sum(len(b) for b in blocks[: i + 1]) for i in range(len(blocks))]
    return b"".join(blocks), ends


def record_ends(packets: list[Packet]) -> list[int]:
    ends, position = [24], 24
    for packet in packets:
        position += 16 + len(packet.data)
        ends.append(position)
    return ends


# ----- the shared captures -------------------------------------------------------------------------


def _inventory() -> dict[str, int]:
    if not INVENTORY.exists():
        return {}
    rows = [line.split("\t") for line in INVENTORY.read_text().splitlines()[1:]]
    return {row[0]: int(row[2]) for row in rows if len(row) > 2}


def _shared_captures() -> list[Path]:
    if not (DATASETS / "pcaps").is_dir():
        return []
    return sorted(p for p in (DATASETS / "pcaps").rglob("*") if p.suffix in SUFFIXES and p.is_file())


SHARED = _shared_captures()
needs_datasets = pytest.mark.skipif(
    not SHARED, reason=f"the shared datasets ({DATASETS / 'pcaps'}) are not here"
)


@needs_datasets
@pytest.mark.parametrize("path", SHARED, ids=lambda p: str(p.relative_to(DATASETS / "pcaps")))
def test_every_shared_capture_reads_with_the_inventory_count(path: Path) -> None:
    counts = _inventory()
    key = str(path.relative_to(DATASETS))
    assert key in counts, f"{key} is not in the inventory"
    batches = list(read_capture(path, batch_size=1000))
    assert sum(len(b) for b in batches) == counts[key]
    assert [b.first_number for b in batches] == [
        1 + sum(len(b) for b in batches[:i]) for i in range(len(batches))
    ]


def _tshark_sample() -> list[Path]:
    """The long captures, every pcapng (nanoseconds, several interfaces, Windows dumpcap) and every
    tenth pcap."""
    pcaps = [p for p in SHARED if p.suffix != ".pcapng"]
    return sorted({p for p in SHARED if p.suffix == ".pcapng" or "long" in p.parts} | set(pcaps[::10]))


def tshark_packets(path: Path) -> list[tuple[int, int, int, int]]:
    """(time in ns, captured length, length, interface) of every frame, as tshark reads them."""
    fields = ["frame.time_epoch", "frame.cap_len", "frame.len", "frame.interface_id"]
    command = [tshark(), "-n", "-r", str(path), "-T", "fields"]
    for name in fields:
        command += ["-e", name]
    lines = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    rows = [line.split("\t") for line in lines]
    # No time (a simple packet block) is time 0 for us; tshark shows no interface for some pcapng
    # files of one interface and for pcap.
    return [(int(Decimal(t or 0) * 10**9), int(c), int(n), int(i or 0)) for t, c, n, i in rows]


def our_view(packets: list[Packet]) -> list[tuple[int, int, int, int]]:
    return [(p.ts_ns, len(p.data), p.wire, p.interface) for p in packets]


@needs_datasets
@pytest.mark.parametrize("path", _tshark_sample(), ids=lambda p: p.name)
def test_shared_capture_times_and_lengths_match_tshark(path: Path) -> None:
    ours = packets_of(list(read_capture(path, batch_size=100)))
    assert our_view(ours) == tshark_packets(path)


# ----- hand-built files ----------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_in_either_byte_order_and_resolution(order: str, nano: bool) -> None:
    packets = sample_packets([60, 0, 1514, 61, 7], nano=nano)
    assert read_bytes(pcap(packets, order=order, nano=nano)) == packets


def test_pcap_keeps_the_header_link_type() -> None:
    packets = [Packet(T0 * 10**9, frame(0, 28), 28, linktype=228)]
    assert read_bytes(pcap(packets, linktype=228)) == packets


def test_pcapng_sections_interfaces_and_blocks(tmp_path: Path) -> None:
    content, expected = two_sections()
    assert read_bytes(content) == expected
    path = tmp_path / "two-sections.pcapng"
    path.write_bytes(content)
    theirs = tshark_packets(path)
    # tshark 4.0 shows the decryption secrets block as a frame, and numbers the interfaces of each
    # section from 0; we number them across the file, so that each keeps its link type.
    assert theirs.pop(4) == (0, 4, 4, 0)
    assert [(t, c, n, i + 2 * (k >= 4)) for k, (t, c, n, i) in enumerate(theirs)] == our_view(expected)


@pytest.mark.parametrize("order", ["<", ">"])
def test_packet_data_that_looks_like_blocks_does_not_mislead_the_reader(order: str) -> None:
    fake = block(order, EPB, bytes(20))  # a whole enhanced packet block, as packet data
    packets = [
        Packet(T0 * 10**9 + n * 1000, frame(n, n % 5) + fake * (n % 3) + frame(n, n % 4), 200)
        for n in range(300)
    ]
    blocks = [section(order), interface(order, 1)]
    blocks += [enhanced(order, 0, p.ts_ns // 1000, p.data, p.wire) for p in packets]
    assert read_bytes(b"".join(blocks)) == packets
    assert read_bytes(b"".join(blocks), read_size=1000) == packets


def test_a_capture_with_no_packets_gives_no_batch() -> None:
    assert read_bytes(pcap([])) == []
    assert read_bytes(section("<") + interface("<", 1)) == []


def test_the_format_comes_from_the_magic_not_the_name(tmp_path: Path) -> None:
    path = tmp_path / "really-pcapng.pcap"
    content, expected = two_sections()
    path.write_bytes(content)
    with open_capture_reader(path) as reader:
        assert reader.format == "pcapng"
        assert packets_of(list(reader)) == expected


def test_a_file_that_is_not_a_capture_is_named_with_its_first_bytes(tmp_path: Path) -> None:
    path = tmp_path / "page.pcap"
    path.write_bytes(b"<!DOCTYPE html><html>")
    with pytest.raises(
        NotACapture, match=r"page\.pcap is not a pcap or pcapng capture: .*3c 21 44 4f.*<!DOCTYPE"
    ):
        open_capture_reader(path)
    (tmp_path / "empty.pcap").write_bytes(b"")
    with pytest.raises(NotACapture, match=r"empty\.pcap is empty"):
        open_capture_reader(tmp_path / "empty.pcap")


# ----- cut and corrupt files -----------------------------------------------------------------------


def expect_cut(
    content: bytes, boundaries: list[int], packets: list[Packet], header_end: int, cut: int
) -> None:
    """Reading `content[:cut]` gives the packets whose records end by the cut, then the error."""
    if cut < 4:
        with pytest.raises(NotACapture):
            read_bytes(content[:cut])
        return
    stream = io.BytesIO(content[:cut])
    stream.name = "cut.cap"
    got: list[PacketBatch] = []
    starts = [b for b in [0, *boundaries] if b <= cut]
    complete = sum(1 for end in boundaries[boundaries.index(header_end) + 1 :] if end <= cut)
    reader = open_capture_reader(stream, batch_size=2, read_size=37)
    if cut in starts:
        got = list(reader)
    else:
        with pytest.raises(CaptureTruncated) as caught:
            got.extend(reader)
        offset = max(starts)
        assert caught.value.details == {"source": "cut.cap", "offset": offset, "packets": complete}
        assert f"cut.cap is truncated at byte offset {offset} (after {complete} complete packets)" in str(
            caught.value
        )
    assert packets_of(got) == packets[:complete]


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_a_cut_capture_yields_the_complete_packets_then_says_where(data: st.DataObject) -> None:
    sizes = data.draw(st.lists(st.integers(0, 70), min_size=1, max_size=12), label="sizes")
    packets = sample_packets(sizes)
    kind = data.draw(st.sampled_from(["pcap<", "pcap>", "pcapng"]), label="kind")
    if kind == "pcapng":
        content, ends = single_section(packets)
        header_end = ends[1]
    else:
        content, ends = pcap(packets, order=kind[-1]), record_ends(packets)
        header_end = 24
    expect_cut(content, ends, packets, header_end, data.draw(st.integers(0, len(content) - 1), label="cut"))


def test_every_cut_of_the_two_section_file() -> None:
    blocks, _ = two_section_blocks()
    content = b"".join(blocks)
    ends = [sum(len(b) for b in blocks[: i + 1]) for i in range(len(blocks))]
    for cut in range(4, len(content)):
        if cut not in ends:
            with pytest.raises(CaptureTruncated):
                read_bytes(content[:cut], read_size=64)


def corrupt(content: bytes, position: int, value: bytes) -> bytes:
    return content[:position] + value + content[position + len(value) :]


def expect_corrupt(
    content: bytes, offset: int, packets: list[Packet], reason: str, batch_size: int = 3
) -> None:
    got: list[PacketBatch] = []
    stream = io.BytesIO(content)
    stream.name = "bad.cap"
    with pytest.raises(CaptureCorrupt, match=reason) as caught:
        got.extend(open_capture_reader(stream, batch_size=batch_size))
    assert packets_of(got) == packets
    assert caught.value.details == {"source": "bad.cap", "offset": offset, "packets": len(packets)}
    assert f"bad.cap is corrupt at byte offset {offset} (after {len(packets)} complete packets)" in str(
        caught.value
    )


@pytest.mark.parametrize("caplen", [262145, 0xFFFFFFF0])
def test_a_pcap_record_over_the_limit_is_corrupt(caplen: int) -> None:
    packets = sample_packets([60] * 8)
    ends = record_ends(packets)
    content = corrupt(pcap(packets), ends[5] + 8, struct.pack("<I", caplen))
    expect_corrupt(content, ends[5], packets[:5], f"record length {caplen} is over the limit of 262144")


@pytest.mark.parametrize("batch_size", [3, 1000], ids=["short runs", "long runs"])
def test_pcapng_blocks_that_cannot_be(batch_size: int) -> None:
    packets = sample_packets([60 + n for n in range(30)])
    content, ends = single_section(packets)
    cases = [
        (ends[20] + 4, struct.pack("<I", 90), "impossible length 90"),
        (ends[20] + 4, struct.pack("<I", 16), "impossible length 16"),
        (ends[20] + 4, struct.pack("<I", 1 << 30), "impossible length"),
        (ends[20] + 8, struct.pack("<I", 5), "packet of interface 5, not described in its section"),
        (ends[20] + 20, struct.pack("<I", 500), "captured length 500 does not fit its block"),
        (ends[21] - 4, struct.pack("<I", 4), "is not repeated at its end"),
        (ends[0] + 4, struct.pack("<I", 13), "impossible length 13"),
        (8, b"XXXX", "no byte-order magic"),
        (12, struct.pack("<H", 2), "pcapng version 2.0 is not supported"),
    ]
    for position, value, reason in cases:
        at = max(e for e in [0, *ends] if e <= position)
        got_packets = packets[: sum(1 for e in ends[2:] if e <= at)]
        expect_corrupt(corrupt(content, position, value), at, got_packets, reason, batch_size)


def test_a_packet_before_any_interface_is_corrupt() -> None:
    content = section("<") + simple("<", b"abc", 3)
    expect_corrupt(content, 28, [], "packet of interface 0, not described")


# ----- batches and chunks --------------------------------------------------------------------------


MANY = sample_packets([(n * 37) % 200 for n in range(60)])


@given(
    batch_size=st.integers(1, 70),
    read_size=st.sampled_from([1, 16, 50, 64, 100, 333, 4096, 1 << 20]),
    kind=st.sampled_from(["pcap", "pcapng", "two sections"]),
)
@settings(max_examples=100, deadline=None)
def test_any_batch_and_chunk_size_gives_the_same_packets(batch_size: int, read_size: int, kind: str) -> None:
    content, expected = {
        "pcap": (pcap(MANY), MANY),
        "pcapng": (single_section(MANY)[0], MANY),
        "two sections": two_sections(),
    }[kind]
    stream = io.BytesIO(content)
    batches = list(open_capture_reader(stream, batch_size=batch_size, read_size=read_size))
    assert packets_of(batches) == expected
    assert all(0 < len(b) <= batch_size for b in batches)
    assert [b.first_number for b in batches] == [
        1 + sum(len(b) for b in batches[:i]) for i in range(len(batches))
    ]


def test_a_batch_views_the_chunk_it_was_read_from() -> None:
    (batch,) = read_capture(io.BytesIO(pcap(MANY[:3])))
    first, second = len(MANY[0].data), len(MANY[1].data)
    assert batch.offsets.tolist() == [0, first + 16, first + 16 + second + 16]
    assert not batch.buffer.flags.owndata


# ----- streams -------------------------------------------------------------------------------------


def _writer(
    fifo: Path, content: bytes, parts: list[int], first_batch: threading.Event, log: list[str]
) -> None:
    with fifo.open("wb", buffering=0) as out:
        log.append("writing the first part")
        out.write(content[: parts[0]])
        if not first_batch.wait(10):
            log.append("no batch came before the rest was written")
        for start, end in itertools.pairwise(parts):
            time.sleep(0.005)
            out.write(content[start:end])
    log.append("finished")


@pytest.mark.parametrize("as_stream", [False, True], ids=["path", "stream"])
def test_a_fifo_is_read_as_it_comes(tmp_path: Path, as_stream: bool) -> None:
    packets = sample_packets([60 + n for n in range(40)])
    content, ends = single_section(packets)
    fifo = tmp_path / "tap.pcapng"
    os.mkfifo(fifo)
    first_batch, log = threading.Event(), list[str]()
    parts = [ends[6], *ends[7:]]  # five packets, then one block at a time
    writer = threading.Thread(target=_writer, args=(fifo, content, parts, first_batch, log))
    writer.start()
    batches: list[PacketBatch] = []
    try:
        with (
            fifo.open("rb") if as_stream else nullcontext(fifo) as source,
            open_capture_reader(source) as reader,
        ):
            for batch in reader:
                if not batches:
                    log.append(f"first batch of {len(batch)}")
                    first_batch.set()
                batches.append(batch)
    finally:
        first_batch.set()
        writer.join(20)
    assert log == ["writing the first part", "first batch of 5", "finished"]
    assert packets_of(batches) == packets
    assert len(batches) > 1
