"""`plantwarden serve --port` and `up --port` take a TCP port (1-65535), as the setting
`server.port` does: 0 fell back to the configured port without a word."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.cli.main import cli
from plantwarden.core.errors import ConfigurationError
from plantwarden.core.listen import listening_socket
from tests.helpers import free_port, plantwarden, taken_port


@pytest.mark.parametrize("command", ["serve", "up"])
@pytest.mark.parametrize("port", ["0", "65536"])
def test_a_port_out_of_range_is_refused_before_any_work(tmp_path: Path, command: str, port: str) -> None:
    not_a_directory = tmp_path / "data"
    not_a_directory.write_text("")  # any work fails at once on it, so a refusal is before any
    result = CliRunner().invoke(cli, ["--data-dir", str(not_a_directory), command, "--port", port])
    assert result.exit_code == 2, (result.output, result.exception)
    assert f"Invalid value for '--port': {port} is not in the range 1<=x<=65535" in result.output


@pytest.mark.parametrize("command", ["serve", "up"])
def test_an_address_in_use_is_one_clear_error_not_a_restart_loop(tmp_path: Path, command: str) -> None:
    """uvicorn's 'address already in use' came after 'serving the console at', exit status 3, and
    `plantwarden up` restarted the server forever; now both stop at once, naming the address."""
    with taken_port() as port:
        result = plantwarden(
            "--data-dir", str(tmp_path / "data"), command, "--port", str(port), cwd=tmp_path, timeout=60
        )
    assert result.returncode == 1, result.stderr
    assert (
        f"error [configuration_error]: cannot listen on 127.0.0.1:{port}: Address already in use"
        in result.stderr
    )
    assert "serving the console" not in result.stderr
    assert "started server" not in result.stderr  # `up` starts no process


def test_an_address_not_of_this_host_is_named() -> None:
    with pytest.raises(
        ConfigurationError, match=r"cannot listen on 203\.0\.113\.7:8000: Cannot assign requested"
    ):
        listening_socket("203.0.113.7", 8000)
    sock = listening_socket("127.0.0.1", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


def test_up_checks_the_gateway_s_listener_before_starting_anything(tmp_path: Path) -> None:
    """With the gateway in the settings, an address in use had it restarted again and again."""
    with taken_port() as port:
        gateway = {
            "PLANTWARDEN_GATEWAY_PLANT": str(tmp_path / "plant.yaml"),
            "PLANTWARDEN_GATEWAY_SITE": "plant-a",
            "PLANTWARDEN_GATEWAY_LISTEN": f"127.0.0.1:{port}",
        }
        result = plantwarden(
            "--data-dir",
            str(tmp_path / "data"),
            "up",
            "--port",
            str(free_port()),
            cwd=tmp_path,
            env=gateway,
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    assert (
        f"cannot listen on 127.0.0.1:{port}: Address already in use (setting gateway.listen;" in result.stderr
    )
    assert "started" not in result.stderr
