"""MAC vendors from the IEEE registries: both IEEE formats, longest prefix first, the shipped
data with its dates, and newer registries replacing shipped ones."""

from __future__ import annotations

import errno
import json
import os
from datetime import date
from pathlib import Path

import pytest

from plantwarden.cli.vendors import store_table
from plantwarden.protocols.identity.vendors import (
    BITS,
    INDEX_FILE,
    TABLE_FILE,
    RegistryError,
    VendorTable,
    load,
    mac_value,
    parse_registry_file,
    shipped,
)

CSV_MA_L = """Registry,Assignment,Organization Name,Organization Address
MA-L,001B1B,Siemens AG,Werner-von-Siemens-Str. Erlangen DE 91058
MA-L,70B3D5,IEEE Registration Authority,445 Hoes Lane Piscataway NJ US 08554
"""
CSV_MA_S = """Registry,Assignment,Organization Name,Organization Address
MA-S,70B3D5F2F,"TELEPLATFORMS","Polbina st., 3/1 Moscow  RU 109388 "
"""
TXT_MA_L = """OUI/MA-L                                                    Organization
company_id                                                  Organization
                                                            Address

00-0E-8C   (hex)\t\tSiemens AG
000E8C     (base 16)\t\tSiemens AG
\t\t\t\tAutomation & Drives
\t\t\t\tNuernberg    90475
\t\t\t\tDE

00-80-F4   (hex)\t\tTELEMECANIQUE ELECTRIQUE
0080F4     (base 16)\t\tTELEMECANIQUE ELECTRIQUE
\t\t\t\tRueil-Malmaison  92506
\t\t\t\tFR
"""
DAY = date(2026, 1, 2)


def test_both_formats_parse() -> None:
    (ma_l,) = parse_registry_file(CSV_MA_L, DAY, "oui.csv")
    assert ma_l.name == "MA-L" and ma_l.published == DAY
    assert ma_l.assignments == {0x001B1B: "Siemens AG", 0x70B3D5: "IEEE Registration Authority"}
    (txt,) = parse_registry_file(TXT_MA_L, DAY, "oui.txt")
    assert txt.assignments == {0x000E8C: "Siemens AG", 0x0080F4: "TELEMECANIQUE ELECTRIQUE"}
    assert parse_registry_file("\ufeff" + CSV_MA_S, DAY, "bom")[0].assignments == {
        0x70B3D5F2F: "TELEPLATFORMS"
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "neither"),
        ("hello\nworld\n", "neither"),
        ("Registry,Assignment,Organization Name\nXX-L,001B1B,A\n", "unknown registry"),
        ("Registry,Assignment,Organization Name\nMA-L,001B1,A\n", "not 24 bits"),
        ("Registry,Assignment,Organization Name\nMA-M,00ZZ1B1,A\n", "not 28 bits"),
        ("Registry,Assignment,Organization Name\n", "no assignments"),
    ],
)
def test_bad_files_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(RegistryError, match=reason):
        parse_registry_file(text, DAY, "bad")


def test_the_longest_prefix_wins_and_local_or_group_addresses_have_no_vendor() -> None:
    table = VendorTable(parse_registry_file(CSV_MA_L, DAY, "a") + parse_registry_file(CSV_MA_S, DAY, "b"))
    assert table.lookup("70:b3:d5:f2:f0:01") == "TELEPLATFORMS"
    assert table.lookup("70-B3-D5-F2-E0-01") == "IEEE Registration Authority"
    assert table.lookup("001b.1b00.0001") == "Siemens AG"
    assert table.lookup(bytes.fromhex("001b1b000001")) == "Siemens AG"
    assert table.lookup(0x001B1B000001) == "Siemens AG"
    assert table.lookup("02:1b:1b:00:00:01") is None  # locally administered
    assert table.lookup("01:1b:1b:00:00:01") is None  # group
    assert table.lookup("00:00:00:00:00:01") is None


@pytest.mark.parametrize("bad", ["00:1b:1b:00:00", "00:1b:1b:00:00:0g", b"\x00" * 5, -1, 1 << 48])
def test_a_malformed_mac_is_a_value_error(bad: str | bytes | int) -> None:
    with pytest.raises(ValueError, match=r"MAC|48-bit|6 bytes"):
        mac_value(bad)


