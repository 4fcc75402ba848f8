"""The server and the supervisor as real processes on real sockets."""

from __future__ import annotations

import json
import os
import signal
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port, plantwarden, start_plantwarden, wait_for


def get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def stop(process: object) -> int:
    import subprocess

    assert isinstance(process, subprocess.Popen)
    process.send_signal(signal.SIGINT)
    return int(process.wait(timeout=20))


def test_serve_answers_on_loopback_with_plain_http(tmp_path: Path) -> None:
    port = free_port()
    server = start_plantwarden("--data-dir", str(tmp_path), "serve", "--port", str(port), cwd=tmp_path)
    try:
        status, body = wait_for(lambda: get(f"http://127.0.0.1:{port}/readyz"), what="readiness")
        assert status == 200 and json.loads(body)["status"] == "ready"
        status, page = get(f"http://127.0.0.1:{port}/")  # not logged in: sent to the login page
        assert status == 200 and "<h1>Log in</h1>" in page
    finally:
        assert stop(server) == 0
    log = (tmp_path / "stderr.log").read_text()
    assert f"serving the console at http://127.0.0.1:{port}/" in log


def test_serve_off_loopback_uses_tls(tmp_path: Path) -> None:
    port = free_port()
    server = start_plantwarden(
        "--data-dir",
        str(tmp_path),
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        cwd=tmp_path,
    )
    try:
        cert = wait_for(
            lambda: (tmp_path / "tls" / "server.crt") if (tmp_path / "tls" / "server.key").exists() else None
        )
        context = ssl.create_default_context(cafile=str(cert))
        status, body = wait_for(lambda: get(f"https://localhost:{port}/healthz", context), what="TLS health")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            get(f"http://127.0.0.1:{port}/healthz")
    finally:
        assert stop(server) == 0


def test_plain_http_off_loopback_is_refused(tmp_path: Path) -> None:
    result = plantwarden(
        "--data-dir",
        str(tmp_path),
        "serve",
        "--host",
        "0.0.0.0",
        "--tls",
        "off",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "plain HTTP is allowed only on loopback" in result.stderr


def test_up_restarts_a_crashed_server_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    supervisor = start_plantwarden("--data-dir", str(tmp_path), "up", "--port", str(port), cwd=tmp_path)
    state_file = tmp_path / "run" / "supervisor.json"

    def server_pid() -> int | None:
        pid = json.loads(state_file.read_text())["processes"]["server"]["pid"]
        return int(pid) if pid else None

    try:
        first = wait_for(server_pid, what="server start")
        assert wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz"), what="health")[0] == 200
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: p if (p := server_pid()) not in (None, first) else None, what="restart")
        assert wait_for(lambda: get(f"http://127.0.0.1:{port}/readyz"), what="ready again")[0] == 200
        assert json.loads(state_file.read_text())["processes"]["server"]["restarts"] == 1
    finally:
        code = stop(supervisor)
    assert code == 0
    state = json.loads(state_file.read_text())
    assert state["stopped"] is True and state["processes"]["server"]["pid"] is None
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)
