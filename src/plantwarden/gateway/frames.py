"""Reading Modbus/TCP ADUs from a client's stream, and building exception answers.

The client is hostile until proven otherwise. An ADU is an MBAP header (transaction id, protocol
id 0, length 2-254 counting the unit id and the PDU) and the PDU. `read_adu` waits as long as
`idle_timeout` for the first byte of the next ADU, then gives the rest of it `frame_timeout`: a
slow sender, a partial frame or a length that promises more than comes is a `FrameRefused`, and
so is a header that cannot be Modbus. After any of them the stream has no trustworthy boundary
left, so the session drops the connection (and records why); nothing is forwarded.
"""

from __future__ import annotations

import asyncio
import enum
import struct
from typing import NamedTuple

from plantwarden.protocols.modbus.framing import HEADER_SIZE
from plantwarden.protocols.modbus.functions import EXCEPTION_BIT, MAX_LENGTH, MIN_LENGTH

_MBAP = struct.Struct(">HHHB")
_EXCEPTION = struct.Struct(">HHHBBB")

ILLEGAL_FUNCTION = 1
"""The refusal of the Modbus/TCP Security specification (authorization failed), and the answer
to an unknown function."""
ILLEGAL_DATA_VALUE = 3
"""The answer to a well-framed PDU whose fields are malformed."""
GATEWAY_PATH_UNAVAILABLE = 0x0A
"""No PLC behind the gateway answers to the request's unit id."""
GATEWAY_TARGET_FAILED = 0x0B
"""The PLC did not answer (timeout, connection lost)."""


class FrameProblem(enum.StrEnum):
    """Why a stream lost its framing."""

    BAD_PROTOCOL_ID = "bad_protocol_id"
    BAD_LENGTH = "bad_length"
    TRUNCATED = "truncated"
    """The stream ended inside an ADU."""
    TOO_SLOW = "too_slow"
    """The rest of an ADU did not arrive within the frame timeout (a slow sender, a lying length)."""


class Adu(NamedTuple):
    """One whole ADU as read: its header fields, the PDU (function code first) and the raw bytes."""

    transaction_id: int
    unit_id: int
    pdu: bytes
    raw: bytes


class FrameRefused(NamedTuple):
    """The stream cannot be framed any more: why, and the bytes read of the broken ADU."""

    problem: FrameProblem
    raw: bytes


async def read_adu(
    reader: asyncio.StreamReader, *, frame_timeout: float, idle_timeout: float | None
) -> Adu | FrameRefused | None:
    """The next ADU, why the stream cannot be framed, or None at a clean end of stream.

    `idle_timeout` bounds the wait for an ADU to begin (None: wait as long as the client keeps
    the connection); when it passes, the stream ends cleanly (None). `frame_timeout` bounds the
    time from an ADU's first byte to its last.
    """
    loop = asyncio.get_running_loop()
    head = b""
    try:
        async with asyncio.timeout_at(None if idle_timeout is None else loop.time() + idle_timeout) as scope:
            head = await reader.readexactly(1)
            scope.reschedule(loop.time() + frame_timeout)
            head += await reader.readexactly(HEADER_SIZE - 1)
            transaction_id, protocol_id, length, unit_id = _MBAP.unpack(head)
            if protocol_id != 0:
                return FrameRefused(FrameProblem.BAD_PROTOCOL_ID, head)
            if not MIN_LENGTH <= length <= MAX_LENGTH:
                return FrameRefused(FrameProblem.BAD_LENGTH, head)
            pdu = await reader.readexactly(length - 1)
    except asyncio.IncompleteReadError as error:
        if not head and not error.partial:
            return None
        return FrameRefused(FrameProblem.TRUNCATED, head + error.partial)
    except TimeoutError:
        if not head:
            return None  # idle: nothing begun
        return FrameRefused(FrameProblem.TOO_SLOW, head)
    return Adu(transaction_id, unit_id, pdu, head + pdu)


_CHUNK = 64 * 1024


