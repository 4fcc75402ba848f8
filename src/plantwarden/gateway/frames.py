"""Taking Modbus/TCP ADUs from a client's stream, and building exception answers.

The client is hostile until proven otherwise. An ADU is an MBAP header (transaction id, protocol
id 0, length 2-254 counting the unit id and the PDU) and the PDU. `Framer` gives a client
`idle_timeout` to begin its next ADU, then `frame_timeout` for the rest of it: a slow sender, a
partial frame or a length that promises more than comes is a `FrameRefused`, and so is a header
that cannot be Modbus. After any of them the stream has no trustworthy boundary left, so the
session drops the connection (and records why); nothing is forwarded.
"""

from __future__ import annotations

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


class Framer:
    """The ADUs of one client's stream as they complete, and the timeouts of a hostile stream,
    without waiting: the session calls `take` when bytes arrived, sets a timer at `deadline`,
    asks `expired` when that time came, and `ended` at the end of the stream.

    `idle_timeout` bounds the wait for an ADU to begin (None: no bound); when it passes, the stream
    ends cleanly (`expired` gives None). `frame_timeout` bounds the time from an ADU's first byte
    to its last: past it, a slow sender, a partial frame or a lying length is `TOO_SLOW`.
    """

    __slots__ = ("_begun", "frame_timeout", "idle_timeout")

    def __init__(self, *, frame_timeout: float, idle_timeout: float | None) -> None:
        self.frame_timeout = frame_timeout
        self.idle_timeout = idle_timeout
        self._begun: float | None = None  # when the partial ADU in the buffer began to arrive

    def take(self, buffer: bytearray, now: float) -> Adu | FrameRefused | None:
        """The first ADU of `buffer` (removed from it), why the stream cannot be framed, or None
        (no whole ADU yet)."""
        item = take_adu(buffer)
        if item is None:
            if buffer and self._begun is None:
                self._begun = now
        else:
            self._begun = None
        return item

    def forgive(self) -> None:
        """The gateway stopped reading (the client's answers back up): the partial ADU's time
        runs again from when the rest can arrive."""
        self._begun = None

    def deadline(self, buffer: bytearray, now: float) -> float | None:
        """When a wait that starts `now` ends: the partial ADU's frame timeout, else the idle one."""
        if buffer:
            return (now if self._begun is None else self._begun) + self.frame_timeout
        return self.idle_deadline(now)

    def idle_deadline(self, now: float) -> float | None:
        """When a wait for an ADU to begin, starting `now`, ends (None: never)."""
        return None if self.idle_timeout is None else now + self.idle_timeout

    @staticmethod
    def expired(buffer: bytearray) -> FrameRefused | None:
        """At the deadline: a partial ADU came too slowly; an empty buffer is an idle client."""
        return FrameRefused(FrameProblem.TOO_SLOW, bytes(buffer[:HEADER_SIZE])) if buffer else None

    @staticmethod
    def ended(buffer: bytearray) -> FrameRefused | None:
        """At the end of the stream: an ADU cut short, or a clean end (None)."""
        return FrameRefused(FrameProblem.TRUNCATED, bytes(buffer)) if buffer else None


def take_adu(buffer: bytearray) -> Adu | FrameRefused | None:
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
