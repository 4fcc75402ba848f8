"""The safety envelope: whether the values a write would put into a PLC lie within its register map.

plant.yaml's register maps give each register a kind (holding, coil, ...), a type (16/32-bit,
signed or not, float), a word order for 32-bit values, a scale (`raw = value x scale`) and a safe
range in engineering units. A write is checked value by value:

- a register with a safe range must be written whole (both words of a 32-bit value, in one
  request) and its engineering value must lie in the range; a write that covers only one word of
  it, or a mask write (22) that leaves bits of it to the PLC's current value, cannot be proven
  safe and is refused;
- a rate-of-change limit (units per second, from the gateway's settings) compares the value with
  the last one this gateway let through for the register: at most `limit x seconds elapsed` away
  (the first write after a start is held to the safe range only);
- registers without a map entry, or without a safe range and rate limit, are not narrowed here
  (who may write them is the policy's business).

`Envelope.check` is pure; `Envelope.remember` records the values of a write that went through.

The envelope also knows each asset's whole register map per table (`RegisterTable`): a request to
an asset with a map must stay on addresses the map declares in the table its function code reads
or writes (coils, discrete inputs, holding or input registers: one address space each), and a
write only on registers of that table that list the writer's role (the policy's ranges merge the
tables, so holding 0 and coil 0 look alike to it).
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from plantwarden.zones.plant.model import Asset, Register

_KIND_OF_FUNCTION = {5: "coil", 15: "coil", 6: "holding", 16: "holding", 22: "holding", 23: "holding"}
"""The register table each writing function code writes."""
TABLE_OF_FUNCTION = {
    **_KIND_OF_FUNCTION, 1: "coil", 2: "discrete", 3: "holding", 4: "input"
}  # fmt: skip
"""The register table (plant.yaml's `kind`) each addressed function code reads or writes."""


_SEEN_SPANS = 4096
"""Spans a register table remembers its answer for (then it starts again)."""


class RegisterTable:
    """The registers of one table of one asset's map, sorted by address: which addresses it has,
    and who may write them."""

    __slots__ = ("_lasts", "_registers", "_seen", "_starts")

    def __init__(self, registers: Sequence[Register]) -> None:
        self._registers = sorted(registers, key=lambda r: r.address)
        self._starts = [register.address for register in self._registers]
        self._lasts = [register.last for register in self._registers]
        self._seen: dict[tuple[int, int], tuple[list[Register], int | None]] = {}
        """The spans asked before (a plant's clients ask the same few again and again)."""

    def _covering(self, first: int, last: int) -> tuple[list[Register], int | None]:
        """The registers covering first..last in order, and the first address none covers."""
        seen = self._seen.get((first, last))
        if seen is not None:
            return seen
        registers, lasts, found = self._registers, self._lasts, list[Register]()
        index = max(bisect_right(self._starts, first) - 1, 0)
        cursor, hole = first, None
        while cursor <= last:
            while index < len(registers) and lasts[index] < cursor:
                index += 1
            if index == len(registers) or registers[index].address > cursor:
                hole = cursor
                break
            found.append(registers[index])
            cursor = lasts[index] + 1
        if len(self._seen) >= _SEEN_SPANS:
            self._seen.clear()
        self._seen[first, last] = found, hole
        return found, hole

    def uncovered(self, first: int, last: int) -> int | None:
        """The first address of first..last that no register of the table declares, or None."""
        return self._covering(first, last)[1]

    def not_writable(self, first: int, last: int, role: str) -> Register | None:
        """The first register in first..last whose writers do not list `role`, or None."""
        covering, _ = self._covering(first, last)
        return next((register for register in covering if role not in register.writers), None)


@dataclass(frozen=True, slots=True)
class Breach:
    """Why a write leaves the envelope: the register and a sentence for people."""

    register: str
    reason: str


@dataclass(frozen=True, slots=True)
class Watched:
    """A register the envelope checks: its map entry and its rate-of-change limit (or None)."""

    register: Register
    max_change_per_second: float | None


class AssetEnvelope:
    """The watched registers of one asset, per kind, sorted by address."""

    __slots__ = ("_by_kind", "rates", "tables", "unit_id")

    def __init__(self, asset: Asset, rate_limits: Mapping[str, float]) -> None:
        self.unit_id = asset.unit_id
        self.rates = dict(asset.rate_limits)
        """Requests a second each client of a role may send this asset (plant.yaml)."""
        self.tables: dict[str, RegisterTable] | None = None
        """The register map per table (a table the map omits has no address); None: no map."""
        if asset.registers:
            self.tables = {
                kind: RegisterTable([r for r in asset.registers if r.kind == kind])
                for kind in ("coil", "discrete", "holding", "input")
            }
        by_kind: dict[str, tuple[list[int], list[Watched]]] = {}
        for register in sorted(asset.registers, key=lambda r: r.address):
            limit = rate_limits.get(register.name, register.max_change)  # the command line wins
            if register.safe_range is None and limit is None:
                continue
            starts, watched = by_kind.setdefault(register.kind, ([], []))
            starts.append(register.address)
            watched.append(Watched(register, limit))
        self._by_kind = by_kind

    def overlapping(self, kind: str, first: int, last: int) -> list[Watched]:
        """The watched registers of `kind` that share an address with first..last."""
        found = self._by_kind.get(kind)
        if found is None:
            return []
        starts, watched = found
        index = max(bisect_right(starts, first) - 1, 0)
        result = []
        while index < len(starts) and starts[index] <= last:
            item = watched[index]
            if item.register.last >= first:
                result.append(item)
            index += 1
        return result


class Envelope:
    """The envelopes of the assets behind the gateway, and the last values let through."""

    def __init__(self, assets: Sequence[Asset], rate_limits: Mapping[str, Mapping[str, float]]) -> None:
        self._assets = {asset.id: AssetEnvelope(asset, rate_limits.get(asset.id, {})) for asset in assets}
        self._last: dict[tuple[str, str], tuple[float, float]] = {}

    def asset(self, asset: str) -> AssetEnvelope | None:
        """The envelope and register map of `asset` (None: not an asset behind the gateway)."""
        return self._assets.get(asset)

    def carry_from(self, other: Envelope) -> None:
        """Keep the last values `other` let through (a new policy state keeps the history)."""
        self._last.update(other._last)

    def check(
        self, asset: str, function_code: int, address: int, values: Sequence[int], now: float
    ) -> Breach | None:
        """The first breach of a write (function 5, 6, 15, 16, 22 or 23's write part), or None.

        `values` are the decoded values of the request: bits for 5 and 15, words for 6, 16 and
        23, the AND and OR masks for 22. `now` is a monotonic time in seconds.
        """
        envelope = self._assets.get(asset)
        kind = _KIND_OF_FUNCTION.get(function_code)
        if envelope is None or kind is None or not values:
            return None
        count = 1 if function_code == 22 else len(values)
        for watched in envelope.overlapping(kind, address, address + count - 1):
            breach = self._check_one(asset, watched, function_code, address, values, now)
            if breach is not None:
                return breach
        return None

    def _check_one(
        self,
        asset: str,
        watched: Watched,
        function_code: int,
        address: int,
        values: Sequence[int],
        now: float,
    ) -> Breach | None:
        register = watched.register
        if function_code == 22:
            and_mask, or_mask = values[0], values[1]
            if and_mask != 0 or register.width != 1:
                return Breach(
                    register.name,
                    f"a mask write leaves bits of {register.name} to its current value, so the result"
                    " cannot be checked against its limits; write the whole value",
                )
            words: Sequence[int] = (or_mask,)
        else:
            offset = register.address - address
            if offset < 0 or offset + register.width > len(values):
                return Breach(
                    register.name,
                    f"the write covers only part of {register.name} ({register.type}, addresses"
                    f" {register.address}-{register.last}); write both words in one request",
                )
            words = values[offset : offset + register.width]
        value = engineering_value(register, words)
        return self._within(asset, watched, value, now)

    def _within(self, asset: str, watched: Watched, value: float, now: float) -> Breach | None:
        register = watched.register
        if math.isnan(value) or math.isinf(value):
            return Breach(register.name, f"{register.name} would be set to {value}, not a number")
        if register.safe_range is not None:
            low, high = register.safe_range
            if not low <= value <= high:
                unit = f" {register.unit}" if register.unit else ""
                return Breach(
                    register.name,
                    f"{register.name} would be set to {value:g}{unit}, outside its safe range"
                    f" [{low:g}, {high:g}]{unit}",
                )
        limit = watched.max_change_per_second
        last = self._last.get((asset, register.name))
        if limit is not None and last is not None:
            previous, then = last
            allowed = limit * max(now - then, 0.0)
            if abs(value - previous) > allowed:
                return Breach(
                    register.name,
                    f"{register.name} would change by {abs(value - previous):g} in {now - then:.3f} s"
                    f" (from {previous:g} to {value:g}); at most {limit:g} per second is allowed",
                )
        return None

    def remember(
        self, asset: str, function_code: int, address: int, values: Sequence[int], now: float
    ) -> None:
        """Note the values of a write that went through (for later rate-of-change checks)."""
        envelope = self._assets.get(asset)
        kind = _KIND_OF_FUNCTION.get(function_code)
        if envelope is None or kind is None or not values:
            return
        count = 1 if function_code == 22 else len(values)
        for watched in envelope.overlapping(kind, address, address + count - 1):
            if watched.max_change_per_second is None:
                continue
            register = watched.register
            if function_code == 22:
                words: Sequence[int] = (values[1],)
            else:
                offset = register.address - address
                if offset < 0 or offset + register.width > len(values):
                    continue
                words = values[offset : offset + register.width]
            self._last[(asset, register.name)] = (engineering_value(register, words), now)


def engineering_value(register: Register, words: Sequence[int]) -> float:
    """The value in engineering units of a register's raw words (bits for coils), by its type,
    word order and scale."""
    if register.type == "bool":
        return float(words[0] & 0xFFFF)  # a holding register written 0xFFFF is not "true": 65535
    if register.width == 1:
        raw = words[0] & 0xFFFF
        number: float = raw - 0x10000 if register.type == "int16" and raw & 0x8000 else raw
    else:
        high, low = (words[0], words[1]) if register.word_order == "big" else (words[1], words[0])
        data = struct.pack(">HH", high & 0xFFFF, low & 0xFFFF)
        code = {"uint32": ">I", "int32": ">i", "float32": ">f"}[register.type]
        number = struct.unpack(code, data)[0]
    return number / register.scale  # float32 too, as the sensor decodes it (register_decode.py)
