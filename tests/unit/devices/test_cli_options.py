"""Options of the device commands that would change nothing are usage errors before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.devices.cli import agent_group
from tests.helpers import free_port


@pytest.mark.parametrize("command", [["enroll", "--token", "t"], ["renew"]])
def test_an_api_ca_with_a_plain_http_api_is_a_usage_error(command: list[str], tmp_path: Path) -> None:
    # plain http (allowed on loopback) has no TLS for the CA to verify: it was silently unused
    ca = tmp_path / "server.crt"
    ca.write_text("not read: refused before")
    directory = tmp_path / "agent"
    api = f"http://127.0.0.1:{free_port()}"
    arguments = [*command, "--dir", str(directory), "--api", api, "--api-ca", str(ca)]
    result = CliRunner().invoke(agent_group, arguments)
    assert result.exit_code == 2, result.output
    assert "--api-ca goes with an https:// --api" in result.output
    assert not directory.exists()
