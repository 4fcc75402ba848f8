"""Reading ADUs from a hostile stream: whole, partial, lying, slow, garbage; exception answers."""

from __future__ import annotations

import asyncio
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.gateway.frames import (
    Adu,
    FrameProblem,
    FrameRefused,
    exception_response,
    read_adu,
    response_adu,
)
from plantwarden.protocols.modbus.exact import decode
from tests.unit.gateway.support import adu, read_holding


async def _read_all(
    data: bytes, *, eof: bool = True, frame_timeout: float = 0.2
) -> list[Adu | FrameRefused | None]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    found: list[Adu | FrameRefused | None] = []
    while True:
        item = await read_adu(reader, frame_timeout=frame_timeout, idle_timeout=0.2)
        found.append(item)
        if not isinstance(item, Adu):
            return found


def read_all(data: bytes, **options: object) -> list[Adu | FrameRefused | None]:
    return asyncio.run(_read_all(data, **options))  # type: ignore[arg-type]


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
