"""The ledger's ground truth for the inventory: every plant role has an inventory role, the
hosts listed are those that sent frames of their own, and the polling entries add up to the
Modbus PDUs the ledger counts frame by frame."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from plantwarden.inventory.roles import Role
from plantwarden.sim.plant import HOST_ROLES, default_plant
from plantwarden.sim.traffic.generator import generate
from plantwarden.sim.traffic.truth import INVENTORY_ROLES


def test_every_plant_role_has_an_inventory_role() -> None:
    assert set(INVENTORY_ROLES) == set(HOST_ROLES)
    assert set(INVENTORY_ROLES.values()) == set(Role) - {Role.UNKNOWN}


def test_hosts_and_polling_of_a_capture_with_a_scan(tmp_path: Path) -> None:
    ledger = generate(tmp_path / "scan.pcap", seed=5, packets=6_000, attacks=["scan"]).ledger
    hosts = {host["name"]: host for host in ledger["hosts"]}
    plant = default_plant()
    assert set(hosts) == {host.name for host in plant.hosts} | {
        "internet",
        *(f"router-{zone.name}" for zone in plant.zones),
    }  # the scan's probes of unused addresses add no host: nothing answers from them
    assert hosts["cell-a-switch"] == {
        "name": "cell-a-switch",
        "ip": "127.10.2.2",
        "mac": hosts["cell-a-switch"]["mac"],
        "zone": "cell-a",
        "role": "network_device",
    }
    assert (hosts["router-cell-b"]["ip"], hosts["internet"]["zone"]) == ("127.10.3.1", "outside")
    requests: Counter[int] = Counter()
    answers: Counter[int] = Counter()
    for entry in ledger["polling"]:
        if entry["protocol"] == "modbus":
            requests[entry["function"]] += entry["requests"]
            answers[entry["function"]] += entry["answers"]
    written = {int(code): kinds for code, kinds in ledger["modbus_function_codes"].items()}
    assert requests == {code: kinds["request"] for code, kinds in written.items()}
    assert answers == {
        code: kinds.get("response", 0) + kinds.get("exception", 0) for code, kinds in written.items()
    }
    scanner = hosts["office-ws-1"]["ip"]
    assert any(entry["client"] == scanner and entry["function"] == 43 for entry in ledger["polling"])
