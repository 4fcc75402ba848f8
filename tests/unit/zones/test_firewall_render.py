"""The rendered ruleset: nft accepts every variant, comments name conduits, windows become UTC,
and drift finds removed, added and changed rules and a changed policy in an exported ruleset."""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from plantwarden.zones.firewall.drift import drift, exported_document, ruleset_permits, running_document
from plantwarden.zones.firewall.errors import CannotRender, RulesetUnreadable
from plantwarden.zones.firewall.render import render_ruleset
from plantwarden.zones.firewall.schedule import schedule_segments
from plantwarden.zones.plant.model import Window
from tests.functional.netns_plant import cell_plant

AT = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # Berlin is at UTC+01:00
VARIANTS = [("normal", None), ("island", "cell"), ("fail-closed", "cell"), ("fail-closed", None)]
MAINTENANCE = Window("maint", (0, 6), 22 * 60, 2 * 60)  # Monday and Sunday 22:00 to 02:00


def scheduled_plant() -> Any:
    return cell_plant(timezone="Europe/Berlin", windows={"maint": MAINTENANCE}, schedule=("maint",))


def _require_nft() -> None:
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        if os.environ.get("CI") == "true":
            pytest.fail("these tests need root, nft and ip")
        pytest.skip("these tests need root, nft and ip")


@pytest.fixture
def namespace() -> Iterator[str]:
    _require_nft()
    name = f"pwfw{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True, timeout=30)


def nft_in(namespace: str, *args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    command = ["ip", "netns", "exec", namespace, "env", "TZ=UTC", "nft", *args]
    return subprocess.run(command, input=script, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("variant", "zone"), VARIANTS)
def test_nft_accepts_every_variant(namespace: str, variant: str, zone: str | None) -> None:
    script = render_ruleset(scheduled_plant(), variant=variant, zone=zone, at=AT)  # type: ignore[arg-type]
    checked = nft_in(namespace, "-c", "-f", "-", script=script)
    assert checked.returncode == 0, checked.stderr
    assert "operations" in script and "the gateway enforces them" in script


def test_a_broken_script_is_refused_by_the_same_check(namespace: str) -> None:
    script = render_ruleset(scheduled_plant(), at=AT).replace("policy drop", "policy maybe")
    assert nft_in(namespace, "-c", "-f", "-", script=script).returncode != 0


def test_comments_name_each_conduit_and_channel() -> None:
    script = render_ruleset(scheduled_plant(), at=AT)
    for conduit, channel in [
        ("scada-cell", "modbus"),
        ("scada-cell", "s7"),
        ("scada-cell", "io"),
        ("it-scada", "opcua"),
    ]:
        assert f'accept comment "conduit {conduit} channel {channel}"' in script
    assert 'comment "conduit it-scada channel ssh window maint"' in script
    assert 'log prefix "pw drop: "' in script and "limit rate 10/second" in script
    assert (
        "ip saddr != @gateways ip daddr 10.91.3.10 tcp dport { 102, 502 } drop"
        ' comment "gateway-only asset plc1"' in script
    )


def test_loading_twice_keeps_one_table_and_leaves_other_tables_alone(namespace: str) -> None:
    assert (
        nft_in(
            namespace,
            "-f",
            "-",
            script="table inet other {\n chain c {\n type filter hook input priority 0;\n }\n}\n",
        ).returncode
        == 0
    )
    script = render_ruleset(scheduled_plant(), at=AT)
    for _ in range(2):
        assert nft_in(namespace, "-f", "-", script=script).returncode == 0
    listing = nft_in(namespace, "list", "ruleset").stdout
    assert listing.count("table inet plantwarden") == 1 and "table inet other" in listing
    assert listing.count('comment "conduit scada-cell channel modbus"') == 1


def test_windows_are_converted_from_the_site_time_zone_to_utc_days_and_seconds() -> None:
    segments = schedule_segments(scheduled_plant(), ("maint",), AT)
    # Monday 22:00-02:00 in Berlin (UTC+1) is Monday 21:00 to Tuesday 01:00 UTC; nft counts Sunday as 0
    assert {(s.day, s.first_second, s.last_second) for s in segments} == {
        (1, 21 * 3600, 86399),
        (2, 0, 3599),
        (0, 21 * 3600, 86399),
        (1, 0, 3599),
    }
    summer = schedule_segments(scheduled_plant(), ("maint",), datetime(2026, 7, 1, tzinfo=UTC))
    assert (1, 20 * 3600, 86399) in {(s.day, s.first_second, s.last_second) for s in summer}
    assert "until 2027-03-28 01:00 UTC" in render_ruleset(scheduled_plant(), at=AT)


def test_bad_variants_are_refused_clearly() -> None:
    with pytest.raises(CannotRender, match="island variant needs the zone"):
        render_ruleset(scheduled_plant(), variant="island", at=AT)
    with pytest.raises(CannotRender, match="no zone 'nowhere'"):
        render_ruleset(scheduled_plant(), variant="fail-closed", zone="nowhere", at=AT)


@pytest.fixture
def exported(namespace: str) -> dict[str, Any]:
    """The normal ruleset loaded into a namespace and listed as JSON (what an export holds)."""
    assert nft_in(namespace, "-f", "-", script=render_ruleset(scheduled_plant(), at=AT)).returncode == 0
    document: dict[str, Any] = running_document(netns=namespace)
    return document


def _rules(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [item["rule"] for item in document["nftables"] if "rule" in item]


def test_an_identical_export_shows_no_drift(exported: dict[str, Any], tmp_path: Path) -> None:
    assert drift(scheduled_plant(), exported, at=AT) == []
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported))
    assert drift(scheduled_plant(), exported_document(path), at=AT) == []


