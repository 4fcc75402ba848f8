"""The firewall view: a ruleset read back as exactly the new connections it accepts, first match
wins, so that gateway-only guards and islands take away what the channels' accepts grant."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

import pytest
from hypothesis import given, settings

from plantwarden.zones.firewall.drift import running_document
from plantwarden.zones.firewall.permits import firewall_permits, listed_permits
from plantwarden.zones.firewall.render import Variant, compile_ruleset, render_ruleset
from plantwarden.zones.firewall.rules import Rule, Ruleset
from plantwarden.zones.plant.model import SiteModel, Window
from plantwarden.zones.plant.permits import declared_permits
from plantwarden.zones.reach import compare_views, reachable
from tests.functional.netns_plant import cell_plant
from tests.unit.zones.firewall_view_support import (
    CONNECTIONS,
    GATEWAY,
    accepted,
    gateway_plant,
    permitted,
    rulesets,
)

AT = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def rendered(site: SiteModel, variant: str = "normal", zone: str | None = None) -> Ruleset:
    return compile_ruleset(site, variant=cast(Variant, variant), zone=zone, table="plantwarden", at=AT)


def address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_a_gateway_only_port_is_reached_from_the_gateway_alone() -> None:
    site = gateway_plant()
    permits = firewall_permits(rendered(site))
    assert not permitted(permits, (address("10.0.2.7"), address("10.0.3.5"), "tcp", 502))
    assert permitted(permits, (address(GATEWAY), address("10.0.3.5"), "tcp", 502))
    assert not permitted(permits, (address("10.0.9.6"), address("10.0.3.5"), "tcp", 502))
    assert permitted(permits, (address("10.0.9.6"), address("10.0.3.6"), "tcp", 502))
    assert reachable(site, permits, "ops").crown_jewels == ()
    assert reachable(site, permits, "ops").zones == ()
    jewel = reachable(site, permits, "dmz").crown_jewels[0]
    assert (jewel.id, jewel.hops) == ("plc", 1)
    assert jewel.labels == ("gateway-only asset plc", "inside cell", "ops-cell/gateway")
    assert jewel.paths[0][0].source.name == "other hosts of dmz (10.0.9.0/24: 10.0.9.5/32)"


def test_the_model_and_the_firewall_differ_exactly_by_the_gateway_only_guard() -> None:
    site = gateway_plant()
    differences = compare_views(
        site, {"model": declared_permits(site), "firewall": firewall_permits(rendered(site))}
    )
    assert [str(d) for d in differences] == [
        "model lets ops reach the zone cell but firewall does not",
        "model lets ops reach the crown jewel plc but firewall does not",
    ]


def test_an_island_is_neither_reached_nor_reaches() -> None:
    site = cell_plant()
    permits = firewall_permits(rendered(site, "island", "cell"))
    for zone in ("it", "scada"):
        answer = reachable(site, permits, zone)
        assert "cell" not in {t.id for t in answer.zones} and answer.crown_jewels == ()
    assert reachable(site, permits, "cell").zones == ()
    assert {p.label for p in permits} == {"it-scada/opcua", "it-scada/ssh"}


def test_channel_rules_are_split_around_the_guard_not_widened() -> None:
    permits = [p for p in firewall_permits(rendered(cell_plant())) if p.label == "scada-cell/modbus"]
    assert len(permits) == 2
    from_gateway = next(p for p in permits if [str(n) for n in p.sources] == ["10.91.2.5/32"])
    assert [str(n) for n in from_gateway.destinations] == ["10.91.3.0/24"]
    others = next(p for p in permits if p is not from_gateway)
    assert not any(address("10.91.2.5") in n for n in others.sources)
    assert sum(n.num_addresses for n in others.sources) == 255
    assert not any(address("10.91.3.10") in n for n in others.destinations)
    assert sum(n.num_addresses for n in others.destinations) == 255


def test_without_guards_the_firewall_grants_what_the_model_declares() -> None:
    site = replace(cell_plant(), assets=())  # no gateway-only asset
    declared = declared_permits(site)
    assert compare_views(site, {"model": declared, "firewall": firewall_permits(rendered(site))}) == ()


def test_scheduled_channels_keep_their_window_and_timed_rules_name_their_hours() -> None:
    site = cell_plant(windows={"maint": Window("maint", (0, 6), 22 * 60, 2 * 60)}, schedule=("maint",))
    ssh = [p for p in firewall_permits(rendered(site)) if p.label == "it-scada/ssh"]
    assert [p.schedule for p in ssh] == [("maint",)]
    network = (ipaddress.ip_network("10.0.0.0/24"),)
    timed = Rule(
        "night", "accept", "ip", network, False, network, False, "tcp", (22,), day=1, hours=(0, 3599)
    )
    (permit,) = firewall_permits(Ruleset("t", "drop", (timed,)))
    assert permit.schedule == ("Monday 00:00-00:59 UTC",)


def test_rules_that_cannot_stop_a_new_connection_take_nothing_away() -> None:
    network = (ipaddress.ip_network("10.0.0.0/24"),)
    accept = Rule("open", "accept", "ip", network, False, network, False, "tcp", (502,))
    drops = [
        Rule("timed", "drop", "ip", network, False, network, False, day=1),
        Rule("limited", "drop", "ip", network, False, network, False, limit=(10, "second", 20)),
        Rule("unread", "drop", "ip", network, False, network, False, other=('{"iifname": "eth0"}',)),
        Rule("established", "drop", ct_states=("established",)),
        Rule("log only", None, "ip", network, False, network, False, log_prefix="x"),
    ]
    permits = firewall_permits(Ruleset("t", "drop", (*drops, accept)))
    assert [(p.label, p.transport, p.ports) for p in permits] == [("open", "tcp", (502,))]
    assert firewall_permits(Ruleset("t", "drop", (Rule("est", "accept", ct_states=("established",)),))) == ()


def test_an_accepting_policy_grants_all_but_the_drops() -> None:
    telnet = Rule(
        "no telnet", "drop", "ip", None, False, (ipaddress.ip_network("10.0.0.5/32"),), False, "tcp", (23,)
    )
    permits = firewall_permits(Ruleset("t", "accept", (telnet,)))
    assert {p.label for p in permits} == {"chain forward policy accept"}
    assert not permitted(permits, (address("10.0.0.1"), address("10.0.0.5"), "tcp", 23))
    assert permitted(permits, (address("10.0.0.1"), address("10.0.0.5"), "tcp", 22))
    assert permitted(permits, (address("10.0.0.1"), address("10.0.0.5"), "icmp", 0))
    assert permitted(permits, (address("fd00::1"), address("fd00::5"), "tcp", 23))
    assert "any but tcp" in {p.transport for p in permits}


@settings(max_examples=50, deadline=None)
@given(rulesets())
def test_the_permits_grant_exactly_what_the_first_matching_rule_accepts(ruleset: Ruleset) -> None:
    permits = firewall_permits(ruleset)
    for connection in CONNECTIONS:
        assert permitted(permits, connection) == accepted(ruleset, connection), connection


@pytest.fixture
def namespace() -> Iterator[str]:
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        if os.environ.get("CI") == "true":
            pytest.fail("this test needs root, nft and ip")
        pytest.skip("this test needs root, nft and ip")
    name = f"pwfv{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True, timeout=30)


@pytest.mark.parametrize(("variant", "zone"), [("normal", None), ("island", "cell"), ("fail-closed", "cell")])
def test_a_loaded_ruleset_reads_back_to_the_same_permits(
    namespace: str, variant: str, zone: str | None
) -> None:
    site = gateway_plant()
    script = render_ruleset(site, variant=cast(Variant, variant), zone=zone, at=AT)
    command = ["ip", "netns", "exec", namespace, "nft", "-f", "-"]
    loaded = subprocess.run(command, input=script, capture_output=True, text=True, timeout=60, check=False)
    assert loaded.returncode == 0, loaded.stderr
    listed = listed_permits(running_document(netns=namespace))
    assert set(listed) == set(firewall_permits(rendered(site, variant, zone)))
