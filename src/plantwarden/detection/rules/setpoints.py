"""The derived field `out_of_range`: a Modbus write of a value outside its register's safe range.

A `protocol` record carries the first value a request writes (`value`, the raw 16-bit register
word) and the first register it writes (`address`). `PlantSafeRanges` looks the written register
up in the plant model (the asset by the record's site and destination address, the register by
its address) and tells whether its engineering value (raw / scale) lies outside `safe_range`.

Only writes of holding registers count: Modbus write single register (6) and write multiple
registers (16, its first value); a coil (5) is a bool and has no range. From the first register
of a write the value is known exactly for `uint16` and `int16`. For a 32-bit register in big word
order the first register is the high word, which bounds the value: an `int32` or `uint32` lies in
[high x 65536, high x 65536 + 65535] and a `float32` between the floats of the high word with a
low word of 0x0000 and 0xFFFF; it is out of range when the whole interval is (a float whose
exponent bits are all ones, infinite or NaN, always is), and undecided (false) otherwise. In little
word order the first register is the low word, which says nothing: such writes, and writes that
start inside a register rather than at its first address, are never out of range.

The rows are narrowed with numpy (Modbus, function 6 or 16, a word value, a destination address
of a declared asset); the few left are looked up in a dictionary of (site, address, register)
and decoded vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import Protocol, address
from plantwarden.zones.plant.model import Register, SiteModel

Array = npt.NDArray[Any]
WRITE_FUNCTIONS = (6, 16)
"""Modbus write single register and write multiple registers."""
WORD_TYPES = frozenset({"uint16", "int16"})
HIGH_WORD_TYPES = frozenset({"uint32", "int32", "float32"})
CODES = {"uint16": 0, "int16": 1, "uint32": 2, "int32": 3, "float32": 4}


@dataclass(frozen=True, slots=True)
class SafeRange:
    """One register that a write can be judged against: how to read its first word, its range."""

    type: int
    scale: float
    low: float
    high: float


def judged(register: Register) -> SafeRange | None:
    """The register's range as the first written word can be judged against; None when it cannot."""
    if register.kind != "holding" or register.safe_range is None or not register.scale:
        return None
    if register.type not in WORD_TYPES and not (
        register.type in HIGH_WORD_TYPES and register.word_order == "big"
    ):
        return None
    low, high = register.safe_range
    return SafeRange(CODES[register.type], float(register.scale), float(low), float(high))


class PlantSafeRanges:
    """Per record of a batch, whether it writes a declared register outside its safe range."""

    def __init__(self, sites: Sequence[SiteModel]) -> None:
        self.table: dict[tuple[str, bytes, int], int] = {}
        ranges: list[SafeRange] = []
        for site in sites:
            for asset in site.assets:
                for register in asset.registers:
                    found = judged(register)
                    if found is None:
                        continue
                    for host in asset.addresses:
                        self.table[(site.id, address(str(host)), register.address)] = len(ranges)
                    ranges.append(found)
        self.hosts = np.array(sorted({key[1] for key in self.table}), dtype="S16")
        self.types = np.array([r.type for r in ranges], dtype=np.uint8)
        self.scales = np.array([r.scale for r in ranges], dtype=np.float64)
        self.lows = np.array([r.low for r in ranges], dtype=np.float64)
        self.highs = np.array([r.high for r in ranges], dtype=np.float64)

    def __call__(self, batch: RecordBatch) -> Array:
        out = np.zeros(len(batch), dtype=bool)
        if not len(batch) or not self.table:
            return out
        rows = _candidates(batch, self.hosts)
        if not len(rows):
            return out
        sites, hosts, registers = batch["site"][rows], batch["dst_addr"][rows], batch["address"][rows]
        numbers = np.array(
            [
                self.table.get((str(s), bytes(h).ljust(16, b"\0"), int(r)), -1)
                for s, h, r in zip(sites, hosts, registers, strict=True)
            ],
            dtype=np.int64,
        )
        known = numbers >= 0
        rows, numbers = rows[known], numbers[known]
        out[rows] = self._outside(batch["value"][rows].astype(np.int64), numbers)
        return out

    def _outside(self, words: Array, numbers: Array) -> Array:
        low, high = raw_bounds(words, self.types[numbers])
        scales = self.scales[numbers]
        first, last = low / scales, high / scales
        least, most = np.minimum(first, last), np.maximum(first, last)
        with np.errstate(invalid="ignore"):
            outside = (most < self.lows[numbers]) | (least > self.highs[numbers])
        return np.asarray(outside | ~np.isfinite(low) | ~np.isfinite(high))


def _candidates(batch: RecordBatch, hosts: Array) -> Array:
    """The rows that write a 16-bit word to one of the declared addresses."""
    values = batch["value"]
    with np.errstate(invalid="ignore"):
        word = (values >= 0) & (values <= 0xFFFF) & (values == np.floor(values))
    writes = (batch["protocol"] == int(Protocol.MODBUS)) & np.isin(batch["function"], WRITE_FUNCTIONS)
    rows = np.flatnonzero(writes & word & (batch["address"] >= 0))
    if len(rows):
        rows = rows[np.isin(batch["dst_addr"][rows], hosts)]
    return rows


def raw_bounds(words: Array, types: Array) -> tuple[Array, Array]:
    """The least and greatest raw value a register of each type can hold, its first word given."""
    words = words.astype(np.int64)
    signed = np.where(words >= 0x8000, words - 0x10000, words)
    low = np.select(
        [types == 0, types == 1, types == 2, types == 3], [words, signed, words << 16, signed << 16], 0
    ).astype(np.float64)
    high = np.where((types == 2) | (types == 3), low + 0xFFFF, low)
    floats = types == 4
    if floats.any():
        bits = (words[floats] << 16).astype(np.uint32)
        zero, ones = bits.view(np.float32), (bits | np.uint32(0xFFFF)).view(np.float32)
        low[floats] = np.minimum(zero, ones)
        high[floats] = np.maximum(zero, ones)
    return low, high