class AduReader:
    """`read_adu` for a session's hot path: the same ADUs, refusals and timeouts, cheaper.

    `read_adu` costs three awaits and two timers per ADU; this reads whatever the stream holds in
    one await into a buffer of its own and takes every whole ADU from it without waiting (a client
    that sends several requests at once is served from one read). The deadline of the wait in
    progress is a number, and one timer per connection enforces it lazily: when it fires before
    the deadline (which moved on), it is armed again at the deadline. The buffer holds at most one
    partial ADU and one chunk read.
    """

    def __init__(
        self, reader: asyncio.StreamReader, *, frame_timeout: float, idle_timeout: float | None
    ) -> None:
        self.reader = reader
        self.frame_timeout = frame_timeout
        self.idle_timeout = idle_timeout
        self._buffer = bytearray()
        self._begun: float | None = None  # when the partial ADU in the buffer began to arrive
        self._deadline: float | None = None  # of the wait in progress (None: not waiting)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._task: asyncio.Task[object] | None = None
        self._expired = False

    async def read(self) -> Adu | FrameRefused | None:
        """The next ADU, why the stream cannot be framed, or None at a clean end (or when idle)."""
        buffer = self._buffer
        while True:
            item = _take(buffer)
            if item is not None:
                self._begun = None
                return item
            loop = asyncio.get_running_loop()
            now = loop.time()
            if buffer:
                if self._begun is None:
                    self._begun = now
                self._deadline = self._begun + self.frame_timeout
            else:
                self._deadline = None if self.idle_timeout is None else now + self.idle_timeout
            if self._deadline is not None:
                self._arm(loop, self._deadline)
            try:
                chunk = await self.reader.read(_CHUNK)
            except asyncio.CancelledError:
                task = self._task
                if not self._expired or task is None or task.uncancel() > 0:
                    raise
                self._expired = False
                return FrameRefused(FrameProblem.TOO_SLOW, bytes(buffer[:HEADER_SIZE])) if buffer else None
            finally:
                self._deadline = None
            if not chunk:
                return FrameRefused(FrameProblem.TRUNCATED, bytes(buffer)) if buffer else None
            buffer += chunk

    def close(self) -> None:
        """Cancel the timer (the session ended)."""
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        if self._timer is not None and self._timer_at <= deadline:
            return  # fires first, and arms itself again at the deadline
        if self._timer is not None:
            self._timer.cancel()
        self._task = asyncio.current_task()
        self._timer_at = deadline
        self._timer = loop.call_at(deadline, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return  # not waiting now; the next wait arms a timer
        if loop.time() < deadline:
            self._timer_at = deadline
            self._timer = loop.call_at(deadline, self._fire, loop)
            return
        if self._task is not None and not self._task.done():
            self._expired = True
            self._task.cancel()


def _take(buffer: bytearray) -> Adu | FrameRefused | None:
    """The first ADU of `buffer` (removed from it), why it cannot be framed, or None (incomplete)."""
    if len(buffer) < HEADER_SIZE:
        return None
    transaction_id, protocol_id, length, unit_id = _MBAP.unpack_from(buffer)
    if protocol_id != 0:
        return FrameRefused(FrameProblem.BAD_PROTOCOL_ID, bytes(buffer[:HEADER_SIZE]))
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        return FrameRefused(FrameProblem.BAD_LENGTH, bytes(buffer[:HEADER_SIZE]))
    end = HEADER_SIZE - 1 + length
    if len(buffer) < end:
        return None
    raw = bytes(buffer[:end])
    del buffer[:end]
    return Adu(transaction_id, unit_id, raw[HEADER_SIZE:], raw)


def exception_response(transaction_id: int, unit_id: int, function_code: int, code: int) -> bytes:
    """The ADU of an exception answer: the function code with bit 0x80 set, and `code`."""
    return _EXCEPTION.pack(transaction_id, 0, 3, unit_id, (function_code | EXCEPTION_BIT) & 0xFF, code)


def response_adu(transaction_id: int, unit_id: int, pdu: bytes) -> bytes:
    """The ADU carrying the answer `pdu` under the client's own transaction id."""
    return _MBAP.pack(transaction_id, 0, len(pdu) + 1, unit_id) + pdu
