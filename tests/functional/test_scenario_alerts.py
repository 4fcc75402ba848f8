"""The generated plant's attack scenarios through `sensor run --plant`, as an operator runs it: the
rules and the zone check on the records, alerts in the store. `out-of-range-setpoint` raises
`pw-setpoint-out-of-range` against boiler-1 (the register's safe range from the plant model);
`tampered-telemetry` raises a zone violation from the office workstation to the broker; the
plant's normal traffic raises neither."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from plantwarden.alerts.models import Alert
from plantwarden.cli.main import cli
from plantwarden.core.clock import SystemClock
from plantwarden.core.runtime import Runtime
from plantwarden.sim.traffic.generator import generate
from tests.conftest import make_settings

RIVERSIDE = Path(__file__).resolve().parents[2] / "examples" / "riverside" / "plant.yaml"
BOILER, OFFICE, BROKER = "127.10.3.13", "127.10.0.10", "127.10.1.40"


def alerts_of(directory: Path, attacks: tuple[str, ...]) -> list[dict[str, Any]]:
    """The alerts stored by `sensor run --plant` over 20,000 packets of the plant with `attacks`."""
    capture = generate(directory / "plant.pcap", seed=11, packets=20_000, attacks=attacks).capture
    args = ["sensor", "run", "--pcap", str(capture), "--site", "riverside", "--plant", str(RIVERSIDE)]
    result = CliRunner().invoke(cli, ["--data-dir", str(directory / "data"), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    runtime = Runtime(make_settings(directory / "data"), SystemClock())
    try:
        with runtime.ready_store().transaction() as session:
            found = session.scalars(select(Alert)).all()
            return [
                {
                    "rule": a.rule_id,
                    "techniques": list(a.techniques),
                    "assets": list(a.assets),
                    "evidence": list(a.evidence),
                }
                for a in found
            ]
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return alerts_of(tmp_path_factory.mktemp("clean"), ())


def test_an_out_of_range_setpoint_raises_its_alert_against_the_boiler(tmp_path: Path) -> None:
    found = [
        a for a in alerts_of(tmp_path, ("out-of-range-setpoint",)) if a["rule"] == "pw-setpoint-out-of-range"
    ]
    assert len(found) == 1, found
    assert found[0]["techniques"] == ["T0836"]
    assert BOILER in found[0]["assets"], found[0]
    group = found[0]["evidence"][0]["group"]
    assert (group["dst_addr"], group["address"]) == (BOILER, 0), group


def test_tampered_telemetry_raises_a_zone_violation_from_the_office_to_the_broker(tmp_path: Path) -> None:
    found = [a for a in alerts_of(tmp_path, ("tampered-telemetry",)) if a["rule"].startswith("zone.")]
    pairs = {(e.get("src"), e.get("dst")) for a in found for e in a["evidence"]}
    assert (OFFICE, BROKER) in pairs, found
    assert {a["rule"] for a in found} == {"zone.channel-not-allowed"}
    assert all(set(a["assets"]) == {"office-ws-1", "broker-1"} for a in found), found


def test_the_plant_s_normal_traffic_raises_neither(clean: list[dict[str, Any]]) -> None:
    assert not [a for a in clean if a["rule"] == "pw-setpoint-out-of-range" or a["rule"].startswith("zone.")]
