"""`plantwarden assets` over a store two sensor runs were saved into: the commands in process
(fast), and the mounted group with its error exit as a real process."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.core import migrate
from plantwarden.core.clock import SystemClock
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import PlantwardenError
from plantwarden.core.runtime import Runtime
from plantwarden.inventory.cli import assets_group
from plantwarden.inventory.store import save_inventory
from tests.conftest import make_settings
from tests.helpers import plantwarden
from tests.output_support import files_of, full_disk_after_commit
from tests.unit.inventory.store_support import (
    HMI,
    PLC,
    PLC_MAC,
    book_assets,
    by_ip,
    plc_role,
    polling_edge,
    polling_statistics,
    run_sightings,
)

FIRST, SECOND = 1_767_600_000, 1_767_700_000


def save_two_runs(data_dir: Path) -> None:
    store = Store.from_settings(make_settings(data_dir)[CoreSettings])
    migrate.ensure_ready(store)
    for start, firmware in ((FIRST, "33.11"), (SECOND, "34.01")):
        assets = book_assets(run_sightings(start, firmware))
        with store.transaction() as session:
            save_inventory(
                session,
                Context(source="test"),
                assets,
                [polling_edge(start)],
                [polling_statistics()],
                {by_ip(assets, PLC).id: plc_role()},
            )
    store.close()


class Provider:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def runtime(self) -> Runtime:
        return self._runtime


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    save_two_runs(tmp_path)
    runtime = Runtime(make_settings(tmp_path), SystemClock())
    yield Provider(runtime)
    runtime.close()


def run(provider: Provider, *args: str) -> str:
    result = CliRunner().invoke(assets_group, list(args), obj=provider, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_assets_list_show_and_export(provider: Provider, tmp_path: Path) -> None:
    lines = run(provider, "list").splitlines()
    assert lines[0].split()[:4] == ["id", "site", "ip", "mac"] and len(lines) == 3
    assert "Rockwell Automation" in lines[2] and lines[2].split()[2] == PLC
    listed = json.loads(run(provider, "list", "--role", "plc", "--format", "json"))
    assert [a["ips"][0]["address"] for a in listed] == [PLC]
    site = lines[2].split()[1]
    assert run(provider, "list", "--site", "elsewhere").strip() == (
        f"no assets at site 'elsewhere': the sites with assets are {site}"  # a misspelt site is told
    )
    assert run(provider, "list", "--site", site, "--role", "hmi").strip() == "no assets"

    text = run(provider, "show", PLC)
    assert f"macs: {PLC_MAC} (cell-a)" in text
    assert "role: plc (confidence 0.90)" in text and "- CIP identity: 1756-L83E" in text
    assert "firmware = 34.01  [cip_identity, 0.95, 2026-01-06 11:46:42 .. 2026-01-06 11:46:42]" in text
    assert "was 33.11  [cip_identity, 0.95, 2026-01-05 08:00:02 .. 2026-01-05 08:00:02]" in text
    assert "protocols as server: modbus" in text
    assert f"{HMI} -> {PLC} modbus: 120 requests, 2 flows" in text
    line = "function 3: 120 requests, 2 unanswered, 0 one-way, 4 exceptions, response median 3.0 ms, p95 6.0"
    assert line in text
    as_json = json.loads(run(provider, "show", listed[0]["id"], "--format", "json"))
    assert as_json["communications"][0]["functions"][0]["requests"] == 120

    exported = tmp_path / "assets.csv"
    assert "wrote 2 assets" in run(provider, "export", "--format", "csv", "-o", str(exported))
    rows = list(csv.DictReader(io.StringIO(exported.read_text())))
    assert [(r["ips"], r["role"], r["firmware"]) for r in rows] == [(HMI, "", ""), (PLC, "plc", "34.01")]
    dumped = json.loads(run(provider, "export"))
    assert len(dumped) == 2 and dumped[1]["history"]["firmware"][0]["value"] == "33.11"


def test_unknown_assets_are_refused_with_their_reason(provider: Provider) -> None:
    for key, message in (
        ("10.9.9.9", "no asset holds 10.9.9.9"),
        ("0190b7a4-0000-7000-8000-000000000000", "no asset 0190b7a4"),
        ("plc-1", "neither an asset id nor an IP address"),
    ):
        with pytest.raises(PlantwardenError, match=message):
            CliRunner().invoke(assets_group, ["show", key], obj=provider, catch_exceptions=False)


def test_the_mounted_command_lists_and_exits_1_on_an_unknown_asset(tmp_path: Path) -> None:
    save_two_runs(tmp_path)
    base = ("--data-dir", str(tmp_path), "assets")
    listed = plantwarden(*base, "list", "--format", "json", cwd=tmp_path)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 2
    missing = plantwarden(*base, "show", "10.9.9.9", cwd=tmp_path)
    assert missing.returncode == 1 and "error [asset_not_found]: no asset holds 10.9.9.9" in missing.stderr


@pytest.mark.parametrize("output", ["json", "csv"])
def test_export_keeps_the_file_it_would_replace_when_the_disk_fills_up(
    provider: Provider, tmp_path: Path, output: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    exported = out / f"assets.{output}"
    exported.write_text("the export of yesterday, kept\n" * 40, encoding="utf-8")
    before = files_of(out)
    args = ["export", "--format", output, "-o", str(exported)]
    with pytest.raises(OSError, match="File too large"), full_disk_after_commit(room=64):
        CliRunner().invoke(assets_group, args, obj=provider, catch_exceptions=False)
    assert files_of(out) == before
