"""`AduReader`, the session's reader: the same ADUs, refusals and timeouts as `read_adu`, with
one read per chunk and one lazy timer per connection."""

from __future__ import annotations

import asyncio
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.gateway.frames import Adu, AduReader, FrameProblem, FrameRefused, read_adu
from tests.unit.gateway.support import adu, read_holding

Found = list[Adu | FrameRefused | None]


async def _read_all(
    data: bytes, *, eof: bool = True, frame_timeout: float = 0.2, idle_timeout: float | None = 0.2
) -> Found:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    adus = AduReader(reader, frame_timeout=frame_timeout, idle_timeout=idle_timeout)
    found: Found = []
    try:
        while True:
            item = await adus.read()
            found.append(item)
            if not isinstance(item, Adu):
                return found
    finally:
        adus.close()


def read_all(data: bytes, **options: object) -> Found:
    return asyncio.run(_read_all(data, **options))  # type: ignore[arg-type]


def test_back_to_back_adus_in_one_chunk_come_out_one_by_one_and_the_end_is_clean() -> None:
    data = adu(1, 1, read_holding(0, 2)) + adu(2, 9, read_holding(100, 1))
    first, second, end = read_all(data)
    assert first == Adu(1, 1, read_holding(0, 2), data[:12])
    assert second == Adu(2, 9, read_holding(100, 1), data[12:])
    assert end is None


def test_a_header_that_cannot_be_modbus_breaks_the_stream() -> None:
    bad_protocol = struct.pack(">HHHB", 1, 7, 6, 1) + read_holding(0, 1)
    assert read_all(bad_protocol) == [FrameRefused(FrameProblem.BAD_PROTOCOL_ID, bad_protocol[:7])]
    for length in (0, 1, 255, 65535):
        header = struct.pack(">HHHB", 1, 0, length, 1)
        assert read_all(header + b"\x03" * 10) == [FrameRefused(FrameProblem.BAD_LENGTH, header)]


def test_a_stream_ending_inside_an_adu_is_truncated() -> None:
    whole = adu(1, 1, read_holding(0, 2))
    for cut in (1, 6, 7, 11):
        assert read_all(whole[:cut]) == [FrameRefused(FrameProblem.TRUNCATED, whole[:cut])]


def test_a_lying_length_or_a_slow_sender_times_out_even_with_a_long_idle_timeout() -> None:
    lying = struct.pack(">HHHB", 1, 0, 200, 1) + read_holding(0, 1)  # promises 199 bytes, sends 5
    [refused] = read_all(lying, eof=False, frame_timeout=0.1, idle_timeout=600.0)
    assert refused == FrameRefused(FrameProblem.TOO_SLOW, lying[:7])
    [stalled] = read_all(adu(1, 1, read_holding(0, 1))[:3], eof=False, frame_timeout=0.1, idle_timeout=None)
    assert isinstance(stalled, FrameRefused) and stalled.problem is FrameProblem.TOO_SLOW


def test_an_idle_client_ends_cleanly_after_the_idle_timeout_counted_from_its_last_adu() -> None:
    async def scenario() -> tuple[Found, float]:
        reader = asyncio.StreamReader()
        adus = AduReader(reader, frame_timeout=0.1, idle_timeout=0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for delay in (0.2, 0.4):  # each ADU within the idle timeout of the one before
            loop.call_later(delay, reader.feed_data, adu(1, 1, read_holding(0, 1)))
        found: Found = [await adus.read(), await adus.read(), await adus.read()]
        adus.close()
        return found, loop.time() - started

    found, took = asyncio.run(scenario())
    assert [type(item) for item in found] == [Adu, Adu, type(None)]
    assert 0.65 <= took < 1.5  # the idle timeout ran again from the second ADU (0.4 s + 0.3 s)


def test_a_frame_arriving_in_pieces_within_the_frame_timeout_is_whole() -> None:
    async def scenario() -> Found:
        reader = asyncio.StreamReader()
        adus = AduReader(reader, frame_timeout=0.5, idle_timeout=None)
        whole = adu(5, 1, read_holding(0, 3))
        loop = asyncio.get_running_loop()
        for index, piece in enumerate((whole[:2], whole[2:9], whole[9:])):
            loop.call_later(0.05 * (index + 1), reader.feed_data, piece)
        loop.call_later(0.2, reader.feed_eof)
        found: Found = [await adus.read(), await adus.read()]
        adus.close()
        return found

    assert asyncio.run(scenario()) == [Adu(5, 1, read_holding(0, 3), adu(5, 1, read_holding(0, 3))), None]


def test_a_cancellation_from_outside_is_not_taken_for_a_timeout() -> None:
    async def scenario() -> bool:
        adus = AduReader(asyncio.StreamReader(), frame_timeout=0.1, idle_timeout=5.0)
        task = asyncio.create_task(adus.read())
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        finally:
            adus.close()
        return False

    assert asyncio.run(scenario())


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=300))
def test_it_reads_any_stream_exactly_as_read_adu_does(data: bytes) -> None:
    async def with_read_adu() -> Found:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        found: Found = []
        while isinstance(item := await read_adu(reader, frame_timeout=0.01, idle_timeout=0.2), Adu):
            found.append(item)
        return [*found, item]

    expected = asyncio.run(with_read_adu())
    found = read_all(data, frame_timeout=0.01)
    assert [type(item) for item in found] == [type(item) for item in expected]
    assert [item for item in found if isinstance(item, Adu)] == [i for i in expected if isinstance(i, Adu)]
    if isinstance(expected[-1], FrameRefused):
        assert isinstance(found[-1], FrameRefused) and found[-1].problem is expected[-1].problem
