"""The device agent and the platform's ingest as an operator runs them, all real processes: the
server (TLS, the platform CA), `plantwarden agent enroll` with a one-time token made through the
API, a Mosquitto configured by `plantwarden devices broker-config`, `plantwarden devices ingest`,
`plantwarden agent publish`, and what `devices telemetry` and `telemetry query` then show."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.functional.test_est import Platform, platform  # noqa: F401  (the module's server)
from tests.helpers import clean_environment, free_port, plantwarden, wait_for
from tests.unit.monitoring.test_telemetry_mqtt import _listening


def test_enrol_publish_ingest_and_status_from_the_command_line(platform: Platform, tmp_path: Path) -> None:  # noqa: F811
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.skip("the mosquitto binary is not installed (Debian package mosquitto)")
    device = platform.device(tmp_path / "device")
    token = platform.token(device)  # plc-7 of plant-a, zone cell-1, role operator
    data = ["--data-dir", str(platform.data_dir)]

    enrol = ["agent", "enroll", "--dir", "agent", "--api", platform.url, "--token", token]
    enrolled = plantwarden(*enrol, "--api-ca", "server.crt", cwd=device.directory)
    assert enrolled.returncode == 0, enrolled.stderr
    assert "enrolled plc-7 (site plant-a, zone cell-1, role operator)" in enrolled.stdout
    again = plantwarden(*enrol, "--api-ca", "server.crt", cwd=device.directory)
    assert again.returncode != 0 and "already holds an enrolled device" in again.stderr

    port = free_port()
    where = ["--host", "127.0.0.1", "--port", str(port), "--bind", "127.0.0.1", "--site", "plant-a"]
    config = plantwarden(
        *data, "devices", "broker-config", "--out", str(tmp_path / "broker"), *where, cwd=tmp_path
    )
    assert config.returncode == 0, config.stderr
    conf = tmp_path / "broker" / "mosquitto.conf"
    conf.write_text(conf.read_text() + f"user {os.getenv('USER') or 'root'}\n")
    with (tmp_path / "mosquitto.log").open("wb") as log:
        broker = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _listening(port), what="mosquitto")
        with (tmp_path / "ingest.out").open("w") as out, (tmp_path / "ingest.err").open("w") as err:
            ingest = subprocess.Popen(
                [sys.executable, "-m", "plantwarden", *data, "devices", "ingest", "--site", "plant-a",
                 "--broker", f"127.0.0.1:{port}", "--max-messages", "3", "--duration", "60"],
                cwd=tmp_path, env=clean_environment(None), stdout=out, stderr=err, text=True,
            )  # fmt: skip
        wait_for(lambda: "subscribed" in (tmp_path / "ingest.err").read_text() or None, what="the ingest")
        published = plantwarden(
            "agent", "publish", "--dir", "agent", "--broker", f"127.0.0.1:{port}",
            "--value", "level=12.5", "--value", "pressure=3.25", "--count", "3", "--interval", "0.05",
            cwd=device.directory,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        assert (
            "published 3 message(s) on plant-a/cell-1/plc-7/telemetry (epoch 1, last counter 3)"
            in published.stdout
        )
        assert ingest.wait(30) == 0, (tmp_path / "ingest.err").read_text()
    finally:
        broker.terminate()
        broker.wait(10)
    assert "3 messages (3 accepted); 6 samples written" in (tmp_path / "ingest.out").read_text()

    status = plantwarden(*data, "devices", "telemetry", "--site", "plant-a", "--format", "json", cwd=tmp_path)
    (row,) = json.loads(status.stdout)
    assert (row["device"], row["accepted"], row["duplicates"], row["replays"], row["refused"]) == (
        "plc-7",
        3,
        0,
        0,
        {},
    )
    query = plantwarden(*data, "telemetry", "query", "--site", "plant-a", "--device", "plc-7",
                        "--variable", "pressure", "--format", "json", cwd=tmp_path)  # fmt: skip
    assert query.returncode == 0, query.stderr
    assert [r["value"] for r in json.loads(query.stdout)] == [3.25, 3.25, 3.25]
    shown = plantwarden("agent", "status", "--dir", "agent", cwd=device.directory)
    assert "plc-7 (site plant-a, zone cell-1)" in shown.stdout and "role        operator" in shown.stdout

    renew = ["agent", "renew", "--dir", "agent", "--api", platform.url, "--api-ca", "server.crt"]
    early = plantwarden(*renew, "--if-due", cwd=device.directory)
    assert early.returncode == 0 and "not due: renewal starts" in early.stdout
    old_key = (device.directory / "agent" / "device.key").read_bytes()
    renewed = plantwarden(*renew, cwd=device.directory)
    assert renewed.returncode == 0 and "renewed: certificate" in renewed.stdout, renewed.stderr
    assert (device.directory / "agent" / "device.key").read_bytes() != old_key  # a new key
    listed = plantwarden(
        *data, "pki", "list", "--site", "plant-a", "--device", "plc-7", "--format", "json", cwd=tmp_path
    )
    assert sorted(c["status"] for c in json.loads(listed.stdout)) == ["superseded", "valid"]
