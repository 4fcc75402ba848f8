"""plant.yaml's rights and bindings compiled into the policy: decisions, not rule shapes."""

from __future__ import annotations

from datetime import UTC, datetime

from plantwarden.policy.compile import PolicySnapshot, Request, compile_policy
from plantwarden.policy.model import Grant, Subject
from plantwarden.policy.roles import builtin_model
from plantwarden.zones.plant.load import load_plant_bytes
from plantwarden.zones.plant.rights import plant_policy, with_plant

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PLANT = """\
version: 1
sites:
  - id: plant-a
    zones:
      - {id: cell-1, purdue_level: 1, subnets: [10.1.1.0/24], security_level: 2}
      - {id: cell-2, purdue_level: 1, subnets: [10.1.2.0/24], security_level: 2}
    assets:
      - id: plc-1
        address: 10.1.1.10
        registers:
          - {address: 0, name: setpoint, kind: holding, type: uint16, writers: [operator]}
          - {address: 1, name: limit, kind: holding, type: uint16, writers: [engineer]}
          - {address: 10, name: level, kind: input, type: float32}
      - {id: plc-2, address: 10.1.1.11}
    rights:
      - {role: operator, zones: [cell-1, cell-2], operations: ["modbus.read", "modbus.write"]}
      - {role: contractor, zones: [cell-1], operations: ["*.read"], assets: [plc-2]}
    bindings:
      - {address: 10.1.1.200, role: operator, zone: cell-1}
"""
ALICE = Subject("user", "alice")


def snapshot(*grants: Grant) -> PolicySnapshot:
    plant = plant_policy(load_plant_bytes(PLANT.encode()))
    return compile_policy(with_plant(builtin_model(grants), plant))


def allowed(
    snap: PolicySnapshot, subject: Subject, action: str, zone: str, asset: str | None, address: int | None
) -> bool:
    request = Request(subject, action, "plant-a", zone, asset=asset, address=address, now=NOW)
    return bool(snap.decide(request).allowed)


def test_writes_reach_only_the_registers_that_list_the_role() -> None:
    snap = snapshot(Grant(ALICE, "operator", "plant-a"))
    assert allowed(snap, ALICE, "plant:modbus.write", "cell-1", "plc-1", 0)
    assert not allowed(snap, ALICE, "plant:modbus.write", "cell-1", "plc-1", 1)  # the engineer's register
    assert not allowed(snap, ALICE, "plant:modbus.write", "cell-1", "plc-1", 10)  # an input register
    assert allowed(snap, ALICE, "plant:modbus.write", "cell-1", "plc-2", 77)  # declared, no register map
    assert not allowed(snap, ALICE, "plant:modbus.write", "cell-1", "stranger", 0)  # undeclared asset
    assert allowed(snap, ALICE, "plant:modbus.write", "cell-2", "anything", 5)  # a zone with no assets
    assert allowed(snap, ALICE, "plant:modbus.read", "cell-1", "stranger", 0)


def test_a_role_named_in_rights_loses_its_built_in_plant_rights_but_keeps_its_platform_ones() -> None:
    snap = snapshot(Grant(ALICE, "operator", "plant-a"))
    assert not allowed(snap, ALICE, "plant:s7comm.write", "cell-1", "plc-1", 0)  # built in: plant:*.write
    assert allowed(snap, ALICE, "platform:alerts.acknowledge", "cell-1", None, None)
    engineer = Subject("user", "erin")
    snap = snapshot(Grant(engineer, "engineer", "plant-a"))
    assert allowed(snap, engineer, "plant:s7comm.program", "cell-1", "plc-1", 0) is False  # needs approval
    request = Request(engineer, "plant:s7comm.write", "plant-a", "cell-1", asset="x", address=0, now=NOW)
    assert snap.decide(request).allowed  # not named in rights: the built-in rights stay


def test_a_new_role_and_a_bound_legacy_client() -> None:
    bob = Subject("user", "bob")
    snap = snapshot(Grant(bob, "contractor", "plant-a"))
    assert allowed(snap, bob, "plant:bacnet.read", "cell-1", "plc-2", 0)
    assert not allowed(snap, bob, "plant:bacnet.read", "cell-1", "plc-1", 0)
    assert not allowed(snap, bob, "plant:modbus.write", "cell-1", "plc-2", 0)
    hmi = Subject("address", "10.1.1.200")
    assert allowed(snap, hmi, "plant:modbus.write", "cell-1", "plc-1", 0)
    assert not allowed(snap, hmi, "plant:modbus.write", "cell-2", "x", 0)  # bound in cell-1 only


def test_the_policy_version_follows_the_plant() -> None:
    first = snapshot().version
    other = PLANT.replace('operations: ["*.read"]', 'operations: ["*.read", "*.identify"]')
    plant = plant_policy(load_plant_bytes(other.encode()))
    assert compile_policy(with_plant(builtin_model([]), plant)).version != first
    assert (
        compile_policy(with_plant(builtin_model([]), None)).version
        == compile_policy(builtin_model([])).version
    )


def test_rights_at_one_site_leave_the_built_in_rights_at_the_others() -> None:
    olga = Subject("user", "olga")
    plant = plant_policy(load_plant_bytes(PLANT.encode()))
    snap = compile_policy(with_plant(builtin_model([Grant(olga, "operator", "plant-b")]), plant))
    for action in ("plant:modbus.read", "plant:modbus.write", "plant:s7comm.write"):
        request = Request(olga, action, "plant-b", "any-zone", asset="x", address=0, now=NOW)
        assert snap.decide(request).allowed, action  # plant-b's rights do not name the operator
    request = Request(olga, "plant:modbus.write", "plant-a", "cell-1", asset="plc-1", address=0, now=NOW)
    assert not snap.decide(request).allowed  # no grant at plant-a
