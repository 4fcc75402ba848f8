"""Compiled rules: each modifier and field type as a mask, conditions as mask algebra."""

from __future__ import annotations

import numpy as np
import pytest

from plantwarden.core.records.schema import FLOWS
from plantwarden.detection.rules.compile import BatchView, CompiledRule, Providers
from plantwarden.detection.rules.fields import ROLE_CODES
from plantwarden.detection.rules.providers import RoleMap
from tests.unit.detection.rules.rule_support import batch, rule

RECORDS = [
    {
        "protocol": "modbus",
        "operation": "write",
        "function": 6,
        "src_addr": "10.0.9.4",
        "dst_addr": "10.0.1.10",
        "value": 12.5,
        "unit": 1,
    },
    {
        "protocol": "modbus",
        "operation": "read",
        "function": 3,
        "src_addr": "10.0.2.4",
        "dst_addr": "10.0.1.11",
        "unit": 2,
    },
    {
        "protocol": "s7comm",
        "operation": "control",
        "function": 0x29,
        "src_addr": "192.168.1.7",
        "dst_addr": "10.0.1.12",
    },
    {
        "protocol": "dnp3",
        "operation": "malformed",
        "function": 0x0D,
        "src_addr": "fd00::5",
        "dst_addr": "fd00:0:0:1::9",
        "value": -3.0,
    },
    {
        "protocol": "modbus",
        "operation": "write",
        "function": 16,
        "src_addr": "10.0.255.255",
        "dst_addr": "10.1.0.0",
        "value": 300.0,
        "site": "b",
    },
]


def selected(selection: str, condition: str = "s", providers: Providers | None = None) -> list[int]:
    found = rule(f"detection:\n  s: {selection}\n  t: {{protocol: modbus}}\n  condition: {condition}\n")
    view = BatchView(batch(RECORDS), providers or Providers())
    return np.flatnonzero(CompiledRule(found).mask(view)).tolist()


@pytest.mark.parametrize(
    ("selection", "rows"),
    [
        ("{protocol: modbus}", [0, 1, 4]),
        ("{protocol: [s7comm, dnp3]}", [2, 3]),
        ("{protocol|in: [s7comm, 3]}", [2, 3]),
        ("{protocol|not: modbus}", [2, 3]),
        ("{operation: write, function: 0x10}", [4]),
        ("{function|gte: 6}", [0, 2, 3, 4]),
        ("{function|gt: 6}", [2, 3, 4]),
        ("{function|lte: 6}", [0, 1]),
        ("{function|lt: 6}", [1]),
        ("{function|range: [6, 0x10]}", [0, 3, 4]),
        ("{value|gt: 0}", [0, 4]),  # NaN (no value written) passes no comparison
        ("{value|not: 12.5}", [1, 2, 3, 4]),  # ... but is not 12.5
        ("{value|range: [-3, 12.5]}", [0, 3]),
        ("{unit: -1}", [2, 3, 4]),
        ("{src_addr: 10.0.9.4}", [0]),
        ("{src_addr|cidr: 10.0.0.0/16}", [0, 1, 4]),
        ("{dst_addr|cidr: [10.0.1.8/30, 10.1.0.0/31]}", [0, 1, 4]),
        ("{src_addr|not: 10.0.0.0/8}", [2, 3]),
        ("{src_addr|cidr: fd00::/16}", [3]),
        ("{dst_addr: fd00:0:0:1::9}", [3]),
        ("{src_addr|cidr: '::ffff:0:0/96'}", [0, 1, 2, 4]),  # IPv4-mapped is IPv4 written in IPv6
        ("{site: b}", [4]),
        ("{site|not: [b]}", [0, 1, 2, 3]),
        ("{malformed: true}", [3]),
        ("{malformed: false, protocol: dnp3}", []),
        ("{maintenance: false}", [0, 1, 2, 3, 4]),
        ("{src_role: unknown}", [0, 1, 2, 3, 4]),
    ],
)
def test_each_modifier_selects_the_records_it_names(selection: str, rows: list[int]) -> None:
    assert selected(selection) == rows


@pytest.mark.parametrize(
    ("condition", "rows"),
    [
        ("s", [0, 4]),
        ("not s", [1, 2, 3]),
        ("t and not s", [1]),
        ("s or not t", [0, 2, 3, 4]),
        ("not (s or t)", [2, 3]),
        ("(s and t) or (not s and not t)", [0, 2, 3, 4]),
    ],
)
def test_conditions_combine_selections(condition: str, rows: list[int]) -> None:
    assert selected("{operation: write}", condition) == rows


def test_roles_and_maintenance_come_from_the_providers() -> None:
    roles = RoleMap(
        {("", "10.0.2.4"): "engineering_workstation", ("", "fd00::5"): "plc", ("b", "10.0.9.4"): "hmi"}
    )
    maintenance = Providers(roles=roles, maintenance=lambda b: np.asarray(b["function"] == 3))
    assert selected("{src_role: engineering_workstation}", providers=maintenance) == [1]
    assert selected("{src_role|in: [plc, hmi]}", providers=maintenance) == [3]  # 10.0.9.4 is an hmi at b only
    assert selected("{maintenance: true}", providers=maintenance) == [1]
    codes = roles(np.array(["", "b", "b"], dtype=object), batch(RECORDS[:3])["src_addr"])
    assert codes.tolist() == [ROLE_CODES["unknown"], ROLE_CODES["unknown"], ROLE_CODES["unknown"]]
    codes = roles(np.array(["b", "", "b"], dtype=object), batch(RECORDS[:3])["src_addr"])
    assert codes.tolist() == [ROLE_CODES["hmi"], ROLE_CODES["engineering_workstation"], ROLE_CODES["unknown"]]


def test_a_role_map_with_addresses_sharing_their_low_words_still_answers_exactly() -> None:
    roles = RoleMap(
        {("", "fd00::1:0:0:5"): "plc", ("", "fd01::1:0:0:5"): "hmi", ("", "10.0.0.1"): "historian"}
    )
    addresses = batch([{"src_addr": a} for a in ("fd00::1:0:0:5", "fd01::1:0:0:5", "10.0.0.1", "10.0.0.2")])
    found = roles(np.full(4, "", dtype=object), addresses["src_addr"])
    assert found.tolist() == [ROLE_CODES[r] for r in ("plc", "hmi", "historian", "unknown")]


def test_the_same_test_in_two_rules_is_computed_once_per_batch() -> None:
    first = rule("detection:\n  s: {protocol: modbus, function: 6}\n  condition: s\n")
    other = rule("detection:\n  s: {protocol: modbus}\n  condition: s\n")
    view = BatchView(batch(RECORDS), Providers())
    CompiledRule(first).mask(view)
    shared = view.mask(other.selections["s"][0])
    assert view.mask(first.selections["s"][0]) is shared and len(view._masks) == 2


def test_flow_rules_read_flow_columns() -> None:
    flows = rule(
        "kind: flows\ndetection:\n  s: {bytes|gt: 1000000, dst_port: [502, 102]}\n  condition: s\n",
        examples="examples:\n  positive: [{bytes: 2000000, dst_port: 502}]\n  negative: [{bytes: 5}]\n",
    )
    records = batch([{"bytes": 2_000_000, "dst_port": 502}, {"bytes": 2_000_000, "dst_port": 80}], FLOWS)
    assert CompiledRule(flows).mask(BatchView(records, Providers())).tolist() == [True, False]
