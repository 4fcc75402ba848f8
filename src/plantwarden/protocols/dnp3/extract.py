"""The fast path: `extract` turns many payload segments into `Dnp3Columns` at once.

Vectorised with numpy, over every segment or frame of the batch at once: the framing (a walk
that reads each open segment's next frame header level by level: start bytes, link length, frame
size), the link header, the header block's CRC and every data block's CRC, the link function,
the transport header and the application header (control, function code, IIN), since all of
these are at fixed offsets of a frame. Decoded per row in Python: the object headers of frames
holding a whole application fragment (`objects.walk`), and the rare frames whose framing fails
(bad start or length: `exact.decode_frame`).

Each frame is decoded on its own: a segment of a longer application fragment (not FIR and FIN)
is a `TRANSPORT_SEGMENT` row, as `exact.decode_payload` gives it; multi-frame fragments are left
to the exact path's `Reassembler`, which keeps each direction's segments. The result is, row for
row and value for value, what `exact.decode_segments` gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import MAX_TARGETS, Operation, ParseStatus, SummaryColumns
from plantwarden.protocols.dnp3 import functions as fc
from plantwarden.protocols.dnp3.columns import Dnp3Columns
from plantwarden.protocols.dnp3.crc import crc16_rows
from plantwarden.protocols.dnp3.exact import BLOCK, HEADER_SIZE, MIN_LENGTH, decode_frame
from plantwarden.protocols.dnp3.findings import Dnp3Finding as F
from plantwarden.protocols.dnp3.messages import DIR, IIN2_ERRORS, PRM, TRANSPORT_SEGMENT
from plantwarden.protocols.dnp3.objects import walk

MAX_FRAME = HEADER_SIZE + 250 + 2 * 16
"""The longest frame: link length 255, 250 user data bytes in 16 blocks."""
_USER_INDEX = np.array([HEADER_SIZE + k + 2 * (k // BLOCK) for k in range(250)], dtype=np.int64)
"""Where user data byte k is in a frame (after the header block, with a CRC every 16 bytes)."""


def _table(entries: dict[int, Any], default: Any, dtype: Any, size: int = 256) -> npt.NDArray[Any]:
    table = np.full(size, default, dtype=dtype)
    for code, value in entries.items():
        table[code] = value
    return table


_PRIMARY_KNOWN = _table(dict.fromkeys(fc.LINK_PRIMARY, True), False, np.bool_, 16)
_SECONDARY_KNOWN = _table(dict.fromkeys(fc.LINK_SECONDARY, True), False, np.bool_, 16)
_LINK_NAMES = np.array(
    [f"link_{fc.LINK_SECONDARY.get(code, '')}" for code in range(16)]
    + [f"link_{fc.LINK_PRIMARY.get(code, '')}" for code in range(16)],
    dtype=object,
)
_KNOWN_FUNCTION = _table(dict.fromkeys(fc.NAMES, True), False, np.bool_)
_RESPONSE = _table(dict.fromkeys(fc.RESPONSES, True), False, np.bool_)


def extract(
    buffer: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
) -> Dnp3Columns:
    """The frame rows of the segments `buffer[start:start + length]`, each starting at a frame.

    `from_server[i]` tells whether segment i was sent by the server (used only where a frame's
    direction cannot be read). Rows come in (segment, pdu_index) order; `leftover[i]` counts the
    bytes of a partial last frame of segment i.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    server = np.asarray(from_server, dtype=np.bool_)
    # zeros past the end: every frame's window of MAX_FRAME bytes can be read (one copy of the batch)
    padded = np.concatenate((np.asarray(buffer, dtype=np.uint8), np.zeros(MAX_FRAME, dtype=np.uint8)))
    segment, index, position, size, framing, leftover = _frames(padded, starts, lengths)
    rows = len(segment)
    window = np.lib.stride_tricks.sliding_window_view(padded, MAX_FRAME)[position]  # (rows, MAX_FRAME)
    out = _Rows(rows)
    out.decode(window, framing == F.OK)
    unnamed = (out.summary["function"] == "") & (out.app_function < 0)
    out.summary["operation"][unnamed & (out.summary["status"] == ParseStatus.MALFORMED)] = int(
        Operation.MALFORMED
    )
    is_response = np.where(
        out.app_function >= 0, _RESPONSE[np.maximum(out.app_function, 0)], ~(out.control & DIR).astype(bool)
    )
    out.summary["is_response"] = is_response
    out.summary["unit"] = np.where(out.control < 0, -1, np.where(is_response, out.source, out.destination))
    _exactly(out, padded, np.flatnonzero(framing != F.OK), position, size, server[segment])
    ids: dict[str, npt.NDArray[Any]] = {
        "size": size.astype(np.int32),
        "length": out.length.astype(np.int16),
        "control": out.control.astype(np.int16),
        "destination": out.destination.astype(np.int32),
        "source": out.source.astype(np.int32),
        "transport": out.transport.astype(np.int16),
        "app_control": out.app_control.astype(np.int16),
        "app_function": out.app_function.astype(np.int16),
        "iin": out.iin.astype(np.int32),
    }
    summary = out.summary
    summary["function_code"] = out.app_function.astype(np.int32)
    return Dnp3Columns(
        segment=segment,
        pdu_index=index,
        offset=(position - starts[segment]).astype(np.int32),
        summary=SummaryColumns(
            function_code=summary["function_code"],
            function=summary["function"],
            operation=summary["operation"].astype(np.uint8),
            is_response=summary["is_response"].astype(np.bool_),
            unit=summary["unit"].astype(np.int32),
            address=summary["address"].astype(np.int64),
            quantity=summary["quantity"].astype(np.int32),
            targets=summary["targets"],
            result=summary["result"].astype(np.int32),
            status=summary["status"].astype(np.uint8),
            finding=summary["finding"].astype(np.uint8),
        ),
        leftover=leftover,
        **ids,
    )


