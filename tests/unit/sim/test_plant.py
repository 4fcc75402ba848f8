"""The simulated plant's model: the default layout, validation, register maps as plain data."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

import pytest

from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.sim.plant import PROCESS_KINDS, Plant, default_plant

PlantData = dict[str, Any]


def test_the_default_plant_has_the_zones_of_the_issue() -> None:
    plant = default_plant()
    levels = {zone.name: (zone.purdue_level, zone.subnet) for zone in plant.zones}
    assert levels["enterprise"] == (4, "127.10.0.0/24")
    assert levels["supervisory"] == (2, "127.10.1.0/24")
    cells = [zone for zone in plant.zones if zone.purdue_level == 1]
    assert {zone.subnet for zone in cells} >= {"127.10.2.0/24", "127.10.3.0/24"}
    supervisory = {host.role for host in plant.hosts if host.zone == "supervisory"}
    assert supervisory >= {"hmi", "engineering", "historian"}


def test_the_default_plant_has_six_plcs_of_every_process_kind_inside_their_cells() -> None:
    plant = default_plant()
    assert len(plant.plcs) >= 6
    assert {plc.process for plc in plant.plcs} == set(PROCESS_KINDS)
    assert [plc.process for plc in plant.plcs].count("tank") == 2
    for plc in plant.plcs:
        assert plant.zone(plc.host.zone).purdue_level == 1


def test_every_host_has_its_own_loopback_address_in_its_zone() -> None:
    plant = default_plant()
    addresses = [host.address for host in plant.hosts]
    assert len(set(addresses)) == len(addresses)
    for host in plant.hosts:
        assert host.ip.is_loopback
        assert host.ip in plant.zone(host.zone).network


def test_a_register_map_is_in_address_order_and_names_its_safe_ranges() -> None:
    plant = default_plant()
    registers = plant.register_map("tank-1")
    assert [register.address for register in registers] == sorted(register.address for register in registers)
    level = plant.plc("tank-1").register("level")
    assert (level.type, level.width, level.unit, level.safe_min, level.safe_max) == ("float32", 2, "%", 5, 95)
    assert plant.plc("tank-1").register_at(101) == level
    with pytest.raises(NotFound):
        plant.register_map("tank-9")


def test_the_plant_round_trips_through_plain_data() -> None:
    plant = default_plant()
    data = json.loads(json.dumps(plant.to_dict()))
    assert data == plant.to_dict()
    assert Plant.from_dict(data) == plant
    tank = next(plc for plc in data["plcs"] if plc["host"] == "tank-1")
    assert tank["registers"][0] == {
        "address": 0,
        "name": "level_high_setpoint",
        "kind": "holding",
        "type": "uint16",
        "unit": "%",
        "safe_min": 50.0,
        "safe_max": 95.0,
        "writable_by": ["operator", "engineer"],
        "scale": 10.0,
    }


def _host(data: PlantData, name: str) -> dict[str, Any]:
    return next(host for host in data["hosts"] if host["name"] == name)


def _register(data: PlantData, plc: str, name: str) -> dict[str, Any]:
    registers = next(entry for entry in data["plcs"] if entry["host"] == plc)["registers"]
    return next(register for register in registers if register["name"] == name)


def _tank(data: PlantData) -> dict[str, Any]:
    return next(entry for entry in data["plcs"] if entry["host"] == "tank-1")


BREAKAGES: dict[str, tuple[Callable[[PlantData], None], str]] = {
    "address outside its zone": (
        lambda d: _host(d, "hmi-1").update(address="127.10.2.50"),
        "not a host of zone",
    ),
    "network address": (lambda d: _host(d, "hmi-1").update(address="127.10.1.0"), "not a host of zone"),
    "shared address": (lambda d: _host(d, "tank-2").update(address="127.10.2.11"), "share address"),
    "duplicate host": (lambda d: _host(d, "erp-server").update(name="office-ws-1"), "used twice"),
    "unknown zone": (lambda d: _host(d, "hmi-1").update(zone="dmz"), "does not exist"),
    "overlapping zones": (lambda d: d["zones"][3].update(subnet="127.10.0.0/16"), "overlaps"),
    "zone off loopback": (lambda d: d["zones"][0].update(subnet="10.0.0.0/24"), "127.0.0.0/8"),
    "purdue level": (lambda d: d["zones"][0].update(purdue_level=7), "Purdue level"),
    "unknown role": (lambda d: _host(d, "hmi-1").update(role="scada"), "role"),
    "float32 overlap": (
        lambda d: _register(d, "tank-1", "inlet_flow").update(address=101),
        "overlaps 'level'",
    ),
    "duplicate register": (
        lambda d: _register(d, "tank-1", "outlet_flow").update(name="inlet_flow"),
        "used twice",
    ),
    "safe range reversed": (
        lambda d: _register(d, "tank-1", "level").update(safe_min=99.0),
        "above safe_max",
    ),
    "safe bound too big": (
        lambda d: _register(d, "tank-1", "inlet_flow").update(safe_max=7000.0),
        "does not fit",
    ),
    "bool holding": (lambda d: _register(d, "tank-1", "level_low_setpoint").update(type="bool"), "bool"),
    "writable input": (
        lambda d: _register(d, "tank-1", "level").update(writable_by=["operator"]),
        "writable",
    ),
    "unknown writer": (
        lambda d: _register(d, "tank-1", "auto_mode").update(writable_by=["admin"]),
        "writer role",
    ),
    "scaled float": (lambda d: _register(d, "tank-1", "level").update(scale=10.0), "no scale"),
    "unknown process": (lambda d: _tank(d).update(process="reactor"), "process"),
    "unit id": (lambda d: _tank(d).update(unit_id=0), "unit id"),
    "plc on an hmi": (lambda d: _tank(d).update(host="hmi-1"), "not 'plc'"),
    "plc without definition": (lambda d: d["plcs"].remove(_tank(d)), "no PLC definition"),
    "site slug": (lambda d: d.update(site="River Side"), "site name"),
    "malformed": (lambda d: d["zones"][0].pop("subnet"), "malformed"),
}


@pytest.mark.parametrize("breakage", BREAKAGES, ids=list(BREAKAGES))
def test_an_invalid_plant_is_refused_with_a_clear_message(breakage: str) -> None:
    data = default_plant().to_dict()
    mutate, message = BREAKAGES[breakage]
    mutate(data)
    with pytest.raises(InvalidInput, match=message):
        Plant.from_dict(data)


def test_zone_subnets_are_parsed_strictly() -> None:
    data = default_plant().to_dict()
    data["zones"][1]["subnet"] = "127.10.1.5/24"
    with pytest.raises(InvalidInput, match="not valid"):
        Plant.from_dict(data)
    assert ipaddress.IPv4Network("127.10.1.0/24") == default_plant().zone("supervisory").network


def test_with_unit_ids_renumbers_the_named_plcs_only() -> None:
    plant = default_plant()
    renumbered = plant.with_unit_ids({"tank-1": 7, "boiler-1": 247})
    assert {plc.name: plc.unit_id for plc in renumbered.plcs} == {
        "tank-1": 7, "tank-2": 1, "pump-skid-1": 1, "conveyor-1": 1, "mixer-1": 1, "boiler-1": 247,
    }  # fmt: skip
    assert renumbered.plc("tank-1").registers == plant.plc("tank-1").registers
    assert plant.plc("tank-1").unit_id == 1  # the original is unchanged
    with pytest.raises(NotFound, match="no PLC 'tank-9'"):
        plant.with_unit_ids({"tank-9": 2})
    with pytest.raises(InvalidInput, match="unit id 248 is not 1-247"):
        plant.with_unit_ids({"tank-1": 248})
