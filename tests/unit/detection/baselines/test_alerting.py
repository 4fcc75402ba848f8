"""Baseline alerts name what an engineer reads: asset ids, protocol and function names, registers
with engineering values and units, polling periods in seconds; `assets` holds only assets."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from plantwarden.core.records.batch import RecordBatch
from plantwarden.detection.baselines.alerting import dedup_key, draft
from plantwarden.detection.baselines.checker import Deviation
from plantwarden.detection.baselines.facts import FactKind
from plantwarden.detection.baselines.learner import Baseline
from plantwarden.detection.baselines.scoping import Scoper
from plantwarden.zones.plant.model import Register, SiteModel
from tests.unit.detection.baselines.batches import SECOND, polls, records, write
from tests.unit.detection.plant_models import SITE, WEDNESDAY_NOON, flows, plant_site

REGISTERS = (
    Register(100, "pressure_setpoint", "holding", "uint16", unit="bar", scale=100, safe_range=(2.0, 10.0)),
    Register(101, "mode", "holding", "uint16"),
    Register(102, "offset", "holding", "int16", unit="degC", scale=10),
    Register(300, "level_sp", "holding", "uint16", unit="%"),
)
SHARED_NUMBER = (  # address 5 in three address spaces; no discrete input 5
    Register(5, "speed_setpoint", "holding", "uint16", unit="rpm"),
    Register(5, "tank_level", "input", "uint16", unit="%"),
    Register(5, "pump_run", "coil", "bool"),
)


def boiler_site(registers: tuple[Register, ...] = REGISTERS) -> SiteModel:
    """The test plant, its PLC 10.2.0.10 with a register map."""
    site = plant_site()
    plc = replace(site.assets[1], registers=registers)
    return replace(site, assets=(site.assets[0], plc, *site.assets[2:]))


def deviations(scoper: Scoper, learn: RecordBatch, check: RecordBatch) -> dict[FactKind, Deviation]:
    baseline = Baseline()
    assert baseline.observe(scoper.observe(learn), scoper) == []
    baseline.protect(SITE)
    return {d.key.kind: d for d in baseline.observe(scoper.observe(check), scoper)}


def test_a_setpoint_outside_the_safe_range_is_named_with_its_register_and_engineering_values() -> None:
    scoper = Scoper([boiler_site()])
    found = deviations(scoper, records([write(value=500), write(value=700)]), records([write(value=1400)]))
    alert = draft(found[FactKind.SETPOINT], scoper.names)
    assert alert.title == "Setpoint outside range: plc-1 pressure_setpoint written 14 bar, safe 2 to 10 bar"
    assert alert.description.startswith(
        "plc-1 pressure_setpoint written 14 bar, outside its safe range 2 to 10 bar in the register map "
        "(raw 1400, scale 100): 1 of 1 writes outside; learned 5 to 7 bar (raw 500 to 700); "
        "pressure_setpoint is holding register 100 of plc-1 (10.2.0.10) unit 1."
    )
    assert alert.assets == ["plc-1"]
    assert alert.rule_id == "pw-baseline-setpoint-outside" and alert.techniques == ("T0836", "T0831")
    evidence = alert.evidence[0]
    assert evidence["fields"] == {"server": "10.2.0.10", "unit": 1, "address": 100, "table": "holding"}
    assert evidence["names"] == {"server": "plc-1 (10.2.0.10)", "register": "pressure_setpoint"}
    assert evidence["learned"]["safe"] == [2.0, 10.0] and evidence["observed"]["max"] == 1400.0
    assert evidence["units"] == {  # the safe range and the written words are in different units
        "safe": "engineering units (the register map's safe_range)",
        "min": "raw written word",
        "max": "raw written word",
    }
    assert "safe range [2, 10] (engineering units)" in found[FactKind.SETPOINT].reason
    assert (
        alert.dedup_key
        == dedup_key(found[FactKind.SETPOINT])
        == "baseline:plant-a:setpoint:10.2.0.10|1|100|holding"
    )


def test_a_signed_setpoint_outside_its_learned_values_in_engineering_units() -> None:
    scoper = Scoper([boiler_site()])
    learn = records([write(address=102, value=20), write(address=102, value=50)])
    found = deviations(scoper, learn, records([write(address=102, value=0xFFF6)]))  # -10 as int16
    alert = draft(found[FactKind.SETPOINT], scoper.names)
    assert alert.title == "Setpoint outside range: plc-1 offset written -1 degC (raw 65526, scale 10)"
    assert (
        "outside the values written while learning; learned 2 to 5 degC (raw 20 to 50)" in alert.description
    )


def test_without_a_plant_model_a_setpoint_is_named_by_numbers_and_its_asset_is_its_server() -> None:
    scoper = Scoper()
    found = deviations(scoper, records([write(value=40), write(value=60)]), records([write(value=75)]))
    alert = draft(found[FactKind.SETPOINT], scoper.names)
    assert alert.title == "Setpoint outside range: 10.2.0.10 unit 1 holding register 100 written raw 75"
    assert "outside the values written while learning; learned raw 40 to 60" in alert.description
    assert alert.assets == ["10.2.0.10"]  # not the unit nor the register number


def test_a_new_function_names_the_assets_protocol_function_and_port() -> None:
    scoper = Scoper([boiler_site()])
    found = deviations(
        scoper, records([{"src": "10.1.0.50"}]), records([{"src": "10.1.0.50", "function": 43}])
    )
    alert = draft(found[FactKind.SERVICE], scoper.names)
    assert alert.title == (
        "New function: eng-ws (10.1.0.50) -> plc-1 (10.2.0.10) Modbus function 43 "
        "(encapsulated interface, read device identification)"
    )
    assert "a read on plc-1 (10.2.0.10) (TCP/502), never seen on this connection" in alert.description
    assert alert.assets == ["eng-ws", "plc-1"]
    assert alert.evidence[0]["names"]["protocol"] == "Modbus"


def test_a_new_edge_of_an_unrecognised_protocol_names_its_transport_and_port() -> None:
    scoper = Scoper([boiler_site()])
    found = deviations(scoper, flows([{"port": 445}]), flows([{"port": 139}]))
    alert = draft(found[FactKind.EDGE], scoper.names)
    assert alert.title == "New edge: 10.1.0.5 -> plc-1 (10.2.0.10) TCP/139"
    assert alert.assets == ["10.1.0.5", "plc-1"]


def test_new_registers_written_are_named_with_the_registers_they_cover() -> None:
    scoper = Scoper([boiler_site()])
    learn = records([write(address=100, quantity=2, value=500)])
    found = deviations(scoper, learn, records([write(address=300, value=5)]))
    alert = draft(found[FactKind.WRITTEN_RANGE], scoper.names)
    assert alert.title == "New registers written: plc-1 (10.2.0.10) unit 1 holding registers 300 (level_sp)"
    assert "outside those written while learning: 100-101 (pressure_setpoint, mode)" in (alert.description)
    assert alert.evidence[0]["names"]["registers"] == ["level_sp"]


def test_a_polling_change_shows_the_learned_and_seen_period_in_seconds() -> None:
    scoper = Scoper([boiler_site()])
    later = polls(10, 2.0, start=WEDNESDAY_NOON + 600 * SECOND, address=100)
    found = deviations(scoper, polls(20, 10.0, address=100), later)
    alert = draft(found[FactKind.POLLING], scoper.names)
    assert alert.title == (
        "Polling changed: 10.1.0.5 -> plc-1 (10.2.0.10) holding register 100 (pressure_setpoint) every 2 s, "
        "learned 10 s"
    )
    assert "with Modbus function 3 (read holding registers) every 2 s" in alert.description
    assert "learned every 10 s (over 19 intervals)" in alert.description


@pytest.mark.parametrize(
    ("protocol", "function", "polled", "name"),
    [
        ("modbus", 4, "input register 5 (tank_level)", "tank_level"),
        ("modbus", 1, "coil 5 (pump_run)", "pump_run"),
        ("modbus", 2, "discrete input 5", None),
        ("modbus", 3, "holding register 5 (speed_setpoint)", "speed_setpoint"),
        ("modbus", 23, "holding register 5 (speed_setpoint)", "speed_setpoint"),  # its read part
        ("modbus", 24, "register 5", None),  # read FIFO queue: no register map
        ("s7comm", 4, "address 5", None),
    ],
)
def test_a_polled_address_is_named_from_the_register_map_of_the_space_its_function_reads(
    protocol: str, function: int, polled: str, name: str | None
) -> None:
    scoper = Scoper([boiler_site(SHARED_NUMBER)])
    read: dict[str, Any] = {"protocol": protocol, "function": function, "address": 5}
    later = polls(10, 2.0, start=WEDNESDAY_NOON + 600 * SECOND, **read)
    found = deviations(scoper, polls(20, 10.0, **read), later)
    alert = draft(found[FactKind.POLLING], scoper.names)
    assert alert.title == f"Polling changed: 10.1.0.5 -> plc-1 (10.2.0.10) {polled} every 2 s, learned 10 s"
    assert f"10.1.0.5 reads plc-1 (10.2.0.10) unit 1 {polled} with " in alert.description
    others = {r.name for r in SHARED_NUMBER} - {name}
    assert not [other for other in others if other in alert.title + alert.description]
    assert alert.evidence[0]["names"].get("register") == name


def test_a_new_asset_is_named_by_its_address() -> None:
    scoper = Scoper([boiler_site()])
    found = deviations(scoper, records([{}]), records([{"src": "10.1.0.66"}]))
    alert = draft(found[FactKind.ASSET], scoper.names)
    assert alert.title == "New asset: 10.1.0.66" and alert.assets == ["10.1.0.66"]
    assert "10.1.0.66 was never seen at site plant-a while the baseline learned" in alert.description
