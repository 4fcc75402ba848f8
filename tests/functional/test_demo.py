"""`plantwarden demo` as a new user runs it: up within 30 seconds (the console answers, the plant
and the sensor run), an attack launched against the plant becomes an alert within 10 seconds and
the plant's own polls raise none, the PLCs' telemetry reaches the store through the demo's broker,
Ctrl-C stops every process."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import select

from plantwarden.accounts import totp
from plantwarden.alerts.models import Alert
from plantwarden.core.clock import SystemClock
from plantwarden.core.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import free_port, wait_for

UP_WITHIN, ALERT_WITHIN = 30.0, 10.0


def _healthy(port: int) -> bool | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return True if answer.status == 200 else None
    except OSError:
        return None


def _alerts(directory: Path) -> list[tuple[str, str]]:
    """(rule, title) of every alert in the demo's store."""
    runtime = Runtime(make_settings(directory), SystemClock())
    try:
        with runtime.store().transaction() as session:
            return [(rule, title) for rule, title in session.execute(select(Alert.rule_id, Alert.title))]
    finally:
        runtime.close()


def _form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found[1]


def _set_up_admin(console: httpx.Client, one_time: str) -> httpx.Response:
    """The first login of the demo's admin, as in a browser; the Exercises page at the end."""
    login = console.get("/login")
    answer = console.post(
        "/login", data={"username": "admin", "password": one_time, "csrf_token": _form_token(login.text)}
    )
    assert answer.url.path == "/account/password", answer.text[:2000]
    new = {"new_password": "a long and quiet valve", "repeat": "a long and quiet valve"}
    answer = console.post("/account/password", data={**new, "csrf_token": _form_token(answer.text)})
    assert answer.url.path == "/account/mfa", answer.text[:2000]
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', answer.text)
    assert secret is not None, answer.text[:2000]
    code = totp.code_at(totp.secret_from_base32(secret[1]), datetime.now(UTC))
    confirmed = console.post("/account/mfa", data={"code": code, "csrf_token": _form_token(answer.text)})
    assert confirmed.status_code == 200, confirmed.text[:2000]
    return console.get("/exercises")


def _telemetry(directory: Path) -> set[str]:
    """The devices with telemetry samples in the demo's store."""
    query = subprocess.run(
        [sys.executable, "-m", "plantwarden", "--data-dir", str(directory), "telemetry", "query",
         "--site", "riverside"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return {line.split()[1] for line in query.stdout.splitlines() if len(line.split()) > 2}


def test_the_demo_comes_up_raises_an_attacks_alert_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port, directory = free_port(), tmp_path / "demo"
    command = [sys.executable, "-m", "plantwarden", "--data-dir", str(tmp_path / "data"), "demo",
               "--dir", str(directory), "--port", str(port)]  # fmt: skip
    started = time.monotonic()
    demo = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    said: queue.Queue[str] = queue.Queue()
    assert demo.stderr is not None

    def drain() -> None:  # the demo's messages: they must never fill the pipe
        for line in demo.stderr or ():
            said.put(line)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_for(lambda: _healthy(port), timeout=UP_WITHIN, what="the demo's console")
        up = time.monotonic() - started
        lines = [said.get_nowait() for _ in range(said.qsize())]
        banner = "".join(lines)
        assert f"console:  http://127.0.0.1:{port}/" in banner, banner
        assert "login:    admin / " in banner and "one-time password" in banner, banner
        assert up <= UP_WITHIN
        # the plant runs and the sensor reads its tap: the attack goes through the plant's
        # control socket (its tap sees it) and the sensor's rules raise the alert
        # the demo's admin logs in with the one-time password, sets a password, enrols the second
        # factor, and launches the attack from the console's Exercises page
        one_time = re.search(r"login:    admin / (\S+)", banner)
        assert one_time is not None, banner
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, follow_redirects=True) as console:
            page = _set_up_admin(console, one_time[1])
            assert 'id="launch-out-of-range-setpoint"' in page.text, page.text[:2000]
            launched = time.monotonic()
            answer = console.post(
                "/exercises/out-of-range-setpoint", data={"csrf_token": _form_token(page.text)}
            )
            assert answer.status_code == 200 and "out-of-range-setpoint" in answer.text  # back on the page

        wait_for(
            lambda: True if "pw-setpoint-out-of-range" in dict(_alerts(directory)) else None,
            timeout=ALERT_WITHIN,
            what="the attack's alert",
        )
        assert time.monotonic() - launched <= ALERT_WITHIN
        # the plant's own polls are what its model allows (the demo moved its Modbus channels to
        # the port its PLCs serve): none of them is an alert
        hmi, historian = "127.10.1.10", "127.10.1.30"
        assert not [title for _, title in _alerts(directory) if hmi in title or historian in title]
        # the PLCs' telemetry goes through the demo's broker to the store (every 10 s)
        wait_for(lambda: _telemetry(directory) or None, timeout=30, what="the PLCs' telemetry in the store")
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
        finally:
            reader.join(5)
            demo.stderr.close()
    assert code == 0
    time.sleep(0.5)
    alive = subprocess.run(["pgrep", "-s", str(demo.pid)], capture_output=True, text=True, check=False)
    assert alive.stdout.strip() == "", f"processes left behind: {alive.stdout}"