def test_the_shipped_registries_carry_their_dates_and_known_vendors() -> None:
    table = shipped()
    assert set(table.registries) == set(BITS)
    assert table.registries["MA-L"].published == date(2024, 5, 20)
    assert all(r.published >= date(2022, 8, 27) for r in table.registries.values())
    assert len(table.registries["MA-L"].assignments) > 30_000
    assert table.lookup("00:0e:8c:00:00:01") == "Siemens AG"  # a Siemens PLC
    assert "Rockwell" in (table.lookup("00:00:bc:00:00:01") or "")  # Allen-Bradley
    assert table.lookup("00:80:f4:00:00:01") == "TELEMECANIQUE ELECTRIQUE"  # Schneider's Modicon


def test_a_stored_table_round_trips_and_replaces_shipped_registries(tmp_path: Path) -> None:
    newer = parse_registry_file(CSV_MA_L, date(2030, 1, 1), "oui.csv")
    store_table(VendorTable(newer), tmp_path)
    merged = load(tmp_path)
    assert merged.registries["MA-L"].published == date(2030, 1, 1)
    assert merged.registries["MA-L"].assignments == newer[0].assignments
    assert merged.registries["MA-M"] == shipped().registries["MA-M"]
    assert load(tmp_path / "absent").registries == shipped().registries


def test_a_damaged_stored_table_is_a_clear_error(tmp_path: Path) -> None:
    store_table(VendorTable(parse_registry_file(CSV_MA_L, DAY, "oui.csv")), tmp_path)
    (table,) = tmp_path.glob("ieee-registries*.csv.gz")
    table.write_bytes(b"not gzip")
    with pytest.raises(RegistryError, match="damaged"):
        load(tmp_path)


def test_an_update_that_fails_part_way_leaves_the_last_whole_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table and its index are two files: the index, written last, names the table, so a
    failure before it leaves the old pair, and one after it the new pair, never a mix."""
    first = parse_registry_file(CSV_MA_L, DAY, "oui.csv")
    store_table(VendorTable(first), tmp_path)
    newer = [
        *parse_registry_file(CSV_MA_L, date(2031, 1, 1), "oui.csv"),
        *parse_registry_file(CSV_MA_S, DAY, "mam"),
    ]
    real_replace = os.replace

    def full_disk_at_the_index(source: str | Path, target: str | Path) -> None:
        if Path(target).name == INDEX_FILE:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", full_disk_at_the_index)
    with pytest.raises(OSError, match="No space"):
        store_table(VendorTable(newer), tmp_path)
    monkeypatch.setattr(os, "replace", real_replace)
    kept = load(tmp_path)
    assert kept.registries["MA-L"].published == DAY
    assert kept.registries["MA-S"] == shipped().registries["MA-S"]
    store_table(VendorTable(newer), tmp_path)
    assert load(tmp_path).registries["MA-L"].published == date(2031, 1, 1)
    assert len(list(tmp_path.glob("ieee-registries*.csv.gz"))) == 1  # the tables no index names go
    assert not list(tmp_path.glob(".*.partial"))


def test_a_table_stored_before_the_index_named_it_still_loads(tmp_path: Path) -> None:
    data, registries = VendorTable(parse_registry_file(CSV_MA_L, date(2030, 1, 1), "oui.csv")).stored()
    (tmp_path / TABLE_FILE).write_bytes(data)
    (tmp_path / INDEX_FILE).write_text(json.dumps(registries))
    assert load(tmp_path).registries["MA-L"].published == date(2030, 1, 1)
    store_table(VendorTable(parse_registry_file(CSV_MA_L, date(2031, 1, 1), "oui.csv")), tmp_path)
    assert not (tmp_path / TABLE_FILE).exists()
    assert load(tmp_path).registries["MA-L"].published == date(2031, 1, 1)


def test_an_index_naming_a_missing_table_is_a_clear_error(tmp_path: Path) -> None:
    store_table(VendorTable(parse_registry_file(CSV_MA_L, DAY, "oui.csv")), tmp_path)
    for table in tmp_path.glob("ieee-registries*.csv.gz"):
        table.unlink()
    with pytest.raises(RegistryError, match="damaged"):
        load(tmp_path)
