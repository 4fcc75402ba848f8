"""The inventory end to end: `sensor run` builds and saves it, `assets show` and `assets list`
read it back, `sensor evidence` cuts the kept packets.

On the shared captures that carry device identity, what `assets show` says of each device's
vendor, model, firmware and serial equals what tshark decodes from the same packets (tshark's
values are read by the identity test's functions). On the generated plant, every host of the
simulator's ground truth is listed with its role, a second run of the same traffic continues the
same assets, and the evidence slice of one host holds the packets tshark finds for it.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from plantwarden.capture.pcap import read_capture
from plantwarden.cli.main import cli
from plantwarden.core import migrate
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import PlantwardenError
from plantwarden.inventory.cli import _cell, printable
from plantwarden.inventory.queries import AssetFilter, EdgeFilter, list_assets, list_edges
from plantwarden.inventory.store import save_inventory
from plantwarden.monitoring.inventory_feed import InventoryFeed
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.sensor import Sensor, SensorOptions
from plantwarden.sim.behaviour import VENDOR
from plantwarden.sim.traffic.generator import generate
from tests.conftest import make_settings
from tests.functional.test_protocol_sightings import (
    Fact,
    bacnet_theirs,
    capture,
    cip_theirs,
    modbus_theirs,
    s7_theirs,
)
from tests.tshark_support import tshark

SITE, SEGMENT = "plant", "cell"
COMPARED = ("vendor", "model", "firmware", "serial")
CONTEXT = Context(source="test")


def run(data_dir: Path, *args: str) -> str:
    """`plantwarden --data-dir DATA ARGS` in this process; its output (it must succeed)."""
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def shown_asset(data_dir: Path, ip: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        run(data_dir, "assets", "show", ip, "--site", SITE, "--format", "json")
    )
    return found


@pytest.mark.parametrize(
    ("relative", "theirs_of"),
    [
        ("cisagov-icsnpp/enip/enip_cip_example.pcap", cip_theirs),
        ("iti-ics-security-tools/enip-cip/quickdraw/EIP-RebootorRestart.pcap", cip_theirs),
        ("cisagov-icsnpp/modbus/modbus_example.pcap", modbus_theirs),
        ("cisagov-icsnpp/s7comm/s7ident.pcap", s7_theirs),
        ("cisagov-icsnpp/bacnet/bacnet_example.pcap", bacnet_theirs),
    ],
)
def test_assets_show_gives_the_identity_tshark_decodes(
    tmp_path: Path, relative: str, theirs_of: Callable[[Path], set[Fact]]
) -> None:
    path = capture(relative)
    expected: dict[tuple[str, str], set[str]] = defaultdict(set)
    for _, ip, name, value in theirs_of(path):
        if name in COMPARED:
            expected[ip, name].add(value)
    assert expected, f"tshark decodes no vendor, model, firmware or serial in {relative}"
    summary = run(tmp_path, "sensor", "run", "--pcap", str(path), "--site", SITE, "--segment", SEGMENT)
    assert "inventory" in summary
    for (ip, name), values in sorted(expected.items()):
        asset = shown_asset(tmp_path, ip)
        ours = {asset["facts"][name]["value"], *(fact["value"] for fact in asset["history"].get(name, []))}
        assert ours == values, (ip, name)
        if len(values) == 1:  # one value reported: it is the current one
            assert asset["facts"][name]["value"] == next(iter(values)), (ip, name)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    generated = generate(tmp_path_factory.mktemp("plant") / "plant.pcap", seed=11, packets=20_000)
    return generated.capture, json.loads(Path(generated.ledger_path).read_text(encoding="utf-8"))


def test_sensor_run_saves_the_plant_s_assets_with_their_roles(
    tmp_path: Path, plant: tuple[Path, dict[str, Any]]
) -> None:
    capture_path, ledger = plant
    summary = run(
        tmp_path, "sensor", "run", "--pcap", str(capture_path), "--site", SITE, "--segment", SEGMENT
    )
    hosts = len(ledger["hosts"])
    assert f"{hosts} assets seen ({hosts} new, 0 changed)" in summary
    listed = json.loads(run(tmp_path, "assets", "list", "--site", SITE, "--format", "json"))
    roles = {address["address"]: asset["role"] for asset in listed for address in asset["ips"]}
    assert roles == {host["ip"]: host["role"] for host in ledger["hosts"]}
    identified = [asset for asset in listed if "vendor" in asset["facts"]]
    assert identified, "the engineering workstation identified no PLC in this capture"
    assert {asset["facts"]["vendor"]["value"] for asset in identified} == {VENDOR}

    again = run(tmp_path, "sensor", "run", "--pcap", str(capture_path), "--site", SITE, "--segment", SEGMENT)
    assert f"{hosts} assets seen (0 new, 0 changed)" in again
    relisted = json.loads(run(tmp_path, "assets", "list", "--site", SITE, "--format", "json"))
    assert sorted(asset["id"] for asset in relisted) == sorted(asset["id"] for asset in listed)


def test_the_evidence_slice_of_a_host_holds_its_packets(
    tmp_path: Path, plant: tuple[Path, dict[str, Any]]
) -> None:
    capture_path, _ = plant
    plc = "127.10.2.11"
    run(
        tmp_path, "sensor", "run", "--pcap", str(capture_path), "--evidence", "--no-inventory", "--no-records"
    )
    sliced = tmp_path / "slice.pcap"
    said = run(tmp_path, "sensor", "evidence", "--host", plc, "-o", str(sliced))
    assert str(sliced) in said

    def frames(path: Path) -> list[str]:
        command = [
            tshark(),
            "-r",
            str(path),
            "-Y",
            f"ip.addr == {plc}",
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
        ]
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout.split()

    kept, original = frames(sliced), frames(capture_path)
    assert kept == original
    assert f"{len(kept):,} packets" in said


def test_evidence_of_a_sensor_that_kept_none_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--data-dir",
            str(tmp_path),
            "sensor",
            "evidence",
            "--site",
            "nowhere",
            "-o",
            str(tmp_path / "x.pcap"),
        ],
    )
    assert result.exit_code != 0
    assert "nowhere" in result.output or "nowhere" in str(result.exception)


def saved_inventory(data_dir: Path, capture_path: Path, saves_every: int | None) -> dict[str, Any]:
    """Run the sensor and its feed over the capture, saving every `saves_every` batches (and at
    the end) as `sensor run --save-every` does; what the store then holds."""
    store = Store.from_settings(make_settings(data_dir)[CoreSettings])
    migrate.ensure_ready(store)
    feed = InventoryFeed(SITE, SEGMENT)
    sensor = Sensor(SensorOptions(site=SITE, segment=SEGMENT), feed, tuple(PROTOCOLS.values()), True)

    def save() -> None:
        snapshot = feed.snapshot()
        with store.transaction() as session:
            save_inventory(
                session, CONTEXT, snapshot.assets, snapshot.edges, snapshot.statistics, snapshot.roles
            )

    for index, batch in enumerate(read_capture(capture_path, batch_size=2048), start=1):
        feed.observe(sensor, batch, sensor.process(batch))
        if saves_every is not None and index % saves_every == 0:
            save()
            feed.new_period()
    sensor.finish()
    save()
    with store.transaction() as session:
        assets = {(a.id, a.role) for a in list_assets(session, AssetFilter(limit=10_000))}
        edges = {
            (e.edge.client, e.edge.server, e.edge.protocol): (
                e.edge.requests,
                e.edge.flows,
                e.edge.packets,
                sorted((f.function, f.requests, f.unanswered, f.one_way, f.exceptions) for f in e.functions),
            )
            for e in list_edges(session, EdgeFilter(limit=100_000))
        }
    store.close()
    return {"assets": assets, "edges": edges}


def test_saving_every_few_minutes_adds_up_to_one_save(
    tmp_path: Path, plant: tuple[Path, dict[str, Any]]
) -> None:
    """Periodic saves carry each period's communications; their sums, the assets and the roles
    equal what one save at the end gives (only the medians are the last period's)."""
    capture_path, _ = plant
    once = saved_inventory(tmp_path / "once", capture_path, None)
    often = saved_inventory(tmp_path / "often", capture_path, 2)
    assert len(once["assets"]) > 10 and len(once["edges"]) > 10
    assert often == once


def test_bad_site_names_and_an_old_store_are_refused_before_a_packet_is_read(
    tmp_path: Path, plant: tuple[Path, dict[str, Any]]
) -> None:
    capture_path, _ = plant
    for site in ("../../etc", "a" * 64, ""):
        result = CliRunner().invoke(
            cli, ["--data-dir", str(tmp_path), "sensor", "run", "--pcap", str(capture_path), "--site", site]
        )
        assert result.exit_code == 2 and "is not a site name" in result.output, result.output
    store = Store.from_settings(make_settings(tmp_path / "old")[CoreSettings])
    migrate.upgrade(store, "0007_alert_zone")
    store.close()
    old = tmp_path / "old"
    arguments = ["--data-dir", str(old), "sensor", "run", "--pcap", str(capture_path), "--evidence"]
    result = CliRunner().invoke(cli, arguments)
    assert isinstance(result.exception, PlantwardenError) and result.exception.code == "store_not_ready"
    # refused before a packet was read: a late refusal (when saving) would find the packets kept
    assert not (old / "evidence").exists()


def test_a_csv_export_does_not_hand_device_text_to_a_spreadsheet_as_a_formula(tmp_path: Path) -> None:

    assert _cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert [_cell(v) for v in ("+cmd", "-1+1", "@SUM(A1)", "\tx", "Rockwell", 0.9)] == [
        "'+cmd", "'-1+1", "'@SUM(A1)", "'\tx", "Rockwell", 0.9,
    ]  # fmt: skip


def test_device_text_cannot_drive_the_terminal() -> None:
    assert printable("Acme\x1b[2J\x07 PLC\x9b") == "Acme\ufffd[2J\ufffd PLC\ufffd"
    assert printable("Rockwell Automation/Allen-Bradley") == "Rockwell Automation/Allen-Bradley"
