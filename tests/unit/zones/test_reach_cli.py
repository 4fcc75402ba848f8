from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.zones.reach_cli import reach_group

PLANT = """\
version: 1
sites:
  - id: plant
    name: Plant
    timezone: UTC
    windows:
      night: {days: [mon, tue, wed, thu, fri], start: "22:00", end: "04:00"}
    zones:
      - {id: ent, name: Enterprise, purdue_level: 4, subnets: [10.0.1.0/24], security_level: 1}
      - {id: ops, name: Operations, purdue_level: 3, subnets: [10.0.2.0/24], security_level: 2}
      - {id: cell, name: Cell, purdue_level: 1, subnets: [10.0.3.0/24], security_level: 2}
    conduits:
      - id: it-ops
        name: IT to operations
        zones: [ent, ops]
        security_level: 1
        channels:
          - {id: ssh, protocol: ssh, from: ent, to: ops, servers: [jump], schedule: [night]}
      - id: ops-cell
        name: Operations to the cell
        zones: [ops, cell]
        security_level: 2
        channels:
          - id: modbus
            protocol: modbus
            from: ops
            to: cell
            clients: [jump]
            servers: [plc]
            operations: [read, write]
    assets:
      - {id: jump, name: Jump host, address: 10.0.2.10}
      - {id: hmi, name: HMI, address: 10.0.2.30}
      - {id: plc, name: PLC, address: 10.0.3.5, criticality: critical}
"""


@pytest.fixture
def plant_file(tmp_path: Path) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(PLANT)
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(reach_group, list(args))


def test_show_lists_zones_crown_jewels_and_paths(plant_file: Path) -> None:
    result = run("show", "--plant", str(plant_file), "--from", "ent")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "site plant, as declared in the plant model: an attacker holding zone ent reaches",
        "zones (2):",
        "  ops: 1 hop",
        "    operations at the last hop: the service only",
        "    entered through: it-ops/ssh",
        "    path: other hosts of ent (10.0.1.0/24) -[it-ops/ssh tcp/22 (only in night)]-> jump",
        "  cell: 2 hops",
        "    operations at the last hop: read, write",
        "    entered through: ops-cell/modbus",
        "    path: other hosts of ent (10.0.1.0/24) -[it-ops/ssh tcp/22 (only in night)]-> jump"
        " -[ops-cell/modbus tcp/502: read, write]-> plc",
        "crown jewels (1):",
        "  plc: 2 hops",
        "    operations at the last hop: read, write",
        "    entered through: ops-cell/modbus",
        "    path: other hosts of ent (10.0.1.0/24) -[it-ops/ssh tcp/22 (only in night)]-> jump"
        " -[ops-cell/modbus tcp/502: read, write]-> plc",
        "hosts outside the model: none",
    ]


def test_paths_from_every_zone_to_the_crown_jewels(plant_file: Path) -> None:
    result = run("paths", "--plant", str(plant_file))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "site plant, as declared in the plant model: paths to the crown jewels"
    assert [line for line in lines if " from " in line] == ["plc from ent: 2 hops", "plc from ops: 1 hop"]


def test_paths_to_one_asset_that_nobody_reaches(plant_file: Path) -> None:
    result = run("paths", "--plant", str(plant_file), "--to", "hmi")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "site plant, as declared in the plant model: no zone reaches asset hmi from outside its own zone\n"
    )


def test_unknown_names_are_refused_with_what_exists(plant_file: Path) -> None:
    result = run("show", "--plant", str(plant_file), "--from", "dmz")
    assert isinstance(result.exception, NotFound)
    assert "has no zone 'dmz' (its zones: ent, ops, cell)" in str(result.exception)
    result = run("show", "--plant", str(plant_file), "--from", "ent", "--site", "other")
    assert isinstance(result.exception, NotFound)
    assert "declares no site 'other' (its sites: plant)" in str(result.exception)


def test_a_plant_of_several_sites_needs_the_site_named(plant_file: Path, tmp_path: Path) -> None:
    second = PLANT.split("sites:\n", 1)[1].replace("id: plant", "id: annex").replace("10.0.", "10.9.")
    path = tmp_path / "two.yaml"
    path.write_text(PLANT + second)
    result = run("show", "--plant", str(path), "--from", "ent")
    assert isinstance(result.exception, InvalidInput)
    assert "declares several sites (plant, annex): choose one with --site" in str(result.exception)
    result = run("show", "--plant", str(path), "--from", "ent", "--site", "annex")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("site annex,")