def _frames(
    padded: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[Any], ...]:
    """Every frame of every segment, level by level (the i-th frame of all segments at once):
    segment, pdu_index, position in the buffer, size and framing finding; and the leftover bytes
    per segment (`exact.split_frames` for all segments)."""
    ends = starts + lengths
    position = starts.copy()
    open_ = np.flatnonzero(lengths > 0)
    leftover = np.zeros(len(starts), dtype=np.int64)
    found: list[tuple[npt.NDArray[Any], ...]] = []
    level = 0
    while open_.size:
        at = position[open_]
        left = ends[open_] - at
        bad_start = (padded[at] != 0x05) | ((left >= 2) & (padded[at + 1] != 0x64))
        short = ~bad_start & (left < HEADER_SIZE)
        length = padded[at + 2].astype(np.int64)
        bad_length = ~bad_start & ~short & (length < MIN_LENGTH)
        data = np.maximum(length - MIN_LENGTH, 0)
        size = HEADER_SIZE + data + 2 * (-(-data // BLOCK))
        whole = ~bad_start & ~short & ~bad_length
        partial = whole & (left < size)
        framed = whole & ~partial
        emitted = framed | bad_start | bad_length
        finding = np.where(bad_start, int(F.BAD_START), np.where(bad_length, int(F.BAD_LENGTH), int(F.OK)))
        size = np.where(framed, size, left)
        found.append(
            (
                open_[emitted],
                np.full(int(emitted.sum()), level, np.int32),
                at[emitted],
                size[emitted],
                finding[emitted],
            )
        )
        leftover[open_[short | partial]] = left[short | partial]
        position[open_] = at + size
        open_ = open_[framed & (at + size < ends[open_])]
        level += 1
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.astype(np.int32), empty, empty, empty, leftover
    segment, index, at, size, finding = (np.concatenate(parts) for parts in zip(*found, strict=True))
    order = np.lexsort((index, segment))
    return segment[order], index[order], at[order], size[order], finding[order], leftover


class _Rows:
    """The columns being filled, "none" everywhere to start with."""

    def __init__(self, rows: int) -> None:
        none = np.full(rows, -1, dtype=np.int64)
        self.length, self.control, self.destination, self.source = (
            none.copy(),
            none.copy(),
            none.copy(),
            none.copy(),
        )
        self.transport, self.app_control, self.app_function, self.iin = (
            none.copy(),
            none.copy(),
            none.copy(),
            none.copy(),
        )
        targets = np.empty(rows, dtype=object)
        targets[:] = [()] * rows
        self.summary: dict[str, npt.NDArray[Any]] = {
            "function": np.full(rows, "", dtype=object),
            "operation": np.full(rows, int(Operation.OTHER), dtype=np.int64),
            "address": none.copy(),
            "quantity": np.zeros(rows, dtype=np.int64),
            "targets": targets,
            "result": none.copy(),
            "status": np.full(rows, int(ParseStatus.OK), dtype=np.int64),
            "finding": np.zeros(rows, dtype=np.int64),
        }

    def fail(self, rows: npt.NDArray[np.bool_], finding: F) -> None:
        self.summary["status"][rows] = int(ParseStatus.MALFORMED)
        self.summary["finding"][rows] = int(finding)

    def decode(self, w: npt.NDArray[np.uint8], framed: npt.NDArray[np.bool_]) -> None:
        """Fill the rows of the `framed` frames from their bytes `w` (one row each)."""
        s = self.summary
        length = w[:, 2].astype(np.int64)
        control = w[:, 3].astype(np.int64)
        self.length[framed] = length[framed]
        self.control[framed] = control[framed]
        self.destination[framed] = (w[:, 4] | w[:, 5].astype(np.int64) << 8)[framed]
        self.source[framed] = (w[:, 6] | w[:, 7].astype(np.int64) << 8)[framed]
        eight = np.full(len(w), 8, dtype=np.int64)
        header_ok = crc16_rows(w[:, :8], eight) == (w[:, 8] | w[:, 9].astype(np.uint16) << 8)
        primary = (control & PRM) != 0
        function = control & 0x0F
        known = np.where(primary, _PRIMARY_KNOWN[function], _SECONDARY_KNOWN[function])
        user_data = primary & ((function == 3) | (function == 4))
        n = length - MIN_LENGTH
        data_ok = np.ones(len(w), dtype=np.bool_)
        for block in range(16):
            size = np.clip(n - BLOCK * block, 0, BLOCK)
            if not (size > 0).any():
                break
            begin = HEADER_SIZE + (BLOCK + 2) * block
            crc = crc16_rows(w[:, begin : begin + BLOCK], size)
            at = begin + size
            rows = np.arange(len(w))
            stored = (
                w[rows, np.minimum(at, w.shape[1] - 2)]
                | w[rows, np.minimum(at + 1, w.shape[1] - 1)].astype(np.uint16) << 8
            )
            data_ok &= (size == 0) | (crc == stored)
        bad_header = framed & ~header_ok
        self.fail(bad_header, F.BAD_HEADER_CRC)
        link = framed & header_ok
        self.fail(link & ~known, F.UNKNOWN_LINK_FUNCTION)
        link &= known
        names = _LINK_NAMES[(primary.astype(np.int64) << 4) | function]
        s["function"][link & ~user_data] = names[link & ~user_data]
        s["function"][link & user_data] = TRANSPORT_SEGMENT
        self.fail(link & user_data & (n == 0), F.NO_USER_DATA)
        link &= n > 0
        self.fail(link & ~data_ok, F.BAD_DATA_CRC)
        link &= data_ok
        self.fail(link & ~user_data, F.UNEXPECTED_USER_DATA)
        segment = link & user_data
        user = w[:, _USER_INDEX]
        self.transport[segment] = user[segment, 0]
        single = segment & ((user[:, 0] & 0xC0) == 0xC0)
        s["status"][segment & ~single] = int(ParseStatus.PARTIAL)
        self._application(user, n - 1, single)

    def _application(
        self, user: npt.NDArray[np.uint8], size: npt.NDArray[np.int64], rows: npt.NDArray[np.bool_]
    ) -> None:
        """The application layer of the `rows` whose one transport segment is a whole fragment of
        `size` bytes at `user[:, 1:]`."""
        s = self.summary
        self.fail(rows & (size < 2), F.APPLICATION_TOO_SHORT)
        rows = rows & (size >= 2)
        code = user[:, 2].astype(np.int64)
        self.app_control[rows] = user[rows, 1]
        self.app_function[rows] = code[rows]
        response = _RESPONSE[code]
        self.fail(rows & response & (size < 4), F.APPLICATION_TOO_SHORT)
        with_iin = rows & response & (size >= 4)
        self.iin[with_iin] = (user[:, 3].astype(np.int64) << 8 | user[:, 4])[with_iin]
        s["result"][with_iin] = self.iin[with_iin] & IIN2_ERRORS
        rows = rows & ~(response & (size < 4))
        s["function"][self.app_function >= 0] = [
            fc.NAMES.get(c, "") for c in self.app_function[self.app_function >= 0].tolist()
        ]
        self.fail(rows & ~_KNOWN_FUNCTION[code], F.UNKNOWN_FUNCTION)
        rows &= _KNOWN_FUNCTION[code]
        has_function = self.app_function >= 0
        s["operation"][has_function] = [fc.operation_of(c) for c in self.app_function[has_function].tolist()]
        for row in np.flatnonzero(rows).tolist():  # the object headers: variable, one row at a time
            header = 4 if response[row] else 2
            found = walk(int(code[row]), user[row, 1 + header : 1 + int(size[row])].tobytes())
            first = found.headers[0] if found.headers else None
            s["operation"][row] = fc.operation_of(
                int(code[row]), first.group if first else -1, found.file_mode
            )
            s["address"][row] = first.address if first else -1
            s["quantity"][row] = first.count if first else 0
            s["targets"][row] = tuple(header.text() for header in found.headers[:MAX_TARGETS])
            s["status"][row] = int(found.status)
            s["finding"][row] = int(found.finding)


def _exactly(
    out: _Rows,
    padded: npt.NDArray[np.uint8],
    rows: npt.NDArray[np.intp],
    position: npt.NDArray[np.int64],
    size: npt.NDArray[np.int64],
    server: npt.NDArray[np.bool_],
) -> None:
    """Fill `rows` (frames whose framing failed: bad start or length) from `exact.decode_frame`."""
    for row in rows.tolist():
        start = int(position[row])
        message = decode_frame(padded[start : start + int(size[row])].tobytes(), bool(server[row]))
        summary = message.summary()
        for name in (
            "length",
            "control",
            "destination",
            "source",
            "transport",
            "app_control",
            "app_function",
            "iin",
        ):
            getattr(out, name)[row] = getattr(message, name)
        for name in ("function", "address", "quantity", "result", "is_response", "unit"):
            out.summary[name][row] = getattr(summary, name)
        out.summary["targets"][row] = summary.targets
        out.summary["operation"][row] = int(summary.operation)
        out.summary["status"][row] = int(summary.status)
        out.summary["finding"][row] = int(summary.finding)
