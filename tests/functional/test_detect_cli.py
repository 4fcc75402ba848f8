"""`plantwarden detect train|models|check|forget` over telemetry pushed with `telemetry push`, as an
engineer runs them: train on a window of normal operation, then check a later window in which a
pressure transmitter drifts; the episode is listed with the variable named and raised as an alert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner, Result

from plantwarden.cli.main import cli
from plantwarden.core.clock import SystemClock
from plantwarden.core.records.partitions import PartitionBackend, PartitionRef
from plantwarden.core.runtime import Runtime
from plantwarden.detection.process_watch.cli import telemetry_hours
from tests.conftest import make_settings

START = 1_767_600_000  # 2026-01-05 08:00:00 UTC
RIVERSIDE = Path(__file__).resolve().parents[2] / "examples" / "riverside" / "plant.yaml"


def run(data: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data), *args], input=stdin, catch_exceptions=False)


def pump_csv(seconds: int, drift_from: int | None = None) -> str:
    rng = np.random.default_rng(4)
    t = np.arange(seconds)
    speed = 60 + 10 * np.sin(2 * np.pi * t / 300) + rng.normal(0, 0.5, seconds)
    flow = 1.2 * speed + rng.normal(0, 0.4, seconds)
    pressure = 0.001 * speed**2 + rng.normal(0, 0.05, seconds)
    if drift_from is not None:
        pressure += np.clip(t - drift_from, 0, None) * 0.02
    items = t // 10  # a counter: only ever goes up, so it is left out of the model
    lines = ["ts,device,variable,value"]
    for i in range(seconds):
        ns = (START + i) * 1_000_000_000
        for name, values in (
            ("pump_speed", speed),
            ("flow", flow),
            ("discharge_pressure", pressure),
            ("items", items),
        ):
            lines.append(f"{ns},pump-skid-1,{name},{values[i]:.5f}")
    return "\n".join(lines) + "\n"


def test_train_then_check_names_the_drifting_variable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    untrained = run(data, "detect", "models", "--site", "riverside")
    assert "no process model at site 'riverside' yet: a sensor with --plant" in untrained.output
    pushed = run(data, "telemetry", "push", "-", "--site", "riverside", stdin=pump_csv(3600, drift_from=1800))
    assert pushed.exit_code == 0, pushed.output
    window = ["--site", "riverside", "--since", "2026-01-05T08:00:00Z"]
    trained = run(data, "detect", "train", *window, "--until", "2026-01-05T08:15:00Z")
    assert trained.exit_code == 0, trained.output
    assert "trained pump-skid-1: 870 rows" in trained.output, trained.output  # 900, less 30 settling
    assert "left out (counters): items" in trained.output, trained.output
    listed = run(data, "detect", "models", "--site", "riverside")
    assert "pump-skid-1" in listed.output and "discharge_pressure" in listed.output, listed.output
    misspelt = run(data, "detect", "models", "--site", "riversdie")
    assert misspelt.output == (
        "no process models at site 'riversdie': the sites with process models are riverside\n"
    )
    assert "left out (counters): items" in listed.output, listed.output
    quiet = run(data, "detect", "check", *window, "--until", "2026-01-05T08:29:00Z")
    assert quiet.exit_code == 0 and "Process anomaly" not in quiet.output, quiet.output
    assert "0 episode(s) found" in quiet.output, quiet.output
    found = run(data, "detect", "check", *window, "--until", "2026-01-05T09:00:00Z", "--raise-alerts")
    assert found.exit_code == 0, found.output
    assert "Process anomaly at pump-skid-1: discharge_pressure" in found.output, found.output
    assert "alerts: 1 opened" in found.output, found.output
    alerts = run(data, "alerts", "list")
    assert "discharge_pressure" in alerts.output, alerts.output
    forgot = run(data, "detect", "forget", "--site", "riverside", "pump-skid-1")
    assert forgot.exit_code == 0
    again = run(data, "detect", "check", *window, "--until", "2026-01-05T09:00:00Z")
    assert again.exit_code != 0 and "train one first" in again.output, again.output


def test_train_takes_the_applied_plant_s_counter_marks(tmp_path: Path) -> None:
    """A batch count reset at the shift change goes down once while learning: judged by its values
    it is modelled (and would leave its range once the new shift counts past the old one); the
    register map's `counter: true` leaves it out."""
    rows = pump_csv(900).splitlines()
    batches = [
        f"{(START + i) * 1_000_000_000},pump-skid-1,batches,{(i if i < 450 else i - 450) // 10}"
        for i in range(900)
    ]
    data = tmp_path / "data"
    assert (
        run(
            data, "telemetry", "push", "-", "--site", "riverside", stdin="\n".join([*rows, *batches]) + "\n"
        ).exit_code
        == 0
    )
    window = ["--site", "riverside", "--since", "2026-01-05T08:00:00Z", "--until", "2026-01-05T08:15:00Z"]
    judged = run(data, "detect", "train", *window)
    assert judged.exit_code == 0 and "; variables: " in judged.output, judged.output
    assert "batches" in judged.output.split("; variables: ")[1].split(";")[0], judged.output
    plant = tmp_path / "plant.yaml"
    marked = "          - {address: 105, name: pump_speed,"
    text = RIVERSIDE.read_text()
    assert text.count(marked) == 1
    plant.write_text(
        text.replace(
            marked,
            "          - {address: 106, name: batches, kind: input, type: uint16, counter: true}\n" + marked,
        )
    )
    assert run(data, "plant", "apply", str(plant)).exit_code == 0
    again = run(data, "detect", "train", *window)
    assert again.exit_code == 0 and "left out (counters): items, batches" in again.output, again.output


