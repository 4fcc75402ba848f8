"""Register values out of a batch's bytes: where each Modbus ADU lies, and its values as samples.

`adu_positions` finds, per PDU row of the sensor's `ModbusBatch`, where its ADU starts in the
batch's buffer. A row's `offset` counts from the start of the bytes its framer was given: the
packet's payload for most rows, but for the second half of an ADU split over two segments (and
what follows it in that segment) or for bytes the exact path delivered behind pending ones, from
bytes held outside the buffer. So a position is taken only when the MBAP header found there says
the very transaction id, length, unit id and function code of the row, and the ADU ends inside
the payload: first at payload + offset; failing that, with the offset moved back by the bytes
that came before the segment (the last ADU of a segment ends where its payload does). An ADU
whose bytes are not all in its packet, that is one split over two segments, is not reassembled
here: it is skipped and counted (`unreachable`), about one PDU in a hundred in the generator's
captures, which split one segment in a hundred.

`Spans` are ranges of one table of one asset whose values lie in the buffer (bit-packed or as
big-endian words from `data`) or are given (`literal`: FC 5 and 6 carry one value, already in the
columns); `samples` turns them into one sample per register of the map wholly inside a range,
with no Python loop over registers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.monitoring.modbus_streams import ModbusBatch
from plantwarden.monitoring.register_map import (
    BOOL,
    COIL,
    DISCRETE,
    FLOAT32,
    INT16,
    INT32,
    UINT32,
    RegisterMap,
)
from plantwarden.protocols.modbus.framing import HEADER_SIZE, LENGTH_BASE

Int64s = npt.NDArray[np.int64]


def adu_positions(
    buffer: npt.NDArray[np.uint8],
    payload_offset: Int64s,
    payload_length: npt.NDArray[np.integer[Any]],
    modbus: ModbusBatch,
    rows: Int64s,
) -> Int64s:
    """Per row of `modbus` among `rows`: where its ADU starts in `buffer`, or -1 when its bytes
    are not there whole (`payload_offset` and `payload_length` are the batch's, per packet)."""
    c = modbus.columns
    packet = modbus.packet[rows]
    start = payload_offset[packet].astype(np.int64)
    end = start + payload_length[packet]
    size = LENGTH_BASE + c.length[rows].astype(np.int64)
    direct = start + c.offset[rows]
    found = np.where(_sound(buffer, direct, end, size, c, rows), direct, -1)
    missed = np.flatnonzero(found < 0)
    if missed.size:
        # Framed behind bytes of an earlier segment: the packet's last ADU ends with its payload.
        ends = _packet_ends(modbus, packet[missed])
        shifted = direct[missed] - (ends - payload_length[packet[missed]])
        sound = (shifted >= start[missed]) & _sound(
            buffer, shifted, end[missed], size[missed], c, rows[missed]
        )
        found[missed] = np.where(sound, shifted, -1)
    return found


def _packet_ends(modbus: ModbusBatch, packets: Int64s) -> Int64s:
    """Per packet of `packets`: where the last ADU it completes ends, counted as its rows' offsets."""
    c = modbus.columns
    mine = np.flatnonzero(np.isin(modbus.packet, packets))
    wanted, index = np.unique(modbus.packet[mine], return_inverse=True)
    ends = np.zeros(len(wanted), dtype=np.int64)
    np.maximum.at(ends, index, c.offset[mine].astype(np.int64) + LENGTH_BASE + c.length[mine])
    found: Int64s = ends[np.searchsorted(wanted, packets)]
    return found


def _sound(
    buffer: npt.NDArray[np.uint8], at: Int64s, end: Int64s, size: Int64s, c: Any, rows: Int64s
) -> npt.NDArray[np.bool_]:
    """Whether the ADU of each row lies at `at`, whole before `end`: its MBAP header and function
    code say what the row says."""
    fits = (at >= 0) & (at + size <= end) & (at + HEADER_SIZE + 1 <= len(buffer))
    at = np.where(fits, at, 0)
    index = np.minimum(at[:, None] + np.arange(HEADER_SIZE + 1), len(buffer) - 1)
    header = buffer[index].astype(np.int64)
    sound: npt.NDArray[np.bool_] = (
        fits
        & ((header[:, 0] << 8 | header[:, 1]) == c.transaction_id[rows])
        & ((header[:, 2] | header[:, 3]) == 0)
        & ((header[:, 4] << 8 | header[:, 5]) == c.length[rows])
        & (header[:, 6] == c.unit_id[rows])
        & ((header[:, 7] & 0x7F) == c.function_code[rows])
    )
    return sound


@dataclass(frozen=True, slots=True)
class Spans:
    """Ranges of addresses of one table of one asset with their values, one row each."""

    asset: Int64s
    table: Int64s
    first: Int64s
    count: Int64s
    data: Int64s
    """Where the first value lies in the buffer (bit-packed for coils and discrete inputs, else
    big-endian words); -1 when `literal` holds it."""
    literal: Int64s
    """The one value of a range (FC 5: 0/1, FC 6: the word), when `data` is -1."""
    ts: Int64s

    def __len__(self) -> int:
        return len(self.asset)

    @staticmethod
    def join(parts: list[Spans]) -> Spans:
        """The rows of `parts`, one after the other."""
        if len(parts) == 1:
            return parts[0]
        names = [field.name for field in fields(Spans)]
        return Spans(*(np.concatenate([getattr(part, name) for part in parts]) for name in names))


@dataclass(frozen=True, slots=True)
class Samples:
    """Decoded values: the register of the map (its row), the time, the engineering value; and
    how many addresses of the spans no register of the map took."""

    register: Int64s
    span: Int64s
    ts: Int64s
    value: npt.NDArray[np.float64]
    unmapped: int


def samples(registers: RegisterMap, buffer: npt.NDArray[np.uint8], spans: Spans) -> Samples:
    """One sample per register of the map wholly inside a span, valued from the span's bytes."""
    low, high = registers.span(spans.asset, spans.table, spans.first, spans.count)
    counts = high - low
    total = int(counts.sum())
    span = np.repeat(np.arange(len(spans), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    register = np.repeat(low - starts, counts) + np.arange(total, dtype=np.int64)
    widths = registers.lasts[register] - registers.keys[register] + 1
    unmapped = int(spans.count.sum()) - int(widths.sum())
    offset = (registers.keys[register] & 0xFFFF) - spans.first[span]
    data, literal = spans.data[span], spans.literal[span]
    bits = np.isin(spans.table[span], (COIL, DISCRETE))
    given = data < 0
    first_word = _words(buffer, data + 2 * offset, ~bits & ~given)
    second_word = _words(buffer, data + 2 * offset + 2, ~bits & ~given & (widths == 2))
    bit = _bits(buffer, data, offset, bits & ~given)
    low_word = np.where(given, literal, np.where(bits, bit, first_word)).astype(np.uint32)
    value = _value(registers, register, low_word, second_word.astype(np.uint32))
    return Samples(register, span, spans.ts[span], value, unmapped)


def _words(buffer: npt.NDArray[np.uint8], at: Int64s, wanted: npt.NDArray[np.bool_]) -> Int64s:
    """The big-endian words at `at` where `wanted` (0 elsewhere)."""
    at = np.clip(np.where(wanted, at, 0), 0, len(buffer) - 2)  # inside the ADU: checked by the caller
    words: Int64s = np.where(wanted, buffer[at].astype(np.int64) << 8 | buffer[at + 1], 0)
    return words


def _bits(
    buffer: npt.NDArray[np.uint8], data: Int64s, offset: Int64s, wanted: npt.NDArray[np.bool_]
) -> Int64s:
    """Bit `offset` of the bit-packed values from `data` (least significant bit first) where `wanted`."""
    at = np.clip(np.where(wanted, data + (offset >> 3), 0), 0, len(buffer) - 1)
    bits: Int64s = np.where(wanted, (buffer[at].astype(np.int64) >> (offset & 7)) & 1, 0)
    return bits


def _value(
    registers: RegisterMap, register: Int64s, first: npt.NDArray[np.uint32], second: npt.NDArray[np.uint32]
) -> npt.NDArray[np.float64]:
    """The engineering values of `register`s holding the words `first` (and `second`, in wire order)."""
    kind = registers.type_code[register]
    little = registers.little[register]
    wide = np.where(little, second << 16 | first, first << 16 | second).astype(np.uint32)
    value = np.where(kind == INT16, first.astype(np.uint16).view(np.int16), first).astype(np.float64)
    value = np.where(kind == UINT32, wide, value)
    value = np.where(kind == INT32, wide.view(np.int32), value)
    value = np.where(kind == FLOAT32, wide.view(np.float32), value)
    scaled: npt.NDArray[np.float64] = value / registers.scale[register]
    return np.where(kind == BOOL, (first != 0).astype(np.float64), scaled)
