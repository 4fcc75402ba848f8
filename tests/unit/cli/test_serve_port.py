"""`plantwarden serve --port` and `up --port` take a TCP port (1-65535), as the setting
`server.port` does: 0 fell back to the configured port without a word."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.cli.main import cli


@pytest.mark.parametrize("command", ["serve", "up"])
@pytest.mark.parametrize("port", ["0", "65536"])
def test_a_port_out_of_range_is_refused_before_any_work(tmp_path: Path, command: str, port: str) -> None:
    not_a_directory = tmp_path / "data"
    not_a_directory.write_text("")  # any work fails at once on it, so a refusal is before any
    result = CliRunner().invoke(cli, ["--data-dir", str(not_a_directory), command, "--port", port])
    assert result.exit_code == 2, (result.output, result.exception)
    assert f"Invalid value for '--port': {port} is not in the range 1<=x<=65535" in result.output
