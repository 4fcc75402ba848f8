"""The fast path: `extract` turns many payload segments into `Dnp3Columns` at once.

Vectorised with numpy, over every segment or frame of the batch at once: the framing (a walk
that reads each open segment's next frame header level by level: start bytes, link length, frame
size), the link header, the CRCs of all blocks of all frames together (`_crcs`), the link
function, the transport header and the application header (control, function code, IIN), since
all of these are at fixed offsets of a frame, and the object headers of the frames holding a
whole application fragment, level by level (`headers.walk_rows`; target texts are written once
per distinct header of the batch). Decoded per row in Python: the fragments whose objects' sizes
are read one object at a time (free-format objects, device attributes: `objects.walk_fragment`,
which remembers requests), and the rare frames whose framing fails (bad start or length:
`exact.decode_frame`).

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
from plantwarden.protocols.dnp3.crc import RESIDUE, residues
from plantwarden.protocols.dnp3.exact import BLOCK, HEADER_SIZE, MIN_LENGTH, decode_frame
from plantwarden.protocols.dnp3.findings import Dnp3Finding as F
from plantwarden.protocols.dnp3.headers import HeaderRows, walk_rows
from plantwarden.protocols.dnp3.messages import DIR, IIN2_ERRORS, PRM, TRANSPORT_SEGMENT
from plantwarden.protocols.dnp3.objects import Objects, walk_fragment

MAX_FRAME = HEADER_SIZE + 250 + 2 * 16
"""The longest frame: link length 255, 250 user data bytes in 16 blocks."""
_USER_OFFSET = np.array([k + 2 * (k // BLOCK) for k in range(250)], dtype=np.int64)
"""Where user data byte k is in a frame, counted from the first (a CRC after every 16 bytes)."""
_WORD_MASKS = np.array(
    [
        [(0xFF if 2 * k >= pad else 0) | (0xFF00 if 2 * k + 1 >= pad else 0) for k in range(9)]
        for pad in range(BLOCK + 3)
    ],
    dtype=np.uint16,
)
"""The bytes of each of a block's nine words that belong to it, by the zeros before it."""


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
_FUNCTION_NAMES = _table(fc.NAMES, "", object)
_OPERATIONS = np.array([int(fc.operation_of(code)) for code in range(256)], dtype=np.int64)
"""Each application function's operation category, before its objects are known."""


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
    out = _Rows(rows)
    out.decode(padded, position, framing == F.OK)
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

    def fail(self, rows: npt.NDArray[Any], finding: F) -> None:
        """Mark `rows` (a mask or row numbers) malformed with `finding`."""
        self.summary["status"][rows] = int(ParseStatus.MALFORMED)
        self.summary["finding"][rows] = int(finding)

    def decode(
        self, padded: npt.NDArray[np.uint8], position: npt.NDArray[np.int64], framed: npt.NDArray[np.bool_]
    ) -> None:
        """Fill the rows of the `framed` frames, each at `position` in `padded` (one row each)."""
        s = self.summary

        def octet(offset: int) -> npt.NDArray[np.int64]:
            return padded[position + offset].astype(np.int64)

        length, control = octet(2), octet(3)
        self.length[framed] = length[framed]
        self.control[framed] = control[framed]
        self.destination[framed] = (octet(4) | octet(5) << 8)[framed]
        self.source[framed] = (octet(6) | octet(7) << 8)[framed]
        primary = (control & PRM) != 0
        function = control & 0x0F
        known = np.where(primary, _PRIMARY_KNOWN[function], _SECONDARY_KNOWN[function])
        user_data = primary & ((function == 3) | (function == 4))
        n = length - MIN_LENGTH
        header_ok, data_ok = _crcs(padded, position, np.where(framed, n, -1))
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
        transport = octet(HEADER_SIZE)
        self.transport[segment] = transport[segment]
        single = segment & ((transport & 0xC0) == 0xC0)
        s["status"][segment & ~single] = int(ParseStatus.PARTIAL)
        self._application(padded, position + HEADER_SIZE, n - 1, np.flatnonzero(single))

    def _application(
        self,
        padded: npt.NDArray[np.uint8],
        user: npt.NDArray[np.int64],
        size: npt.NDArray[np.int64],
        rows: npt.NDArray[np.intp],
    ) -> None:
        """The application layer of the `rows` whose one transport segment is a whole fragment of
        `size` bytes, after the transport header at `user` in `padded` (16 user data bytes per
        block, then its CRC)."""
        s = self.summary
        size = size[rows]
        self.fail(rows[size < 2], F.APPLICATION_TOO_SHORT)
        rows, size = rows[size >= 2], size[size >= 2]
        first = user[rows]
        code = padded[first + 2].astype(np.int64)
        self.app_control[rows] = padded[first + 1]
        self.app_function[rows] = code
        s["function"][rows] = _FUNCTION_NAMES[code]
        s["operation"][rows] = _OPERATIONS[code]
        response = _RESPONSE[code]
        self.fail(rows[response & (size < 4)], F.APPLICATION_TOO_SHORT)
        with_iin = response & (size >= 4)
        iin = padded[first + 3].astype(np.int64) << 8 | padded[first + 4]
        self.iin[rows[with_iin]] = iin[with_iin]
        s["result"][rows[with_iin]] = iin[with_iin] & IIN2_ERRORS
        going = ~(response & (size < 4))
        self.fail(rows[going & ~_KNOWN_FUNCTION[code]], F.UNKNOWN_FUNCTION)
        going &= _KNOWN_FUNCTION[code]
        walked, first, size, code = rows[going], first[going], size[going], code[going]
        begin = np.where(response[going], 5, 3)
        found = walk_rows(padded, first, begin, 1 + size, code)
        self._objects(walked, code, found)
        exact = np.flatnonzero(found.exact)  # sizes read object by object
        bodies = [
            padded[start + _USER_OFFSET[at:end]].tobytes()
            for start, at, end in zip(
                first[exact].tolist(), begin[exact].tolist(), (1 + size[exact]).tolist(), strict=True
            )
        ]
        codes = code[exact].tolist()
        self._walked(
            walked[exact], codes, [walk_fragment(c, body) for c, body in zip(codes, bodies, strict=True)]
        )

    def _objects(self, walked: npt.NDArray[np.intp], code: npt.NDArray[np.int64], found: HeaderRows) -> None:
        """The summary of the `walked` rows (application function `code`) from their headers."""
        s = self.summary
        s["status"][walked] = found.status
        s["finding"][walked] = found.finding
        if not len(found.row):
            return
        firsts, first_at, _ = found.firsts()
        rows = walked[firsts]
        s["address"][rows] = found.address()[first_at]
        s["quantity"][rows] = found.count[first_at]
        program = (code[firsts] == fc.WRITE) & (found.group[first_at] == fc.FILE_GROUP)
        s["operation"][rows[program]] = int(Operation.PROGRAM)
        with_headers, targets = found.targets(MAX_TARGETS)
        s["targets"][walked[with_headers]] = targets

    def _walked(self, rows: npt.NDArray[np.intp], codes: list[int], walks: list[Objects]) -> None:
        """The summary of `rows` (application functions `codes`) from their `objects.walk`."""
        s = self.summary
        cells = [_walked_cells(code, found) for code, found in zip(codes, walks, strict=True)]
        if not cells:
            return
        operation, address, quantity, targets, status, finding = zip(*cells, strict=True)
        s["operation"][rows] = operation
        s["address"][rows] = address
        s["quantity"][rows] = quantity
        s["targets"][rows] = np.fromiter(targets, dtype=object, count=len(targets))
        s["status"][rows] = status
        s["finding"][rows] = finding


