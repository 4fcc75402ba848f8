"""Options of the device commands that would change nothing are usage errors before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.devices.agent import AgentError
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


@pytest.mark.parametrize("content", [b"", b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", b"version: 1\nsites: []\n"])
def test_an_api_ca_that_holds_no_certificate_is_refused_naming_it(content: bytes, tmp_path: Path) -> None:
    # it ended as "error [os_error]: [X509: NO_CERTIFICATE_OR_CRL_FOUND] ... (_ssl.c:4154)"
    ca = tmp_path / "server.crt"
    ca.write_bytes(content)
    api = f"https://127.0.0.1:{free_port()}"
    arguments = [
        "enroll",
        "--token",
        "t",
        "--dir",
        str(tmp_path / "agent"),
        "--api",
        api,
        "--api-ca",
        str(ca),
    ]
    result = CliRunner().invoke(agent_group, arguments)
    assert isinstance(result.exception, AgentError)
    assert result.exception.message == f"--api-ca {ca}: no CA certificate in it (expected PEM certificates)"
