"""The demo's preparation: the store ready, the Riverside plant applied, the admin added on the
first run only, the tap's FIFO made; `--fresh` empties only a demo's directory; the processes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import click
import pytest

from plantwarden.accounts import services as accounts
from plantwarden.cli.demo import (
    MARKER,
    SITE,
    UNIT_IDS,
    claim_directory,
    demo_directory,
    device_keys,
    empty_demo_directory,
    prepare,
    process_table,
    tap_path,
)
from plantwarden.cli.state import CliState
from plantwarden.core.clock import SystemClock
from plantwarden.core.runtime import Runtime
from plantwarden.gateway.state import build_state, parse_upstreams
from plantwarden.policy.roles import builtin_model
from plantwarden.sim.behaviour import device_key
from plantwarden.zones.applied import latest
from plantwarden.zones.plant.load import load_plant
from tests.conftest import make_settings
from tests.helpers import plantwarden, taken_port


def test_prepare_applies_the_plant_adds_the_admin_once_and_makes_the_fifo(tmp_path: Path) -> None:
    runtime = Runtime(make_settings(tmp_path), SystemClock())
    try:
        first = prepare(runtime, tmp_path)
        again = prepare(runtime, tmp_path)
        with runtime.ready_store().transaction() as session:
            plant = latest(session)
            assert plant is not None and plant.sites == [SITE]
            [admin] = accounts.list_users(session)
            grants = [(g.role, g.site) for g in accounts.list_grants(session, "admin")]
    finally:
        runtime.close()
    assert first.one_time_password and again.one_time_password is None
    assert admin.username == "admin" and sorted(grants) == [("admin", SITE), ("security_analyst", SITE)]
    assert stat.S_ISFIFO(tap_path(tmp_path).stat().st_mode)
    assert (tmp_path / MARKER).is_file()
    model = load_plant(first.plant_file)
    channels = [channel for conduit in model.sites[0].conduits for channel in conduit.channels]
    ports = {(channel.id, channel.ports) for channel in channels}
    assert {port for name, port in ports if name.endswith("polling") or name == "engineering"} == {(5020,)}
    assert ("telemetry", (18830,)) in ports and ("dns", (53,)) in ports  # only Modbus and MQTT move
    keys = json.loads((tmp_path / "device-keys.json").read_text())
    assert keys["tank-1"] == device_key(1, "tank-1").hex() and len(keys) == 6


def test_fresh_empties_a_demo_directory_and_refuses_any_other(tmp_path: Path) -> None:
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    with pytest.raises(click.ClickException, match="not a demo directory"):
        empty_demo_directory(other)
    assert (other / "keep.txt").read_text() == "precious"
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / MARKER).write_text("")
    (demo / "old.db").write_text("")
    empty_demo_directory(demo)
    assert not demo.exists()
    empty_demo_directory(demo)  # nothing there: nothing to do


def test_the_processes_share_the_tap_and_the_plant_port(tmp_path: Path) -> None:
    runtime = Runtime(make_settings(tmp_path), SystemClock())
    try:
        prepared = prepare(runtime, tmp_path)
    finally:
        runtime.close()
    table = {spec.name: list(spec.argv) for spec in process_table(prepared, {"X": "1"}, speed=2.0)}
    assert list(table) == ["server", "broker", "plant", "telemetry", "sensor", "gateway", "watchdog"]
    broker = table["broker"][table["broker"].index("--listen") + 1]
    assert broker == "127.10.1.40:18830" == table["plant"][table["plant"].index("--broker") + 1]
    assert table["telemetry"][table["telemetry"].index("--broker") + 1] == broker
    tap = str(tap_path(tmp_path))
    plant, sensor = table["plant"], table["sensor"]
    assert plant[plant.index("--tap") + 1] == tap == sensor[sensor.index("--tap") + 1]
    assert plant[plant.index("--port") + 1] == sensor[sensor.index("--modbus-port") + 1] == "5020"
    assert plant[plant.index("--speed") + 1] == "2.0"
    assert sensor[sensor.index("--plant") + 1] == str(prepared.plant_file)
    gateway = table["gateway"]
    assert gateway[gateway.index("--listen") + 1] == "127.10.1.60:5020" == plant[plant.index("--gateway") + 1]
    assert gateway[gateway.index("--plant") + 1] == str(prepared.plant_file)


def test_the_gateway_fronts_every_plc_by_its_own_unit_id(tmp_path: Path) -> None:
    runtime = Runtime(make_settings(tmp_path), SystemClock())
    try:
        prepared = prepare(runtime, tmp_path)
    finally:
        runtime.close()
    table = {spec.name: list(spec.argv) for spec in process_table(prepared, {}, speed=1.0)}
    # the plant's PLCs answer the unit ids the demo's plant.yaml gives them
    served = dict(
        arg.removeprefix("--unit-id=").split("=") for arg in table["plant"] if arg.startswith("--unit-id=")
    )
    site = load_plant(prepared.plant_file).sites[0]
    declared = {asset.id: asset.unit_id for asset in site.assets if asset.unit_id is not None}
    assert {name: int(unit) for name, unit in served.items()} == declared == UNIT_IDS
    assert sorted(declared.values()) == [1, 2, 3, 4, 5, 6]
    assert any(asset.id == "gateway-1" and str(asset.addresses[0]) == "127.10.1.60" for asset in site.assets)
    # the gateway's own view of that plant: six routes, each to its PLC on the demo's port
    upstreams = parse_upstreams(
        tuple(a.removeprefix("--upstream=") for a in table["gateway"] if a.startswith("--upstream="))
    )
    state = build_state(builtin_model([]), load_plant(prepared.plant_file), SITE, upstreams)
    addresses = {asset.id: str(asset.addresses[0]) for asset in site.assets}
    assert {unit: (t.asset, t.host, t.port) for unit, t in state.routes.items()} == {
        unit: (name, addresses[name], 5020) for name, unit in UNIT_IDS.items()
    }


def test_the_demo_takes_only_a_new_empty_or_demo_directory_never_the_data_directory(tmp_path: Path) -> None:
    state = CliState(overrides={"data_dir": str(tmp_path / "data")})
    assert demo_directory(state, None) == (tmp_path / "data" / "demo").resolve()
    for refused in (tmp_path / "data", tmp_path):
        with pytest.raises(click.ClickException, match="data directory"):
            demo_directory(state, refused)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "plantwarden.db").write_text("a real store")
    with pytest.raises(click.ClickException, match="not a demo directory"):
        claim_directory(occupied)
    assert not (occupied / MARKER).exists()  # so --fresh will never empty it
    claim_directory(tmp_path / "new")
    claim_directory(tmp_path / "new")  # a demo's already
    assert (tmp_path / "new" / MARKER).is_file()
    keys = tmp_path / "new" / "device-keys.json"
    device_keys(tmp_path / "new")
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    keys.chmod(0o644)  # as an earlier version left it
    readable = tmp_path / "readable-by-others"
    readable.hardlink_to(keys)
    device_keys(tmp_path / "new")
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert readable.read_bytes() == keys.read_bytes()  # the same keys, but never written into it again
    assert not readable.samefile(keys)


def test_a_console_port_in_use_stops_the_demo_before_any_work(tmp_path: Path) -> None:
    """A second demo (or anything on the port) made the console restart forever behind the banner."""
    with taken_port() as port:
        result = plantwarden(
            "demo", "--dir", str(tmp_path / "demo"), "--port", str(port), cwd=tmp_path, timeout=60
        )
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert not (tmp_path / "demo").exists()
