"""TCP streams: each byte delivered once and in order; retransmissions, overlaps and gaps reported."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.capture.tcp import MODULO, StreamFinding, TcpStream, follows, sequence_delta, stream_order


def test_in_order_data_is_delivered_as_it_comes() -> None:
    stream = TcpStream()
    stream.syn(999)
    assert stream.accept(1000, b"abc") == b"abc"
    assert stream.accept(1003, b"def") == b"def"
    assert stream.next_seq == 1006 and stream.findings == []


def test_a_retransmission_is_dropped_and_reported() -> None:
    stream = TcpStream()
    stream.syn(0)
    stream.accept(1, b"hello")
    assert stream.accept(1, b"hello") == b""
    assert stream.findings == [(StreamFinding.RETRANSMISSION, 5)]


def test_overlapping_data_that_differs_is_an_evasion_and_the_first_copy_wins() -> None:
    stream = TcpStream()
    stream.syn(0)
    stream.accept(1, b"write 1")
    assert stream.accept(7, b"9 more") == b" more"  # "1" was sent before as "1", now as "9"
    assert stream.findings == [(StreamFinding.OVERLAP_MISMATCH, 1)]


def test_a_gap_restarts_at_the_new_segment() -> None:
    stream = TcpStream()
    stream.syn(0)
    stream.accept(1, b"abc")
    assert stream.accept(10, b"xyz") == b"xyz"
    assert stream.findings == [(StreamFinding.GAP, 6)] and stream.next_seq == 13


def test_sequence_numbers_wrap() -> None:
    stream = TcpStream()
    stream.syn(MODULO - 3)
    assert stream.accept(MODULO - 2, b"abcd") == b"abcd"
    assert stream.next_seq == 2
    assert stream.accept(MODULO - 2, b"abcd") == b""  # its retransmission, across the wrap
    assert stream.findings == [(StreamFinding.RETRANSMISSION, 4)]
    assert sequence_delta(1, MODULO - 1) == 2 and sequence_delta(MODULO - 1, 1) == -2


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=12),
    repeats=st.lists(st.integers(0, 11), max_size=4),
    start=st.integers(0, MODULO - 1),
)
def test_any_segmentation_with_retransmissions_gives_the_stream_back_once(
    data: bytes, cuts: list[int], repeats: list[int], start: int
) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    segments = [(start + a, data[a:b]) for a, b in itertools.pairwise(bounds)]
    sent = list(segments)
    for index in repeats:  # send some segments again, right after themselves
        if index < len(segments):
            sent.insert(sent.index(segments[index]) + 1, segments[index])
    stream = TcpStream()
    stream.syn((start - 1) % MODULO)
    delivered = b"".join(stream.accept(seq % MODULO, payload) for seq, payload in sent)
    assert delivered == data
    assert all(finding == StreamFinding.RETRANSMISSION for finding, _ in stream.findings)


def test_follows_marks_the_segments_that_start_where_the_one_before_ends() -> None:
    streams = np.array([1, 1, 1, 1, 2, 2], dtype=np.int64)
    seq = np.array([100, 110, 110, 125, 110, 112], dtype=np.uint32)
    lengths = np.array([10, 10, 10, 1, 2, 3], dtype=np.int32)
    # stream 1: 110 follows 100; 110 again (a retransmission) and 125 (after a gap) do not;
    # stream 2 starts over: its first segment follows nothing, even where stream 1 ended
    result = follows(streams, seq, lengths)
    assert result.tolist() == [False, True, False, False, False, True]


def test_follows_wraps_around() -> None:
    result = follows(
        np.array([5, 5], dtype=np.int64),
        np.array([MODULO - 2, 3], dtype=np.uint32),
        np.array([5, 1], dtype=np.int32),
    )
    assert result.tolist() == [False, True]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 40), max_size=300),
    st.sampled_from([0, 1 << 20, 1 << 40, 1 << 62]),
)
def test_stream_order_is_a_stable_sort_by_stream(ids: list[int], offset: int) -> None:
    stream_ids = np.array(ids, dtype=np.int64) + offset  # ids too large to pack fall back to argsort
    order = stream_order(stream_ids)
    assert order.dtype == np.int64
    assert order.tolist() == np.argsort(stream_ids, kind="stable").tolist()
