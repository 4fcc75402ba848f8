"""`plantwarden vendors`: show the registries, look up addresses, take a newer registry file."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import plantwarden
from tests.unit.protocols.identity.test_vendors import CSV_MA_L


def test_show_lookup_and_update(tmp_path: Path) -> None:
    base = ("--data-dir", str(tmp_path), "vendors")
    shown = plantwarden(*base, "show", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "MA-L  published 2024-05-20" in shown.stdout and "shipped" in shown.stdout
    found = plantwarden(*base, "lookup", "00:0e:8c:01:02:03", "02:00:00:00:00:01", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines() == [
        "00:0e:8c:01:02:03  Siemens AG",
        "02:00:00:00:00:01  (unknown: not assigned, or locally administered)",
    ]
    bad = plantwarden(*base, "lookup", "00:0e:8c", cwd=tmp_path)
    assert bad.returncode == 2 and "not a MAC address" in bad.stderr

    registry = tmp_path / "oui.csv"
    registry.write_text(CSV_MA_L.replace("Siemens AG", "Siemens AG (newer)").replace("001B1B", "000E8C"))
    older = plantwarden(*base, "update", str(registry), "--published", "2023-01-01", cwd=tmp_path)
    assert older.returncode == 1 and "older than the one in use (2024-05-20)" in older.stderr
    os.utime(registry, (1_900_000_000, 1_900_000_000))  # 2030-03-17: the file's date is the default
    updated = plantwarden(*base, "update", str(registry), cwd=tmp_path)
    assert updated.returncode == 0, updated.stderr
    assert "MA-L: 2 assignments, published 2030-03-17" in updated.stdout
    found = plantwarden(*base, "lookup", "00:0e:8c:01:02:03", "00:50:c2:7d:50:00", cwd=tmp_path)
    assert found.stdout.splitlines() == [
        "00:0e:8c:01:02:03  Siemens AG (newer)",
        "00:50:c2:7d:50:00  DEUTA-WERKE GmbH",
    ]
    shown = plantwarden(*base, "show", cwd=tmp_path)
    assert "MA-L  published 2030-03-17" in shown.stdout and "updated" in shown.stdout
    assert "MA-M  published 2022-08-27" in shown.stdout

    broken = tmp_path / "broken.csv"
    broken.write_text("Registry,Assignment,Organization Name\nMA-L,12,A\n")
    refused = plantwarden(*base, "update", str(broken), cwd=tmp_path)
    assert refused.returncode == 1 and "not 24 bits" in refused.stderr
