"""`plantwarden sensor run` as a user runs it: a summary, records in the records plane, and a clear
message for a truncated capture that keeps what was read."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from plantwarden.sim.traffic.generator import generate
from tests.helpers import plantwarden, start_plantwarden


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sensor") / "plant.pcapng"
    generate(path, seed=41, packets=20_000, attacks=["unauthorized-write"])
    return path


def test_a_capture_gives_a_summary_and_records(tmp_path: Path, capture: Path) -> None:
    result = plantwarden("--data-dir", str(tmp_path), "sensor", "run", "--pcap", str(capture), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ledger = json.loads(capture.with_name("plant.ledger.json").read_text())
    assert f"packets                    {ledger['packets']:,}" in result.stdout
    assert (
        f"Modbus PDUs                {ledger['modbus_pdus']:,}: ok {ledger['modbus_pdus']:,}" in result.stdout
    )
    query = plantwarden(
        "--data-dir", str(tmp_path), "records", "query", "protocol", "--since", "2026-01-05T00:00:00Z",
        "--protocol", "modbus", "--format", "json", cwd=tmp_path,
    )  # fmt: skip
    assert query.returncode == 0, query.stderr
    writes = [
        row
        for row in json.loads(query.stdout)
        if row["operation"] == "write" and row["src_addr"] == "127.10.0.10"
    ]
    assert {(row["function"], row["address"]) for row in writes} == {(6, 0), (5, 201)}
    # the PLC's answer came 2-12 ms later (the generator's scan cycle), and is recorded
    assert all(row["status"] == 0 and 2_000_000 <= row["response_ns"] <= 12_100_000 for row in writes)


def test_a_truncated_capture_keeps_what_was_read_and_says_where(tmp_path: Path, capture: Path) -> None:
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(capture.read_bytes()[: capture.stat().st_size // 2 + 5])
    result = plantwarden("--data-dir", str(tmp_path), "sensor", "run", "--pcap", str(cut), cwd=tmp_path)
    assert result.returncode == 1
    assert "is truncated at byte offset" in result.stderr and "complete packets" in result.stderr
    assert "records" in result.stdout and "packets                    " in result.stdout


def test_one_source_is_required_and_it_must_exist(tmp_path: Path) -> None:
    result = plantwarden("--data-dir", str(tmp_path), "sensor", "run", cwd=tmp_path)
    assert result.returncode != 0 and "give exactly one source" in result.stdout + result.stderr
    missing = plantwarden(
        "--data-dir", str(tmp_path), "sensor", "run", "--pcap", "nowhere.pcap", cwd=tmp_path
    )
    assert missing.returncode == 2 and "'nowhere.pcap' does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_the_sensor_reads_the_running_plants_tap(tmp_path: Path) -> None:
    fifo = tmp_path / "tap.fifo"
    os.mkfifo(fifo)
    port = "15020"
    plant = start_plantwarden(
        "--data-dir", str(tmp_path / "plant"), "sim", "run", "--port", port, "--broker", "off",
        "--poll-period", "0.2", "--tap", str(fifo), "--duration", "4", cwd=tmp_path,
    )  # fmt: skip
    try:
        # the tap's reading alone: the inventory, the evidence ring and the baselines have tests of their own,
        # and on a loaded CI machine their cost per (small) tap batch makes the sensor lag
        arguments = (
            "sensor", "run", "--tap", str(fifo), "--modbus-port", port, "--no-records",
            "--no-inventory", "--no-evidence", "--no-baselines",
        )  # fmt: skip
        result = plantwarden("--data-dir", str(tmp_path), *arguments, cwd=tmp_path, timeout=180)
    finally:
        plant_exit = plant.wait(timeout=30)
    # the sensor first: a sensor that stops early closes the FIFO, and the plant's next write fails
    assert result.returncode == 0, result.stdout + result.stderr
    assert plant_exit == 0, (tmp_path / "stdout.log").read_text() + (tmp_path / "stderr.log").read_text()
    pdus = re.search(r"Modbus PDUs +([\d,]+): ok ([\d,]+)", result.stdout)
    assert pdus is not None and int(pdus[1].replace(",", "")) > 100 and pdus[1] == pdus[2], result.stdout
    assert re.search(r"requests +[\d,]+: [\d,]+ answered", result.stdout)
