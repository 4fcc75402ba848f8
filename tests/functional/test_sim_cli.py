"""`plantwarden sim run` and `sim attack` as a user runs them: the attack goes through the running
plant, so that its tap shows it."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

from tests.helpers import plantwarden, start_plantwarden, wait_for
from tests.tshark_support import fields


def test_an_attack_through_the_running_plant_shows_in_its_tap(tmp_path: Path) -> None:
    tap = tmp_path / "tap.pcapng"
    arguments = (
        "--data-dir",
        str(tmp_path),
        "sim",
        "run",
        "--port",
        "0",
        "--broker",
        "off",
        "--tap",
        str(tap),
    )
    plant = start_plantwarden(*arguments, "--duration", "60", cwd=tmp_path)
    try:
        wait_for(lambda: True if (tmp_path / "sim" / "control.sock").exists() else None, what="the plant")
        attack = plantwarden("--data-dir", str(tmp_path), "sim", "attack", "unauthorized-write", cwd=tmp_path)
    finally:
        plant.send_signal(signal.SIGINT)
        assert plant.wait(timeout=20) == 0
    assert attack.returncode == 0, attack.stderr
    assert "the running plant carried out unauthorized-write" in attack.stderr
    record = json.loads(attack.stdout)
    assert [action["result"] for action in record["actions"]] == ["answered", "answered"]
    output = (tmp_path / "stdout.log").read_text()
    port = re.search(r"PLC tank-1 +Modbus/TCP 127\.10\.2\.11:(\d+)", output)
    assert port is not None, output
    assert "stopped: polls" in output and not (tmp_path / "sim" / "control.sock").exists()
    office = f"tcp.port == {port[1]} && ip.src == 127.10.0.10"
    writes = fields(tap, ["ip.src", "modbus.func_code"], office, (f"tcp.port=={port[1]},mbtcp",))
    codes = {code for row in writes for code in row[1].split(",") if code}
    assert {"5", "6"} <= codes


def test_a_port_is_refused_when_the_attack_would_go_through_the_running_plant(tmp_path: Path) -> None:
    # the running plant attacks its PLCs on their own ports: --port changed nothing there
    arguments = ("--data-dir", str(tmp_path), "sim", "run", "--port", "0", "--broker", "off")
    plant = start_plantwarden(*arguments, "--duration", "60", cwd=tmp_path)
    try:
        wait_for(lambda: True if (tmp_path / "sim" / "control.sock").exists() else None, what="the plant")
        attack = plantwarden(
            "--data-dir", str(tmp_path), "sim", "attack", "unauthorized-write", "--port", "1", cwd=tmp_path
        )
    finally:
        plant.send_signal(signal.SIGINT)
        assert plant.wait(timeout=20) == 0
    assert attack.returncode == 2, attack.stderr
    assert "--port needs --standalone when a plant runs" in attack.stderr
    assert "carried out" not in attack.stderr and attack.stdout == ""
    assert "0 writes" in (tmp_path / "stdout.log").read_text()  # the plant carried out no attack


def test_an_attack_with_no_plant_to_attack_says_so(tmp_path: Path) -> None:
    result = plantwarden(
        "--data-dir", str(tmp_path), "sim", "attack", "unauthorized-write", "--port", "1", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "nothing answered" in result.stderr and "plantwarden sim run" in result.stderr


def test_scenarios_lists_every_attack(tmp_path: Path) -> None:
    result = plantwarden("sim", "scenarios", cwd=tmp_path)
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == [
        "scan",
        "unauthorized-write",
        "out-of-range-setpoint",
        "plc-stop",
        "console-brute-force",
        "tampered-telemetry",
        "drifting-sensor",
    ]


def test_a_tap_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    tap = str(tmp_path / "no" / "tap.pcapng")
    result = plantwarden(
        "--data-dir", str(tmp_path), "sim", "run", "--tap", tap, "--duration", "1", cwd=tmp_path
    )
    assert result.returncode == 2 and "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_an_attack_through_a_gateway_needs_the_running_plant(tmp_path: Path) -> None:
    # only the running plant knows its PLCs' unit ids, which the gateway routes by
    result = plantwarden(
        "--data-dir", str(tmp_path), "sim", "attack", "out-of-range-setpoint", "--gateway", "127.0.0.1:1",
        "--standalone", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2 and "--gateway needs the running plant" in result.stderr
    assert "Traceback" not in result.stderr
