"""The safety envelope: values by type, word order and scale; safe ranges; rates of change."""

from __future__ import annotations

import struct

import pytest

from plantwarden.gateway.envelope import Envelope, engineering_value
from plantwarden.zones.plant.model import Register
from tests.unit.gateway.support import PLANT, float_words_little, plant

FLOAT_2_5 = struct.pack(">f", 2.5)


def envelope(rates: dict[str, float] | None = None) -> Envelope:
    [site] = plant().sites
    return Envelope(site.assets, {"plc-1": rates or {}})


@pytest.mark.parametrize(
    ("register", "words", "value"),
    [
        (Register(0, "a", "holding", "uint16", scale=10), [655], 65.5),
        (Register(0, "a", "holding", "int16"), [0xFFFF], -1),
        (Register(0, "a", "holding", "int32", word_order="big"), [0xFFFF, 0xFFFE], -2),
        (Register(0, "a", "holding", "uint32", word_order="little"), [0x0002, 0x0001], 65538),
        (
            Register(0, "a", "holding", "float32", word_order="big"),
            list(struct.unpack(">HH", FLOAT_2_5)),
            2.5,
        ),
        (Register(0, "a", "holding", "float32", word_order="little"), float_words_little(-7.25), -7.25),
        (Register(0, "a", "coil", "bool"), [1], 1),
        # scale applies to float32 as the sensor decodes it: raw 12.0 at scale 0.1 is 120 units
        (
            Register(0, "a", "holding", "float32", scale=0.1),
            list(struct.unpack(">HH", struct.pack(">f", 12.0))),
            120,
        ),
        # a holding register of type bool written 0xFFFF is not "1": it is outside a [0, 1] range
        (Register(0, "a", "holding", "bool"), [0xFFFF], 65535),
    ],
)
def test_engineering_value_reads_type_word_order_and_scale(
    register: Register, words: list[int], value: float
) -> None:
    assert engineering_value(register, words) == value


def test_safe_ranges_in_engineering_units() -> None:
    check = envelope().check
    assert check("plc-1", 6, 0, [800], 0.0) is None  # 80.0 %
    breach = check("plc-1", 6, 0, [960], 0.0)  # 96.0 %
    assert breach is not None and breach.register == "level_setpoint"
    assert "96 %" in breach.reason and "[50, 95]" in breach.reason
    assert check("plc-1", 6, 4, [0xFF9C], 0.0) is None  # int16 -100
    assert check("plc-1", 6, 4, [0xFF9B], 0.0) is not None  # -101
    assert check("plc-1", 6, 5, [65535], 0.0) is None  # no safe range: not narrowed here
    assert check("plc-1", 16, 2, float_words_little(12.5), 0.0) is None
    assert check("plc-1", 16, 2, float_words_little(12.6), 0.0) is not None
    assert check("plc-1", 16, 2, float_words_little(float("nan")), 0.0) is not None
    assert check("plc-1", 16, 0, [800, *float_words_little(13.0)], 0.0) is not None  # the second value
    assert check("plc-1", 3, 0, [999], 0.0) is None  # a read is not a write
    assert check("plc-9", 6, 0, [999], 0.0) is None  # an asset without a map


def test_half_of_a_32_bit_value_or_a_partial_mask_cannot_be_proven_safe() -> None:
    check = envelope().check
    low_only = check("plc-1", 6, 2, [0], 0.0)
    assert low_only is not None and "only part of flow_limit" in low_only.reason
    assert check("plc-1", 16, 3, [0, 0], 0.0) is not None  # the high word and the next register
    assert check("plc-1", 22, 0, [0x0000, 800], 0.0) is None  # AND 0: the result is the OR mask
    assert check("plc-1", 22, 0, [0x0000, 990], 0.0) is not None
    assert check("plc-1", 22, 0, [0x00FF, 0], 0.0) is not None  # keeps bits of the current value


def test_rate_of_change_is_measured_from_the_last_value_let_through() -> None:
    limits = envelope({"level_setpoint": 2.0})  # 2 % per second
    assert limits.check("plc-1", 6, 0, [900], 10.0) is None  # no last value: the safe range only
    limits.remember("plc-1", 6, 0, [600], 10.0)  # 60 %
    too_fast = limits.check("plc-1", 6, 0, [700], 11.0)  # +10 % in 1 s
    assert too_fast is not None and "at most 2 per second" in too_fast.reason
    assert limits.check("plc-1", 6, 0, [620], 11.0) is None  # +2 % in 1 s
    assert limits.check("plc-1", 6, 0, [700], 15.0) is None  # +10 % in 5 s
    fresh = envelope({"level_setpoint": 2.0})
    fresh.carry_from(limits)
    assert fresh.check("plc-1", 6, 0, [700], 11.0) is not None  # a new policy keeps the memory


def test_the_register_maps_max_change_limits_the_rate_and_the_command_line_overrides_it() -> None:
    text = PLANT.replace(
        "safe_range: [50, 95], writers: [engineer]}",
        "safe_range: [50, 95], writers: [engineer],\n             max_change: 2}",
    )
    [site] = plant(text).sites
    assert next(r for r in site.assets[0].registers if r.name == "level_setpoint").max_change == 2.0
    from_map = Envelope(site.assets, {})
    from_map.remember("plc-1", 6, 0, [600], 10.0)
    too_fast = from_map.check("plc-1", 6, 0, [700], 11.0)  # +10 % in 1 s
    assert too_fast is not None and "at most 2 per second" in too_fast.reason
    assert from_map.check("plc-1", 6, 0, [620], 11.0) is None
    overridden = Envelope(site.assets, {"plc-1": {"level_setpoint": 20.0}})
    overridden.remember("plc-1", 6, 0, [600], 10.0)
    assert overridden.check("plc-1", 6, 0, [700], 11.0) is None
