"""IEC 60870-5-104 sequence numbers, tracked across a connection (IEC 60870-5-104 sec. 5.1).

Each side numbers its I frames: N(S) counts up by one (modulo 32,768) from 0 at the start of the
connection, and every I and S frame carries N(R), the number of the next I frame it expects
from the other side, acknowledging all before it. On a clean connection seen whole, N(S) never
skips or goes back and N(R) never runs ahead of what the other side sent. Where it does, frames
were lost to the capture, or someone sends into the connection (an injected command shifts the
numbers of the side it impersonates). The check gives, per I or S frame:

- `send_gap`: N(S) is ahead of the number expected (frames missing);
- `send_repeat`: N(S) is behind it (a frame repeated, or sent by a second party);
- `ack_unsent`: N(R) acknowledges I frames the other side has not sent.

A connection seen from its middle starts being checked at each side's first I frame.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import StreamCheck, SummaryColumns
from plantwarden.protocols.iec104.exact import FORMAT_I, FORMAT_S

MODULO = 1 << 15


class Iec104Sequence(enum.IntEnum):
    """What the sequence check says of a frame (0: nothing)."""

    OK = 0
    SEND_GAP = 1
    SEND_REPEAT = 2
    ACK_UNSENT = 3


def check_sequences(
    state: dict[int, Any],
    connection: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
    own: dict[str, npt.NDArray[Any]],
    _: SummaryColumns,
) -> npt.NDArray[np.uint8]:
    """Per row, its `Iec104Sequence` code; `state` holds per connection the next N(S) expected
    of the client and of the server (-1 before the first I frame of that side)."""
    frame, send, receive = own["frame_format"], own["send_seq"], own["recv_seq"]
    codes = np.zeros(len(frame), dtype=np.uint8)
    rows = np.flatnonzero((frame == FORMAT_I) | (frame == FORMAT_S))
    columns = (
        rows.tolist(),
        connection[rows].tolist(),
        from_server[rows].tolist(),
        (frame[rows] == FORMAT_I).tolist(),
        send[rows].tolist(),
        receive[rows].tolist(),
    )
    for row, flow, server, information, sent, received in zip(*columns, strict=True):
        expected = state.get(flow)
        if expected is None:
            expected = state[flow] = [-1, -1]
        side = 1 if server else 0
        code = Iec104Sequence.OK
        if information and sent >= 0:
            if expected[side] >= 0 and sent != expected[side]:
                ahead = (sent - expected[side]) % MODULO
                code = Iec104Sequence.SEND_GAP if ahead < MODULO // 2 else Iec104Sequence.SEND_REPEAT
            expected[side] = (sent + 1) % MODULO
        other = expected[1 - side]
        if not code and received >= 0 and other >= 0 and 0 < (received - other) % MODULO < MODULO // 2:
            code = Iec104Sequence.ACK_UNSENT
        codes[row] = code
    return codes


SEQUENCE_CHECK = StreamCheck(("frame_format", "send_seq", "recv_seq"), Iec104Sequence, check_sequences)
