"""Register values as 16-bit words: integers scaled and saturated, float32 as two big-endian words."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from plantwarden.core.errors import InvalidInput
from plantwarden.sim.plant import RAW_RANGES, Register


def encode(register: Register, value: float) -> tuple[int, ...]:
    """The raw words (0-65535, one per address) that hold `value` in `register`.

    Integers are `round(value * scale)` saturated to their type's range (int16 in two's
    complement, NaN as 0); bools are 0/1; a float32 is two words, the high word first.
    """
    if register.type == "float32":
        high, low = struct.unpack(">HH", struct.pack(">f", value))
        return (high, low)
    if register.type == "bool":
        return (1 if value else 0,)
    low_limit, high_limit = RAW_RANGES[register.type]
    scaled = value * register.scale
    raw = 0 if math.isnan(scaled) else round(min(max(scaled, low_limit), high_limit))
    return (raw & 0xFFFF,)


def decode(register: Register, words: Sequence[int]) -> float:
    """The value that the raw `words` hold in `register`; InvalidInput if they cannot be its words."""
    if len(words) != register.width or any(not 0 <= word <= 0xFFFF for word in words):
        raise InvalidInput(
            f"register {register.name!r} takes {register.width} word(s) of 0-65535, not {list(words)}"
        )
    if register.type == "float32":
        (value,) = struct.unpack(">f", struct.pack(">HH", words[0], words[1]))
        return float(value)
    if register.type == "bool":
        if words[0] not in (0, 1):
            raise InvalidInput(f"register {register.name!r} is a bool: write 0 or 1, not {words[0]}")
        return float(words[0])
    raw = words[0] - 0x10000 if register.type == "int16" and words[0] >= 0x8000 else words[0]
    return raw / register.scale
