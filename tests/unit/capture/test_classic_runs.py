"""Finding classic pcap records with numpy: always the records Python's walk finds, whatever the
packets hold (header look-alikes, chains of them), the timestamps do (a top byte that changes),
and wherever a batch or the data ends."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.capture.pcap.classic_runs import RecordRuns, chain, walk_records

BASE = 0x69FF_FFF0  # a few seconds before the seconds' top byte changes


def fake_header(order: str, seconds: int, caplen: int) -> bytes:
    """Sixteen bytes of packet data that pass for a record header of `seconds`."""
    return struct.pack(order + "IIII", seconds, 1234, caplen, caplen)


@st.composite
def captures(draw: st.DrawFn) -> tuple[bytes, str, int]:
    """Record bytes (after a 24-byte file header of zeros), byte order and fraction unit (ns)."""
    order = draw(st.sampled_from("<>"))
    fraction_ns = draw(st.sampled_from([1000, 1]))
    seconds = draw(st.sampled_from([BASE, 0, 1_700_000_000]))
    out = bytearray(24)
    for _ in range(draw(st.integers(0, 80))):
        seconds += draw(st.integers(0, 3))
        parts = []
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["random", "fake", "chain"]))
            if kind == "random":
                parts.append(draw(st.binary(max_size=40)))
            elif kind == "fake":  # leads somewhere inside the packet or past it
                parts.append(fake_header(order, seconds, draw(st.integers(0, 80))))
            else:  # look-alikes that lead to one another
                parts += [fake_header(order, seconds, 0)] * draw(st.integers(2, 6))
        data = b"".join(parts)
        fraction = draw(st.integers(0, 1_100_000 if fraction_ns == 1000 else 1_100_000_000))  # some invalid
        wire = len(data) + draw(st.integers(-2, 4))  # some shorter than the captured data (invalid)
        out += struct.pack(order + "IIII", seconds, fraction, len(data), max(wire, 0)) + data
    return bytes(out[: len(out) - draw(st.integers(0, 20))]), order, fraction_ns


@settings(max_examples=300, deadline=None)
@given(captures(), st.integers(1, 100), st.sampled_from([16, 100, 4096, 1 << 20]))
def test_numpy_finds_the_records_python_walks(capture: tuple[bytes, str, int], limit: int, span: int) -> None:
    chunk, order, fraction_ns = capture
    caplen_at = struct.Struct(order + "I").unpack_from
    runs = RecordRuns(order, fraction_ns, caplen_at)
    runs._span = span
    pos = 24
    while pos + 12 <= len(chunk):
        expected, expected_end = walk_records(chunk, pos, limit, caplen_at)
        found, end = runs.walk(chunk, pos, limit)
        assert (found.tolist(), end) == (expected, expected_end)
        pos = end


def test_a_window_of_look_alikes_ends_the_run_where_python_would_go_on() -> None:
    """Packets made of header look-alikes chained to one another: numpy's run may stop early, but
    only at a record, and the walk goes on from there with every record found."""
    fake = fake_header("<", BASE, 0) * 8
    records = [struct.pack("<IIII", BASE, n, len(fake), len(fake)) + fake for n in range(500)]
    chunk = bytes(24) + b"".join(records)
    data = np.frombuffer(chunk, np.uint8)
    starts, after = chain(data, 24, len(chunk), "<", 1_000_000)
    expected = [24 + n * (16 + len(fake)) for n in range(500)]
    assert starts.tolist() == expected[: len(starts)]
    assert after == [*expected, len(chunk)][len(starts)]
    runs = RecordRuns("<", 1000, struct.Struct("<I").unpack_from)
    found, end = runs.walk(chunk, 24, 1000)
    assert (found.tolist(), end) == (expected, len(chunk))
