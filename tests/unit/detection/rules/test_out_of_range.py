"""The derived field `out_of_range`: a write outside its register's safe range in the plant model,
by hand for each register type and against the per-record reference (bench/rules_reference)."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import numpy as np
import pytest
from bench.rules_reference import out_of_range
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.detection.rules.compile import Providers
from plantwarden.detection.rules.engine import RuleEngine
from plantwarden.detection.rules.loader import PACK, RuleSet
from plantwarden.detection.rules.setpoints import PlantSafeRanges
from plantwarden.zones.plant.model import Asset, Register, SecurityLevel, SiteModel, Zone
from tests.unit.detection.rules.rule_support import batch

BOILER = "10.0.3.13"
REGISTERS = (
    Register(0, "pressure_setpoint", "holding", "uint16", scale=100, safe_range=(2, 10)),
    Register(1, "offset", "holding", "int16", safe_range=(-20, 50)),
    Register(2, "flow_setpoint", "holding", "float32", safe_range=(0, 10.5)),
    Register(4, "flow_little", "holding", "float32", word_order="little", safe_range=(0, 10.5)),
    Register(6, "counter_limit", "holding", "uint32", safe_range=(0, 100_000)),
    Register(8, "trim", "holding", "int32", safe_range=(0, 10)),
    Register(10, "unbounded", "holding", "uint16"),
    Register(11, "level", "input", "uint16", safe_range=(0, 10)),
    Register(0, "pump_on", "coil", "bool"),
)


def site(registers: tuple[Register, ...] = REGISTERS, host: str = BOILER, site_id: str = "s1") -> SiteModel:
    zone = Zone(
        "cell", "Cell", 1, (ipaddress.ip_network("10.0.0.0/8"),), ("boiler",), SecurityLevel.uniform(2)
    )
    asset = Asset("boiler", "boiler", (ipaddress.ip_address(host),), "cell", registers=registers)
    return SiteModel(site_id, site_id, "UTC", (zone,), (), (asset,))


def word(value: float) -> int:
    """The high word of a big-endian float32."""
    return int(struct.unpack(">HH", struct.pack(">f", value))[0])


def write(value: float, address: int = 0, function: int = 6, **changes: Any) -> dict[str, Any]:
    record = {
        "site": "s1",
        "protocol": "modbus",
        "operation": "write",
        "function": function,
        "unit": 1,
        "address": address,
        "value": value,
        "src_addr": "10.0.1.20",
        "dst_addr": BOILER,
    }
    if value != value:  # NaN: left out, the kind's default
        del record["value"]
    return record | changes


CASES = [
    ("14 bar", write(1400), True),
    ("10 bar: the bound is inside", write(1000), False),
    ("2 bar", write(200), False),
    ("1.99 bar", write(199), True),
    ("14 bar as the first value of a write multiple", write(1400, function=16, quantity=1), True),
    ("a coil write is a bool", write(1, function=5), False),
    ("a read", write(1400, function=3, operation="read"), False),
    ("another site", write(1400, site="s2"), False),
    ("another host", write(1400, dst_addr="10.0.3.14"), False),
    ("a register not declared", write(1400, address=12), False),
    ("int16 -20", write(0xFFEC, address=1), False),
    ("int16 -21", write(0xFFEB, address=1), True),
    ("float32 14.0", write(word(14.0), address=2, function=16), True),
    ("float32 10.0 to 10.0000095: inside", write(word(10.0), address=2, function=16), False),
    ("float32 10.5 to 10.5000095: undecided", write(word(10.5), address=2, function=16), False),
    ("float32 -0.5", write(word(-0.5), address=2, function=16), True),
    ("float32 NaN", write(0x7FC0, address=2, function=16), True),
    ("float32 starting at its low word", write(word(14.0), address=3, function=6), False),
    ("float32 in little word order: the low word says nothing", write(0x4160, address=4), False),
    ("uint32 65536 to 131071: undecided", write(1, address=6, function=16), False),
    ("uint32 131072 and more", write(2, address=6, function=16), True),
    ("int32 -65536 to -1", write(0xFFFF, address=8, function=16), True),
    ("int32 0 to 65535: undecided", write(0, address=8, function=16), False),
    ("no safe range", write(9999, address=10), False),
    ("an input register", write(9999, address=11), False),
    ("no value", write(float("nan")), False),
]


@pytest.mark.parametrize(("record", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_write_is_out_of_range_when_its_value_lies_outside_the_safe_range(
    record: dict[str, Any], expected: bool
) -> None:
    found = PlantSafeRanges([site()])(batch([record]))
    assert found.tolist() == [expected]
    assert out_of_range(next(batch([record]).rows()), [site()]) is expected


def test_a_batch_is_judged_row_by_row_and_without_a_model_nothing_is_out_of_range() -> None:
    records = [write(1400), write(800), write(1400, dst_addr="10.0.0.0"), write(word(14.0), address=2)]
    assert PlantSafeRanges([site()])(batch(records)).tolist() == [True, False, False, True]
    assert PlantSafeRanges([])(batch(records)).tolist() == [False] * 4
    assert PlantSafeRanges([site(host="10.0.0.0")])(batch(records)).tolist() == [False, False, True, False]


def test_the_pack_rule_fires_on_the_write_outside_the_range_with_the_plant_model() -> None:
    rule = next(r for r in RuleSet.load(PACK).rules if r.id == "pw-setpoint-out-of-range")
    assert rule.techniques == ("T0836",)
    engine = RuleEngine([rule], Providers(out_of_range=PlantSafeRanges([site()])))
    found = engine.check(batch([write(800), write(1400, ts=5), write(900)]))
    assert [(d.count, dict(d.group)["address"]) for d in found] == [(1, 0)]
    assert not RuleEngine([rule]).check(batch([write(1400)]))


TYPES = st.sampled_from(["uint16", "int16", "uint32", "int32", "float32", "bool"])
REGISTER = st.builds(
    lambda address, kind, kind_type, order, scale, low, span: Register(
        address, f"r{address}", kind, kind_type, word_order=order, scale=scale, safe_range=(low, low + span)
    ),
    st.integers(0, 8),
    st.sampled_from(["holding", "holding", "input", "coil"]),
    TYPES,
    st.sampled_from(["big", "little"]),
    st.sampled_from([1.0, 10.0, 100.0, 0.5, -2.0, 0.0]),
    st.integers(-300, 300).map(float),
    st.integers(0, 2000).map(float),
)
WRITES = st.builds(
    lambda value, address, function, host: write(value, address=address, function=function, dst_addr=host),
    st.one_of(st.integers(0, 0xFFFF).map(float), st.sampled_from([float("nan"), -1.0, 70000.0, 2.5])),
    st.integers(-1, 9),
    st.sampled_from([3, 5, 6, 16]),
    st.sampled_from([BOILER, "10.0.3.14"]),
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(REGISTER, max_size=6, unique_by=lambda r: r.address), st.lists(WRITES, min_size=1, max_size=40)
)
def test_the_vectorised_field_is_the_per_record_reference(
    registers: list[Register], records: list[dict[str, Any]]
) -> None:
    model = [site(tuple(registers))]
    found = PlantSafeRanges(model)(batch(records))
    assert found.dtype == np.bool_
    assert found.tolist() == [out_of_range(row, model) for row in batch(records).rows()]
