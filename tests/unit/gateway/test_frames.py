"""Taking ADUs from a hostile stream: whole, partial, lying, slow, garbage; exception answers."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.gateway.frames import (
    Adu,
    FrameProblem,
    Framer,
    FrameRefused,
    exception_response,
    response_adu,
)
from plantwarden.protocols.modbus.exact import decode
from tests.unit.gateway.support import adu, read_holding


def read_all(
    data: bytes, *, eof: bool = True, frame_timeout: float = 0.2, idle_timeout: float | None = 0.2
) -> list[Adu | FrameRefused | None]:
    """What a session makes of `data` arriving at once at time 0: its ADUs, then the end of the
    stream (`eof`) or what its next deadline brings."""
    framer, buffer = Framer(frame_timeout=frame_timeout, idle_timeout=idle_timeout), bytearray(data)
    found: list[Adu | FrameRefused | None] = []
    while isinstance(item := framer.take(buffer, 0.0), Adu):
        found.append(item)
    if item is not None:
        return [*found, item]
    if eof:
        return [*found, framer.ended(buffer)]
    deadline = framer.deadline(buffer, 0.0)
    assert deadline is not None, "a stream that never ends and never times out"
    return [*found, framer.expired(buffer)]


def test_back_to_back_adus_are_read_one_by_one_and_the_end_is_clean() -> None:
    data = adu(1, 1, read_holding(0, 2)) + adu(2, 9, read_holding(100, 1))
    first, second, end = read_all(data)
    assert first == Adu(1, 1, read_holding(0, 2), data[:12])
    assert isinstance(second, Adu)
    assert (second.transaction_id, second.unit_id, second.pdu) == (2, 9, read_holding(100, 1))
    assert end is None


def test_a_header_that_cannot_be_modbus_breaks_the_stream() -> None:
    bad_protocol = struct.pack(">HHHB", 1, 7, 6, 1) + read_holding(0, 1)
    assert read_all(bad_protocol) == [FrameRefused(FrameProblem.BAD_PROTOCOL_ID, bad_protocol[:7])]
    for length in (0, 1, 255, 65535):
        header = struct.pack(">HHHB", 1, 0, length, 1)
        [refused] = read_all(header + b"\x03" * 10)
        assert isinstance(refused, FrameRefused)
        assert refused.problem is FrameProblem.BAD_LENGTH


def test_a_stream_ending_inside_an_adu_is_truncated() -> None:
    whole = adu(1, 1, read_holding(0, 2))
    for cut in (1, 6, 7, 11):
        [refused] = read_all(whole[:cut])
        assert refused == FrameRefused(FrameProblem.TRUNCATED, whole[:cut])


def test_a_lying_length_or_a_slow_sender_times_out() -> None:
    lying = struct.pack(">HHHB", 1, 0, 200, 1) + read_holding(0, 1)  # promises 199 bytes, sends 5
    [refused] = read_all(lying, eof=False, frame_timeout=0.1)
    assert isinstance(refused, FrameRefused)
    assert refused.problem is FrameProblem.TOO_SLOW
    [stalled] = read_all(adu(1, 1, read_holding(0, 1))[:3], eof=False, frame_timeout=0.1)
    assert isinstance(stalled, FrameRefused)
    assert stalled.problem is FrameProblem.TOO_SLOW


def test_an_idle_client_ends_cleanly_after_the_idle_timeout() -> None:
    assert read_all(b"", eof=False) == [None]


def test_the_idle_timeout_runs_from_the_last_adu_and_the_frame_timeout_from_a_frames_first_byte() -> None:
    framer, buffer = Framer(frame_timeout=0.1, idle_timeout=0.3), bytearray()
    assert framer.deadline(buffer, 0.0) == 0.3  # waiting for an ADU to begin
    whole = adu(1, 1, read_holding(0, 1))
    buffer += whole[:3]
    assert framer.take(buffer, 0.2) is None
    assert framer.deadline(buffer, 0.25) == 0.2 + 0.1  # from the first byte, not the last
    buffer += whole[3:9]
    assert framer.take(buffer, 0.28) is None
    assert framer.deadline(buffer, 0.28) == 0.2 + 0.1
    buffer += whole[9:] + whole[:2]  # the rest, and the beginning of the next ADU
    assert framer.take(buffer, 0.29) == Adu(1, 1, read_holding(0, 1), whole)
    assert framer.take(buffer, 0.29) is None
    assert framer.deadline(buffer, 0.29) == 0.29 + 0.1  # the next ADU's own frame timeout
    buffer += whole[2:]
    assert isinstance(framer.take(buffer, 0.3), Adu)
    assert framer.deadline(buffer, 0.4) == 0.4 + 0.3  # idle again, counted from now


def test_without_an_idle_timeout_only_a_partial_frame_has_a_deadline() -> None:
    framer = Framer(frame_timeout=0.5, idle_timeout=None)
    assert framer.deadline(bytearray(), 10.0) is None
    partial = bytearray(adu(1, 1, read_holding(0, 1))[:3])
    assert framer.take(partial, 10.0) is None
    assert framer.deadline(partial, 10.2) == 10.5
    assert framer.expired(partial) == FrameRefused(FrameProblem.TOO_SLOW, bytes(partial))


def test_exception_and_response_adus_decode_as_the_sensor_reads_them() -> None:
    refused = decode(exception_response(0xBEEF, 7, 16, 1), True)
    assert (refused.transaction_id, refused.unit_id, refused.function_code) == (0xBEEF, 7, 16)
    assert refused.is_exception and refused.exception_code == 1
    assert refused.finding.name == "OK"
    answer = decode(response_adu(3, 1, bytes([3, 4, 0, 1, 0, 2])), True)
    assert answer.values == (1, 2) and answer.transaction_id == 3 and answer.finding.name == "OK"


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_raises_and_only_whole_sound_adus_come_out(data: bytes) -> None:
    found = read_all(data, frame_timeout=0.01)
    consumed = 0
    for item in found:
        if isinstance(item, Adu):
            assert data[consumed : consumed + len(item.raw)] == item.raw
            assert item.raw[2:4] == b"\x00\x00"
            assert struct.unpack(">H", item.raw[4:6])[0] == len(item.pdu) + 1
            consumed += len(item.raw)
    assert not isinstance(found[-1], Adu)
    if found[-1] is None:
        assert consumed == len(data)
