"""`plantwarden sensor run`'s options: one that would change nothing with the others given is a
usage error before a packet is read; `--duration` stops a run on the plant's tap as it stops a
live one, also when the tap stays quiet or no plant writes it."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from plantwarden.cli.main import cli
from plantwarden.detection.rules.format import RuleFileError
from plantwarden.sim.traffic.generator import generate

RIVERSIDE = Path(__file__).resolve().parents[2] / "examples" / "riverside" / "plant.yaml"


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sensor") / "plant.pcap"
    generate(path, seed=7, packets=500)
    return path


def sensor_run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data), "sensor", "run", "--site", "riverside", *args])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--rules", ".", "--no-rules"], "--rules goes with the rules, not --no-rules"),
        (["--zone-report-every", "5"], "--zone-report-every goes with --plant"),
        (["--no-process-models"], "--no-process-models goes with --plant"),
        (["--process-models"], "--process-models goes with --plant"),
        (["--process-learning", "2h"], "--process-learning goes with --plant"),
        (
            ["--plant", str(RIVERSIDE), "--no-process-models", "--process-learning", "2h"],
            "--process-learning goes with the process models, not --no-process-models",
        ),
        (
            ["--no-baselines", "--baseline-learning", "1d"],
            "--baseline-learning goes with the baselines, not --no-baselines",
        ),
        (
            ["--evidence-max-mb", "5"],
            "--evidence-max-mb goes with the evidence ring, which is off for --pcap unless --evidence",
        ),
        (
            ["--no-evidence", "--evidence-max-mb", "5"],
            "--evidence-max-mb goes with the evidence ring, not --no-evidence",
        ),
        (["--no-inventory", "--save-every", "5"], "--save-every goes with the inventory, not --no-inventory"),
        (["--duration", "1"], "--duration goes with --interface or --tap, not --pcap"),
        (
            ["--no-inventory", "--no-rules", "--no-baselines", "--sensor-name", "hall-3"],
            "--sensor-name goes with a run that reports its health",
        ),
    ],
)
def test_an_option_that_changes_nothing_is_refused_before_any_work(
    tmp_path: Path, capture: Path, options: list[str], message: str
) -> None:
    result = sensor_run(tmp_path / "data", "--pcap", str(capture), *options)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "packets " not in result.output  # no packet was read


def test_the_same_options_are_taken_where_they_change_something(tmp_path: Path, capture: Path) -> None:
    result = sensor_run(
        tmp_path / "data",
        *("--pcap", str(capture), "--evidence", "--evidence-max-mb", "5", "--save-every", "5"),
        *("--plant", str(RIVERSIDE), "--zone-report-every", "5", "--process-learning", "2h"),
        "--baseline-learning",
        "1d",
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"packets +500 ", result.output), result.output


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "the sensor name is empty"),
        ("x" * 121, "the sensor name has 121 characters; at most 120"),
        ("hall-3\nfake-sensor", "the sensor name 'hall-3\\nfake-sensor' holds a line break"),
        ("hall-3\u202e", "the sensor name 'hall-3\\u202e' holds a line break, a tab or another control"),
        (" hall-3", "the sensor name ' hall-3' starts or ends with a space"),
    ],
)
def test_a_sensor_name_that_could_not_be_stored_whole_or_shown_is_refused(
    tmp_path: Path, capture: Path, name: str, problem: str
) -> None:
    result = sensor_run(tmp_path / "data", "--pcap", str(capture), "--sensor-name", name)
    assert result.exit_code == 2, result.output
    assert problem in result.output and "(1-120 printable characters)" in result.output, result.output
    assert "packets " not in result.output


def test_a_long_sensor_name_is_reported_whole(tmp_path: Path, capture: Path) -> None:
    """The longest name fits its column whole: two names alike but for the last character stay two
    sensors (a longer name is refused rather than cut, where two would become one)."""
    base = "Halle 3 Sensor Süd "
    names = [base + "x" * (120 - len(base)), base + "x" * (119 - len(base)) + "y"]
    assert all(len(name) == 120 for name in names)
    for name in names:
        ran = sensor_run(tmp_path / "data", "--pcap", str(capture), "--sensor-name", name, "--no-rules")
        assert ran.exit_code == 0, ran.output
    status = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "sensor", "status"])
    assert status.exit_code == 0, status.output
    assert all(f"  {name}  stopped" in status.output for name in names), status.output


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"broken.yaml": "id: ["}, "broken.yaml:1:6: not valid YAML"),
        ({}, "holds no rule file (*.yaml, *.yml)"),
    ],
    ids=["a-refused-file", "no-rule"],
)
def test_rules_that_do_not_all_load_are_an_error_before_any_work(
    tmp_path: Path, capture: Path, files: dict[str, str], problem: str
) -> None:
    """Run without them, the sensor (or a check of stored records) would miss what they look for."""
    rules = tmp_path / "rules"
    rules.mkdir()
    for name, text in files.items():
        (rules / name).write_text(text)
    result = sensor_run(tmp_path / "data", "--pcap", str(capture), "--rules", str(rules))
    assert isinstance(result.exception, RuleFileError) and problem in str(result.exception), result.output
    assert "packets " not in result.output
    data = ["--data-dir", str(tmp_path / "data")]
    checked = CliRunner().invoke(cli, [*data, "rules", "check", "--dir", str(rules)])
    assert isinstance(checked.exception, RuleFileError) and problem in str(checked.exception), checked.output
    assert "detections in" not in checked.output


@pytest.fixture
def tap(tmp_path: Path) -> Path:
    fifo = tmp_path / "tap.fifo"
    os.mkfifo(fifo)
    return fifo


class Plant:
    """A plant writing `data` into the tap and holding it open until `release` (or 15 s, when a
    run that did not stop would end), or with `data` None, opening it only then, without waiting for
    a reader (that ends a run still waiting for its writer)."""

    def __init__(self, fifo: Path, data: bytes | None) -> None:
        self.fifo, self.data, self.released = fifo, data, threading.Event()
        self.thread = threading.Thread(target=self.write, daemon=True)
        self.thread.start()

    def write(self) -> None:
        if self.data is None:
            if self.released.wait(15):
                return
            with contextlib.suppress(OSError):  # no reader any more
                os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
            return
        fd = os.open(self.fifo, os.O_WRONLY)
        try:
            os.write(fd, self.data)
            self.released.wait(15)
        finally:
            os.close(fd)

    def release(self) -> None:
        self.released.set()
        self.thread.join()


TAP_RUN = ("--no-inventory", "--no-evidence", "--no-baselines", "--no-rules", "--no-records")


@pytest.mark.parametrize("writes", [True, False], ids=["a-plant-keeps-it-open", "no-plant-writes"])
def test_duration_stops_a_run_on_the_tap(tmp_path: Path, tap: Path, capture: Path, writes: bool) -> None:
    plant = Plant(tap, capture.read_bytes() if writes else None)
    started = time.monotonic()
    result = sensor_run(tmp_path / "data", "--tap", str(tap), "--duration", "1", *TAP_RUN)
    took = time.monotonic() - started
    plant.release()
    assert result.exit_code == 0, result.output
    assert took < 8, f"the run took {took:.1f} s: --duration 1 did not stop it"
    packets = 500 if writes else 0  # what came before the end is read
    assert re.search(rf"packets +{packets} ", result.output), result.output
