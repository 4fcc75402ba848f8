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


def exception_response(transaction_id: int, unit_id: int, function_code: int, code: int) -> bytes:
    """The ADU of an exception answer: the function code with bit 0x80 set, and `code`."""
    return _EXCEPTION.pack(transaction_id, 0, 3, unit_id, (function_code | EXCEPTION_BIT) & 0xFF, code)


def response_adu(transaction_id: int, unit_id: int, pdu: bytes) -> bytes:
    """The ADU carrying the answer `pdu` under the client's own transaction id."""
    return _MBAP.pack(transaction_id, 0, len(pdu) + 1, unit_id) + pdu
