"""Property-based fuzzing: random bytes and mutated valid frames never make either path raise,
give only listed findings (never UNEXPECTED), and the two paths give identical rows."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.protocols.dnp3 import Dnp3Finding, Reassembler
from tests.unit.protocols.dnp3 import builders as b
from tests.unit.protocols.dnp3.support import both, columns_of

OBJECTS = [
    b.all_objects(60, 1) + b.all_objects(60, 2),
    b.start_stop(30, 2, 0, 3) + bytes(12),
    b.start_stop(1, 1, 0, 12) + bytes(2),
    b.counted(12, 1, 1, prefix=1) + bytes([3, 0x41, 1]) + struct.pack("<II", 100, 100) + bytes(1),
    b.counted(2, 2, 1, prefix=2, width=2) + bytes(9),
    b.free_format(70, 3, [bytes(26) + b"f"]),
    b.start_stop(110, 3, 0, 0) + b"abc",
    b.start_stop(0, 250, 0, 0) + bytes([1, 2, 0, 0]),
    b.counted(120, 3, 1) + bytes(6),
]


WITH_DATA = [0, 2, 3, 4, 5, 6, 13, 14, 15, 16, 17, 18, 19, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33]
"""Request functions whose objects carry data (all of `OBJECTS` fit them)."""


@st.composite
def valid_payloads(draw: st.DrawFn, any_function: bool = False) -> bytes:
    """One to three frames: requests or responses with objects; requests of a function whose
    objects carry data, or (`any_function`) of any code 0-40."""
    frames = []
    for _ in range(draw(st.integers(1, 3))):
        objects = b"".join(draw(st.lists(st.sampled_from(OBJECTS), max_size=4)))
        if draw(st.booleans()):
            function = draw(st.sampled_from([129, 130, 131]))
            fragment = b.response(function, draw(st.integers(0, 255)), draw(st.integers(0, 255)), objects)
            frames += b.frames_for(
                fragment, b.OUTSTATION_TO_MASTER, 1, 10, first_sequence=draw(st.integers(0, 63))
            )
        else:
            function = draw(st.integers(0, 40) if any_function else st.sampled_from(WITH_DATA))
            fragment = b.request(function, objects)
            frames += b.frames_for(fragment, b.MASTER_TO_OUTSTATION, 10, 1)
        if draw(st.booleans()):
            frames.append(
                b.link_frame(draw(st.sampled_from([0xC0, 0xC2, 0xC9, 0x00, 0x01, 0x0B, 0x0F])), 1, 10)
            )
    return b"".join(frames)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(valid_payloads(any_function=True)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def check(payload: bytes, from_server: bool) -> None:
    messages, _ = both(payload, from_server)
    assert all(
        message.finding in Dnp3Finding and message.finding != Dnp3Finding.UNEXPECTED for message in messages
    )
    reassembled, _ = Reassembler().decode_payload(payload, from_server)
    assert all(message.finding != Dnp3Finding.UNEXPECTED for message in reassembled)


@settings(max_examples=200, deadline=None)
@given(valid_payloads(), st.booleans())
def test_valid_frames_decode_without_findings(payload: bytes, from_server: bool) -> None:
    messages, leftover = both(payload, from_server)
    assert leftover == b""
    assert all(message.finding in (Dnp3Finding.OK,) for message in messages)


@settings(max_examples=200, deadline=None)
@given(mutated(), st.booleans())
def test_mutated_frames_never_escape(payload: bytes, from_server: bool) -> None:
    check(payload, from_server)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_never_escape(payload: bytes, from_server: bool) -> None:
    check(payload, from_server)
    check(b"\x05\x64" + payload, from_server)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(mutated(), st.binary(max_size=40)), max_size=6), st.data())
def test_a_batch_of_segments_is_the_same_on_both_paths(payloads: list[bytes], data: st.DataObject) -> None:
    servers = [data.draw(st.booleans()) for _ in payloads]
    fast, exact = columns_of(payloads, servers)
    assert fast.differences(exact) == []
