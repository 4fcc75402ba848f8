"""The rule pack (src/plantwarden/detection/pack) over real captures: every shared attack capture
raises its expected alert with the right technique; the long normal captures and the generated
plant's normal traffic raise none; each of the generated plant's attack scenarios raises its alert.
The sensor writes the records into a data directory, then every rule runs over them."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwarden.detection.rules.examples import run_examples
from plantwarden.sim.traffic.generator import generate
from tests.functional.rule_pack_support import (
    DATASETS,
    alerts_of_capture,
    opened,
    pack,
    roles_of,
    run_sensor,
)

RULES = pack()
ITI = "iti-ics-security-tools"
ATTACKS = [
    (f"{ITI}/s7comm/snap7_s300_stop.pcapng", "pw-s7-plc-stop", "T0858"),
    (f"{ITI}/s7comm/tia_s300_downloadOb1.pcapng", "pw-s7-block-download", "T0843"),
    (f"{ITI}/s7comm/tia_s300_downloadOb1.pcapng", "pw-s7-logic-change", "T0889"),
    (f"{ITI}/s7comm/step7_s300_download.pcapng", "pw-s7-block-download", "T0843"),
    (f"{ITI}/s7comm/s7comm_downloading_block_db1.pcap", "pw-s7-block-download", "T0843"),
    (f"{ITI}/s7comm/s7comm_reading_setting_plc_time.pcap", "pw-s7-clock-set", "T0836"),
    (f"{ITI}/enip-cip/cip_stop_plc.pcap", "pw-cip-stop", "T0881"),
    (f"{ITI}/enip-cip/cip_start_plc.pcap", "pw-cip-start", "T0858"),
    (f"{ITI}/enip-cip/quickdraw/EIP-RebootorRestart.pcap", "pw-cip-reset", "T0816"),
    (f"{ITI}/enip-cip/quickdraw/EIP-RemoteModeChangeAttempt.pcap", "pw-cip-stop", "T0858"),
    (f"{ITI}/enip-cip/quickdraw/EIP-FirmwareChangeFailure.pcap", "pw-cip-firmware-update", "T0857"),
    (f"{ITI}/enip-cip/quickdraw/EIP-ChangeDateAttempt.pcap", "pw-cip-clock-set", "T0836"),
    (f"{ITI}/dnp3/function-captures/cold_restart_and_response.pcap", "pw-dnp3-restart", "T0816"),
    (f"{ITI}/dnp3/function-captures/warm_restart_and_response.pcap", "pw-dnp3-restart", "T0816"),
    (f"{ITI}/dnp3/function-captures/file_delete.pcap", "pw-dnp3-file-delete", "T0809"),
    (f"{ITI}/dnp3/function-captures/file_read.pcap", "pw-dnp3-file-read", "T0845"),
    (f"{ITI}/dnp3/function-captures/file_write.pcap", "pw-dnp3-file-write", "T0843"),
    (f"{ITI}/dnp3/bro/dnp3_file_del.pcap", "pw-dnp3-file-delete", "T0809"),
    (f"{ITI}/dnp3/bro/dnp3_file_read.pcap", "pw-dnp3-file-read", "T0845"),
    (f"{ITI}/dnp3/bro/dnp3_file_write.pcap", "pw-dnp3-file-write", "T0843"),
    (f"{ITI}/modbus/fuzz-72.pcap", "pw-modbus-function-sweep", "T0814"),
]
LONG_NORMAL = [
    f"{ITI}/modbus/long/ModbusTCP.pcap",
    f"{ITI}/enip-cip/long/EthernetIP-CIP.pcap",
    f"{ITI}/s7comm/long/s7comm_clean.pcap",
    f"{ITI}/c37.118/long/c37_pmu_clean.pcap",
]
SCENARIOS = [
    ("scan", "pw-host-sweep", "T0846"),
    ("scan", "pw-identify-sweep", "T0888"),
    ("unauthorized-write", "pw-plc-write-from-non-engineering-host", "T0855"),
    ("plc-stop", "pw-modbus-listen-only-or-restart", "T0858"),
]
needs_datasets = pytest.mark.skipif(
    not DATASETS.is_dir(), reason=f"the shared datasets are absent ({DATASETS})"
)


def test_the_pack_loads_whole_and_every_example_holds() -> None:
    assert RULES.refused == ()
    assert len(RULES.rules) >= 30
    failing = [str(r) for rule in RULES.rules for r in run_examples(rule) if not r.passed]
    assert failing == []
    assert all(rule.id.startswith("pw-") and rule.techniques for rule in RULES.rules)


@needs_datasets
@pytest.mark.parametrize(
    ("capture", "rule", "technique"), ATTACKS, ids=[f"{a[1]}:{Path(a[0]).name}" for a in ATTACKS]
)
def test_each_attack_capture_raises_its_alert(
    tmp_path: Path, capture: str, rule: str, technique: str
) -> None:
    found = alerts_of_capture(tmp_path, DATASETS / capture, RULES)
    assert any(a.rule == rule and technique in a.techniques for a in found), sorted(a.rule for a in found)


@needs_datasets
def test_profinet_dcp_set_ip_raises_an_alert(tmp_path: Path) -> None:
    found = alerts_of_capture(tmp_path, DATASETS / ITI / "profinet" / "ChangeIPUsingDCP.pcap", RULES)
    assert {(a.rule, tuple(a.techniques)) for a in found} == {("pw-profinet-dcp-set-ip", ("T0836",))}


@needs_datasets
@pytest.mark.parametrize("capture", LONG_NORMAL, ids=[Path(c).name for c in LONG_NORMAL])
def test_the_long_normal_captures_raise_no_alert(tmp_path: Path, capture: str) -> None:
    """docs/detection.md lists the alerts the pack raises on these captures: none."""
    assert alerts_of_capture(tmp_path, DATASETS / capture, RULES) == set()


@pytest.fixture(scope="module")
def plant_roles(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bytes], int]:
    """The roles the inventory learns from the plant's normal traffic (another seed), before any attack."""
    directory = tmp_path_factory.mktemp("baseline")
    capture = generate(directory / "baseline.pcap", seed=7, packets=20_000).capture
    run_sensor(directory / "data", capture, "riverside")
    with opened(directory / "data") as runtime:
        return roles_of(runtime)


def _plant_alerts(directory: Path, roles: dict[tuple[str, bytes], int], attacks: tuple[str, ...]) -> set[str]:
    capture = generate(directory / "plant.pcap", seed=11, packets=20_000, attacks=attacks).capture
    found = alerts_of_capture(directory / "data", capture, RULES, "riverside", roles)
    return {f"{a.rule} {t}" for a in found for t in a.techniques}


def test_the_generated_plant_s_normal_traffic_raises_no_alert(
    tmp_path: Path, plant_roles: dict[tuple[str, bytes], int]
) -> None:
    assert _plant_alerts(tmp_path, plant_roles, ()) == set()


@pytest.mark.parametrize(
    ("scenario", "rule", "technique"), SCENARIOS, ids=[f"{s[0]}:{s[1]}" for s in SCENARIOS]
)
def test_each_plant_attack_scenario_raises_its_alert(
    tmp_path: Path, plant_roles: dict[tuple[str, bytes], int], scenario: str, rule: str, technique: str
) -> None:
    assert f"{rule} {technique}" in _plant_alerts(tmp_path, plant_roles, (scenario,))
