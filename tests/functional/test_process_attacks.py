"""The generated plant's process attacks through `sensor run --plant`, as an operator runs it: the
register values the sensor sees become telemetry, each device learns its process model from the
first 25 minutes, and the attacks that follow are detected with the deviating variable named:
pump-skid-1's drifting pressure transmitter (`drifting-sensor`) by the process model, and
boiler-1's pressure setpoint written outside its safe range (`out-of-range-setpoint`) by the
learned baseline and the rule pack. The models are saved, so a second run watches at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from plantwarden.alerts.models import Alert, Severity
from plantwarden.cli.main import cli
from plantwarden.core.clock import SystemClock
from plantwarden.core.runtime import Runtime
from plantwarden.detection.process_watch.saved import load_models
from plantwarden.sim.traffic.generator import generate
from tests.conftest import make_settings

RIVERSIDE = Path(__file__).resolve().parents[2] / "examples" / "riverside" / "plant.yaml"
PACKETS = 300_000
"""About 100 simulated minutes: 33 of normal operation, the 30-minute drift, then the setpoint."""


@dataclass
class Run:
    directory: Path
    ledger: dict[str, Any]
    output: str
    alerts: list[dict[str, Any]]

    def attack(self, name: str) -> dict[str, Any]:
        return next(a for a in self.ledger["attacks"] if a["instance"].startswith(name))


def sense(directory: Path, capture: Path, *extra: str) -> str:
    args = ["sensor", "run", "--pcap", str(capture), "--site", "riverside", "--plant", str(RIVERSIDE)]
    learning = ["--process-learning", "25m"]
    if "--no-baselines" not in extra:  # else a usage error: it would change nothing
        learning += ["--baseline-learning", "25m"]
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(directory / "data"), *args, *learning, *extra],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.output


def stored_alerts(directory: Path) -> list[dict[str, Any]]:
    runtime = Runtime(make_settings(directory / "data"), SystemClock())
    try:
        with runtime.ready_store().transaction() as session:
            return [
                {
                    "rule": a.rule_id,
                    "title": a.title,
                    "severity": Severity(a.severity).name.lower(),
                    "evidence": list(a.evidence),
                    "assets": list(a.assets),
                }
                for a in session.scalars(select(Alert)).all()
            ]
    finally:
        runtime.close()


def run_seed(tmp_path_factory: pytest.TempPathFactory, seed: int) -> Run:
    directory = tmp_path_factory.mktemp(f"process-attacks-{seed}")
    generated = generate(
        directory / "plant.pcap",
        seed=seed,
        packets=PACKETS,
        attacks=("drifting-sensor", "out-of-range-setpoint"),
    )
    output = sense(directory, generated.capture)
    return Run(directory, generated.ledger, output, stored_alerts(directory))


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_seed(tmp_path_factory, 7)


def test_another_seed_names_the_drift_and_raises_nothing_at_the_end_of_learning(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Seed 4: one row of pump-skid-1's flow sits 3.5 sd off as the watch starts; the variable's
    smoothed deviation starts from 0, so that row alone raises nothing, and the drift is named."""
    run = run_seed(tmp_path_factory, 4)
    drift = run.attack("drifting-sensor")["drift"]
    pump = [a for a in run.alerts if a["rule"] == "pw-process-anomaly" and "pump-skid-1" in a["assets"]]
    assert [a["evidence"][1]["variable"] for a in pump] == ["discharge_pressure"], pump
    assert drift["start"] <= _epoch(pump[0]["evidence"][0]["since"]) <= drift["end"], pump


def test_the_drifting_pressure_transmitter_is_named_by_the_pump_s_process_model(attacked: Run) -> None:
    drift = attacked.attack("drifting-sensor")["drift"]
    found = [a for a in attacked.alerts if a["rule"] == "pw-process-anomaly" and "pump-skid-1" in a["assets"]]
    assert found, attacked.output
    episode = found[0]["evidence"][0]
    named = found[0]["evidence"][1]
    assert named["variable"] == "discharge_pressure" and named["deviation_sd"] > 3, found[0]
    assert "discharge_pressure" in found[0]["title"]
    assert drift["start"] <= _epoch(episode["since"]) <= drift["end"], (episode, drift)  # inside the drift


def test_the_pump_raised_nothing_before_the_drift(attacked: Run) -> None:
    drift = attacked.attack("drifting-sensor")["drift"]
    pump = [a for a in attacked.alerts if a["rule"] == "pw-process-anomaly" and "pump-skid-1" in a["assets"]]
    assert all(_epoch(a["evidence"][0]["since"]) >= drift["start"] for a in pump), pump


def test_the_conveyor_jam_is_flagged_by_its_stall_current(attacked: Run) -> None:
    """Seed 7's conveyor jams by itself at 08:39 (the simulation's seeded fault, not an attack):
    the belt stops and the motor draws 18 A. The conveyor's first second in the capture (motor
    still at 0 A) is settling, not learned, so it does not lift the threshold over the jam."""
    found = [a for a in attacked.alerts if a["rule"] == "pw-process-anomaly" and "conveyor-1" in a["assets"]]
    assert found, attacked.output
    assert "motor_current = 18" in found[0]["title"], found[0]["title"]


def test_the_tanks_ran_normally_and_raised_nothing(attacked: Run) -> None:
    tanks = [
        a
        for a in attacked.alerts
        if a["rule"] == "pw-process-anomaly" and {"tank-1", "tank-2"} & set(a["assets"])
    ]
    assert tanks == [], tanks


def test_the_out_of_range_setpoint_breaks_the_boiler_s_baseline(attacked: Run) -> None:
    found = [a for a in attacked.alerts if a["rule"] == "pw-baseline-setpoint-outside"]
    assert len(found) == 1, found
    fact = found[0]["evidence"][0]
    assert fact["fact"] == "setpoint" and fact["fields"]["server"] == "127.10.3.13", fact
    assert fact["fields"]["address"] == 0 and fact["learned"]["safe"] == [2.0, 10.0], fact
    assert "boiler-1 pressure_setpoint written 14 bar" in found[0]["title"], found[0]["title"]
    written = attacked.attack("out-of-range-setpoint")
    assert _epoch(fact["first"]) == pytest.approx(written["start"], abs=1.0), (fact, written)


def test_every_device_learned_a_model_that_survives_the_run(attacked: Run) -> None:
    assert "trained now:" in attacked.output
    summary = next(line for line in attacked.output.splitlines() if line.startswith("process models:"))
    assert "left out (counters): " in summary and "mixer-1 batch_count" in summary, summary
    runtime = Runtime(make_settings(attacked.directory / "data"), SystemClock())
    try:
        with runtime.ready_store().transaction() as session:
            models = load_models(session, "riverside")
            assert {"pump-skid-1", "boiler-1", "tank-1"} <= set(models)
            assert "batch_count" in models["mixer-1"].model.left_out  # a counter is not modelled
            assert load_models(session, "elsewhere") == {}
    finally:
        runtime.close()


def test_a_second_run_watches_with_the_saved_models_at_once(attacked: Run) -> None:
    capture = attacked.directory / "plant.pcap"
    output = sense(attacked.directory, capture, "--no-baselines", "--no-rules")
    line = next(line for line in output.splitlines() if line.startswith("process models:"))
    assert "trained now" not in line and "still learning" not in line, line
    assert "pump-skid-1 " in line.split("watching ", 1)[1], line


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