def _walked_cells(code: int, found: Objects) -> tuple[int, int, int, tuple[str, ...], int, int]:
    """A fragment's summary cells from its walk: operation, address, quantity, targets, status
    and finding."""
    first = found.headers[0] if found.headers else None
    return (
        int(fc.operation_of(code, first.group if first else -1, found.file_mode)),
        first.address if first else -1,
        first.count if first else 0,
        tuple([header.text() for header in found.headers[:MAX_TARGETS]]),
        int(found.status),
        int(found.finding),
    )


def _crcs(
    padded: npt.NDArray[np.uint8], position: npt.NDArray[np.int64], n: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Whether each frame's header block, and each of its data blocks, carries its right CRC
    (the frame at `position` in `padded` with `n` user data bytes; none checked where `n` < 0).

    Every block of every frame at once, as nine words of two bytes right-aligned in 18 (16
    bytes and the CRC; the header block's 10) behind zeros, which leave the CRC register at 0.
    """
    rows = np.flatnonzero(n >= 0)
    blocks = -(-n[rows] // BLOCK) + 1  # the header block, then the data blocks
    frame = np.repeat(rows, blocks)
    number = np.arange(len(frame)) - np.repeat(np.cumsum(blocks) - blocks, blocks) - 1  # -1: header
    data = np.clip(n[frame] - BLOCK * number, 0, BLOCK)
    end = np.where(number < 0, HEADER_SIZE, HEADER_SIZE + (BLOCK + 2) * number + data + 2)
    padding = np.where(number < 0, BLOCK + 2 - HEADER_SIZE, BLOCK - data)
    # each block's 18 bytes up to its end, read as nine words (8 zeros before the batch)
    shifted = np.concatenate((np.zeros(BLOCK + 2 - HEADER_SIZE, dtype=np.uint8), padded))
    windows = np.lib.stride_tricks.sliding_window_view(shifted, BLOCK + 2)[
        position[frame] + end - HEADER_SIZE
    ]
    words = windows.view("<u2") & _WORD_MASKS[padding]
    right = residues(words) == RESIDUE
    header_ok = np.ones(len(n), dtype=np.bool_)
    header_ok[frame[number < 0]] = right[number < 0]
    data_ok = np.bincount(frame[~right & (number >= 0)], minlength=len(n)) == 0
    return header_ok, data_ok


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
