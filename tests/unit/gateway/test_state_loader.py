"""The gateway's state loader compiles a snapshot only when what it compiles from changed."""

from __future__ import annotations

import pytest

from plantwarden.accounts import services as accounts
from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.gateway.state import build_state, store_loader, unknown_limits
from plantwarden.policy.roles import builtin_model
from tests.unit.gateway.support import PLANT, SITE, plant, state

CTX = Context(source="test", actor="test")


def test_an_unchanged_store_gives_back_the_same_state_and_a_new_grant_a_new_one(store: Store) -> None:
    migrate.ensure_ready(store)
    load = store_loader(store, plant(), "plant-a", {})
    first = load()
    assert load() is first  # nothing changed: no compile, same snapshot
    with store.transaction() as session:
        accounts.create_user(session, CTX, "vera", password="a long enough passphrase 1")
        accounts.grant_role(session, CTX, "vera", "operator", "plant-a")
    changed = load()
    assert changed is not first
    assert changed.snapshot.version != first.snapshot.version
    assert load() is changed


def test_two_plcs_on_one_unit_id_are_refused_with_a_clear_message() -> None:
    # the gateway routes by unit id: a second PLC on the same id would silently take the first's
    # requests, so the gateway refuses the model. plant.yaml refuses it too for a site with one
    # gateway; with two listed, the model cannot say which PLC is behind which, so only the
    # gateway can tell (without --upstream, or with an --upstream naming both)
    text = PLANT.replace("    zones:", "    gateways: [127.0.0.60, 127.0.0.61]\n    zones:").replace(
        "    rights:",
        "      - {id: plc-2, address: 127.0.0.2, unit_id: 1, gateway_only: true}\n    rights:",
    )
    for upstreams in ({}, {"plc-1": ("127.0.0.1", 502), "plc-2": ("127.0.0.2", 502)}):
        with pytest.raises(InvalidInput, match="plc-1 and plc-2 both answer unit id 1"):
            build_state(builtin_model([]), plant(text), SITE, upstreams)
    alone = build_state(builtin_model([]), plant(text), SITE, {"plc-2": ("127.0.0.2", 502)}).routes
    assert {unit: target.asset for unit, target in alone.items()} == {1: "plc-2"}
    again = text.replace(
        "{id: plc-2, address: 127.0.0.2, unit_id: 1", "{id: plc-2, address: 127.0.0.2, unit_id: 2"
    )
    routes = build_state(builtin_model([]), plant(again), SITE, {}).routes
    assert {unit: target.asset for unit, target in routes.items()} == {1: "plc-1", 2: "plc-2"}


def test_limits_that_name_nothing_the_gateway_guards_are_listed() -> None:
    guarded = state()
    assert (
        unknown_limits(guarded, {"plc-1": {"level_setpoint": 2.0, "speed": 5.0}}, ["operator", "engineer"])
        == []
    )
    problems = unknown_limits(
        guarded, {"plc-1": {"levl_setpont": 2.0}, "plc-9": {"level_setpoint": 1.0}}, ["operater"]
    )
    assert problems == [
        "--max-change names register 'levl_setpont', which the register map of plc-1 does not have"
        " (flow_limit, level, level_setpoint, offset, pump_run, speed)",
        "--max-change names asset 'plc-9', which is not behind the gateway (its PLCs: plc-1)",
        "--rate-limit names role 'operater', which the policy does not have (roles: "
        + ", ".join(sorted(guarded.snapshot.roles))
        + ")",
    ]