def test_drift_names_a_removed_rule_by_its_conduit(exported: dict[str, Any]) -> None:
    document = copy.deepcopy(exported)
    document["nftables"] = [
        i for i in document["nftables"] if i.get("rule", {}).get("comment") != "conduit scada-cell channel s7"
    ]
    differences = drift(scheduled_plant(), document, at=AT)
    assert [(d.kind, d.subject) for d in differences] == [("missing", "conduit scada-cell channel s7")]
    assert "tcp dport 102" in differences[0].detail


def test_drift_names_an_added_rule_and_a_changed_one(exported: dict[str, Any]) -> None:
    document = copy.deepcopy(exported)
    added = copy.deepcopy(
        next(r for r in _rules(document) if r.get("comment") == "conduit it-scada channel opcua")
    )
    added["comment"] = "someone's shortcut"
    document["nftables"].insert(-1, {"rule": added})
    changed = next(r for r in _rules(document) if r.get("comment") == "conduit scada-cell channel modbus")
    changed["expr"][2]["match"]["right"] = 503
    differences = {(d.kind, d.subject) for d in drift(scheduled_plant(), document, at=AT)}
    assert differences == {("extra", "someone's shortcut"), ("changed", "conduit scada-cell channel modbus")}


def test_drift_sees_a_changed_policy_and_a_changed_zone_set(exported: dict[str, Any]) -> None:
    document = copy.deepcopy(exported)
    next(i["chain"] for i in document["nftables"] if "chain" in i)["policy"] = "accept"
    zone_set = next(i["set"] for i in document["nftables"] if i.get("set", {}).get("name") == "zone_cell")
    zone_set["elem"] = [{"prefix": {"addr": "10.91.2.0", "len": 23}}]
    differences = drift(scheduled_plant(), document, at=AT)
    assert ("policy", "chain forward") in {(d.kind, d.subject) for d in differences}
    assert "policy accept, the model says drop" in str(differences[0])
    assert {d.subject for d in differences if d.kind == "changed"} >= {"conduit scada-cell channel modbus"}


def test_drift_of_a_running_ruleset_and_of_an_absent_table(namespace: str) -> None:
    with pytest.raises(RulesetUnreadable, match="not loaded"):
        running_document(netns=namespace)
    nft_in(
        namespace, "-f", "-", script=render_ruleset(scheduled_plant(), variant="island", zone="cell", at=AT)
    )
    differences = drift(scheduled_plant(), running_document(netns=namespace), at=AT)
    assert {"island zone cell", "conduit scada-cell channel modbus"} <= {d.subject for d in differences}


def test_ruleset_permits_read_the_channels_back(exported: dict[str, Any]) -> None:
    permits = ruleset_permits(exported)
    modbus = [p for p in permits if p.label == "scada-cell/modbus"]
    assert all((p.transport, p.ports) == ("tcp", (502,)) for p in modbus)
    # the channel's rule less the guard before it: plc1 (10.91.3.10) only from the gateway (.2.5)
    plc1, gateway = ipaddress.ip_address("10.91.3.10"), ipaddress.ip_address("10.91.2.5")
    reaching_plc1 = [p for p in modbus if any(plc1 in n for n in p.destinations)]
    assert [[str(n) for n in p.sources] for p in reaching_plc1] == [["10.91.2.5/32"]]
    others = [p for p in modbus if not any(plc1 in n for n in p.destinations)]
    assert len(others) == 1 and not any(gateway in n for n in others[0].sources)
    assert sum(n.num_addresses for n in others[0].destinations) == 255
    assert [p.schedule for p in permits if p.label == "it-scada/ssh"] == [("maint",)]


def test_an_export_that_is_not_text_or_is_empty_is_refused_clearly(tmp_path: Path) -> None:
    binary = tmp_path / "export.json"
    binary.write_bytes(b'{"nftables": [\n  {"metainfo": {}},\n  \xff\xfe]}')
    with pytest.raises(RulesetUnreadable) as caught:
        exported_document(binary)
    assert caught.value.message == (
        f"{binary} is not an nft listing: not UTF-8 text (line 3, byte 0xff at offset 37)"
    )
    empty = tmp_path / "empty.nft"
    empty.write_text(" \n")
    with pytest.raises(RulesetUnreadable, match="is empty: expected an nft listing of table inet"):
        exported_document(empty)


def test_a_rule_whose_expr_is_not_a_list_is_refused_clearly() -> None:
    table = {"family": "inet", "name": "plantwarden"}
    rule = {"family": "inet", "table": "plantwarden", "chain": "forward", "comment": "x", "expr": 5}
    with pytest.raises(RulesetUnreadable, match="rule 'x': expr must be a list of statements"):
        ruleset_permits({"nftables": [{"table": table}, {"rule": rule}]})