def test_train_refuses_a_window_without_enough_telemetry(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(data, "telemetry", "push", "-", "--site", "riverside", stdin=pump_csv(60)).exit_code == 0
    window = ["--site", "riverside", "--since", "2026-01-05T08:00:00Z", "--until", "2026-01-05T09:00:00Z"]
    result = run(data, "detect", "train", *window)
    assert result.exit_code != 0 and "fewer than --min-rows 300" in result.output, result.output


class CountingBackend:
    """The store's real partition backend, counting how often its partitions are listed (once per
    query)."""

    def __init__(self, backend: PartitionBackend) -> None:
        self.backend = backend
        self.listings = 0

    def partitions(self, kind: str | None = None) -> list[PartitionRef]:
        self.listings += 1
        return self.backend.partitions(kind)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)


def test_a_long_window_reads_only_the_hours_that_hold_telemetry(tmp_path: Path) -> None:
    """`detect check --since 2000-01-01` asked for each of 230,000 empty hours (17 s on an
    empty store); the hours no partition covers are not read, and the same rows come back."""
    data = tmp_path / "data"
    pushed = run(data, "telemetry", "push", "-", "--site", "riverside", stdin=pump_csv(5400))
    assert pushed.exit_code == 0, pushed.output
    runtime = Runtime(make_settings(data), SystemClock())
    try:
        counting = CountingBackend(runtime.records())
        since_2000 = 946_684_800 * 1_000_000_000
        batches = list(
            telemetry_hours(counting, "riverside", since_2000, (START + 86_400) * 1_000_000_000, None)
        )
        assert sum(len(b) for b in batches) == 5400 * 4
        assert counting.listings <= 1 + 3  # the partitions once, then one query per hour of data
        narrow = list(
            telemetry_hours(
                runtime.records(), "riverside", START * 1_000_000_000, (START + 5400) * 1_000_000_000, None
            )
        )
        assert [len(b) for b in batches] == [len(b) for b in narrow]
    finally:
        runtime.close()
    checked = run(data, "detect", "check", "--site", "riverside", "--since", "2000-01-01T00:00:00Z")
    assert "train one first" in checked.output  # the long window reaches the model check at once
