"""tshark as the independent reader of the captures Plantwarden writes.

tshark comes from Debian (scripts/debian-packages.txt); where it is missing the tests that need
it skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
CHECKSUMS = ("-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE")
SEVERITY_ERROR = 0x00800000
"""Wireshark's PI_ERROR: malformed packets, bad checksums, dissector failures."""


def tshark() -> str:
    """The tshark binary; skips (fails under CI) when it is not installed."""
    path = shutil.which("tshark")
    if path is None:
        message = "tshark is not installed (apt-get install tshark; scripts/test installs it as root)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def fields(
    capture: Path, names: list[str], display_filter: str = "", decode_as: tuple[str, ...] = ()
) -> list[list[str]]:
    """One row per frame: the values of `names` (several occurrences joined by commas).

    `decode_as` takes tshark's rules, e.g. `tcp.port==5020,mbtcp` for Modbus on another port.
    """
    command = [tshark(), "-n", "-r", str(capture), *CHECKSUMS, "-T", "fields"]
    for rule in decode_as:
        command += ["-d", rule]
    for name in names:
        command += ["-e", name]
    if display_filter:
        command += ["-Y", display_filter]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    return [line.split("\t") for line in result.stdout.splitlines()]


def counts(column: str) -> Counter[str]:
    """How often each comma-separated value occurs in a field column's cell."""
    return Counter(value for value in column.split(",") if value)
