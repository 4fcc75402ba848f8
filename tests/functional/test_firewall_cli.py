"""`plantwarden firewall render` and `drift` on the example plant, against a real nft."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.zones.firewall.cli import firewall_group
from tests.output_support import files_of, full_disk

RIVERSIDE = Path(__file__).resolve().parents[2] / "examples" / "riverside" / "plant.yaml"


@pytest.fixture
def namespace() -> Iterator[str]:
    if os.geteuid() != 0 or not shutil.which("nft"):
        if os.environ.get("CI") == "true":
            pytest.fail("these tests need root and nft")
        pytest.skip("these tests need root and nft")
    name = f"pwfc{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True, timeout=30)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(firewall_group, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_render_writes_a_script_nft_accepts_and_drift_finds_nothing_then_a_change(
    namespace: str, tmp_path: Path
) -> None:
    script = tmp_path / "riverside.nft"
    rendered = CliRunner().invoke(firewall_group, ["render", "--plant", str(RIVERSIDE), "-o", str(script)])
    assert rendered.exit_code == 0 and f"wrote {script}" in rendered.stderr
    assert rendered.stdout == ""  # standard output is for the script only
    subprocess.run(["ip", "netns", "exec", namespace, "nft", "-f", str(script)], check=True, timeout=60)
    code, output = run("drift", "--plant", str(RIVERSIDE), "--running", "--netns", namespace)
    assert (code, output.strip()) == (
        0,
        "no drift: the ruleset is what site riverside's model compiles to (normal)",
    )

    listing = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            namespace,
            "env",
            "TZ=UTC",
            "nft",
            "-j",
            "list",
            "table",
            "inet",
            "plantwarden",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    document = json.loads(listing)
    document["nftables"] = [
        item
        for item in document["nftables"]
        if item.get("rule", {}).get("comment") != "conduit plant-services channel ntp"
    ]
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(document))
    code, output = run("drift", "--plant", str(RIVERSIDE), "--file", str(exported))
    assert code == 1
    assert "1 difference(s)" in output and "missing: conduit plant-services channel ntp: " in output


def test_island_render_and_usage_errors(tmp_path: Path) -> None:
    code, output = run("render", "--plant", str(RIVERSIDE), "--variant", "island", "--zone", "cell-a")
    assert code == 0 and 'comment "island zone cell-a"' in output
    usage = CliRunner().invoke(firewall_group, ["drift", "--plant", str(RIVERSIDE)])
    assert usage.exit_code == 2 and "give exactly one of --running and --file" in usage.output
    result = CliRunner().invoke(firewall_group, ["render", "--plant", str(RIVERSIDE), "--variant", "island"])
    assert result.exit_code == 1 and "island variant needs the zone" in str(result.exception)


@pytest.mark.parametrize(
    ("output", "problem"), [("", "'.' is a directory"), ("no/x.nft", "is not in an existing directory")]
)
def test_render_to_a_file_that_cannot_be_written_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, problem: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(firewall_group, ["render", "--plant", str(RIVERSIDE), "-o", output])
    assert result.exit_code == 2 and result.exception is not None
    assert "Invalid value for '-o' / '--output': " in result.output and problem in result.output


def test_render_keeps_the_script_it_would_replace_when_the_disk_fills_up(tmp_path: Path) -> None:
    """No nft needed: the ruleset loaded now stays in the file until a whole new one replaces it."""
    script = tmp_path / "riverside.nft"
    script.write_text("table inet plantwarden {}  # the ruleset in force\n" * 20, encoding="utf-8")
    before = files_of(tmp_path)
    with pytest.raises(OSError, match="File too large"), full_disk():
        run("render", "--plant", str(RIVERSIDE), "-o", str(script))
    assert files_of(tmp_path) == before
