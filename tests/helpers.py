"""Helpers for tests that run Plantwarden as a real process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def taken_port() -> Iterator[int]:
    """A port of 127.0.0.1 another program listens on, for the length of the `with` block."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port: int = taken.getsockname()[1]
        yield port


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any PLANTWARDEN_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTWARDEN_")}
    env.update(extra or {})
    return env


def plantwarden(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m plantwarden ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "plantwarden", *args],
        cwd=cwd,
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_plantwarden(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `python -m plantwarden ARGS` in the background; stderr and stdout go to files in cwd."""
    with (cwd / "stdout.log").open("w") as stdout, (cwd / "stderr.log").open("w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "plantwarden", *args],
            cwd=cwd,
            env=clean_environment(env),
            stdout=stdout,
            stderr=stderr,
            text=True,
        )


def wait_for(check: Callable[[], T | None], *, timeout: float = 30, what: str = "condition") -> T:
    """Poll `check` until it returns something other than None (or raises AssertionError on time-out)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, ValueError, KeyError) as error:
            last_error, result = error, None
        if result is not None:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


def console_up(port: int) -> bool | None:
    """True when the server on 127.0.0.1:`port` answers /healthz (for `wait_for`), else None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return True if answer.status == 200 else None
    except OSError:
        return None
