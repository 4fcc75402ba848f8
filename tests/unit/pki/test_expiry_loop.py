"""`plantwarden pki check-expiry --every` as `plantwarden up` runs it: a process that checks at
each interval, says so without a CA, and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_environment, plantwarden, wait_for
from tests.unit.pki.support import PASSPHRASE


def test_check_expiry_every_interval_until_sigterm(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    args = [sys.executable, "-m", "plantwarden", *data, "pki", "check-expiry", "--every", "1s"]
    with (tmp_path / "out").open("w") as out, (tmp_path / "err").open("w") as err:
        process = subprocess.Popen(args, cwd=tmp_path, env=clean_environment(None), stdout=out, stderr=err)
    try:
        wait_for(
            lambda: "no platform CA yet" in (tmp_path / "err").read_text() or None,
            what="a first check",
            timeout=90,
        )
        (tmp_path / "pass").write_bytes(PASSPHRASE)
        made = plantwarden(*data, "pki", "init", "--passphrase-file", str(tmp_path / "pass"), cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        wait_for(lambda: (tmp_path / "out").read_text().count(" within 14 days") >= 2 or None,
                 what="two checks with the CA", timeout=90)  # fmt: skip
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, (tmp_path / "err").read_text()
