"""`plantwarden demo`: the platform protecting a simulated plant, in one command.

The demo has a data directory of its own (`<data_dir>/demo` by default), so that it never mixes
with a real plant's store. On start it makes the store ready, applies the Riverside plant model
(`sim/riverside.yaml`, the plant `plantwarden sim run` simulates), adds the console's admin with
a one-time password on the first run (roles admin and security_analyst at the site: it sees and
works the alerts and launches the attacks of the console's Exercises page), then supervises (as
`plantwarden up` does: restarted when they crash, all stopped on Ctrl-C):

- `server`: the API and console;
- `broker`: an MQTT broker in a Plantwarden process (`devices broker`, amqtt) on broker-1's
  address, port 18830;
- `plant`: the simulated plant (`sim run`), its PLCs on port 5020 of their own loopback addresses,
  publishing their telemetry to the broker, writing what its clients send and receive to the
  software tap, a FIFO in the demo directory;
- `telemetry`: the subscriber that stores the PLCs' telemetry (their tags checked with the
  plant's device keys) as time series;
- `sensor`: the sensor on that tap, with the plant model (zone check), the detection rules, the
  asset inventory and the evidence ring; its detections become alerts;
- `gateway`: the Modbus/TCP security gateway (`gateway run`) on gateway-1's address, port 5020,
  in front of the six PLCs (each on its own unit id, 1-6): the Exercises page and `sim attack
  --gateway` send an attack through it, and it refuses, records and raises the alert;
- `watchdog`: the sensors' watchdog.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from plantwarden.accounts import services as accounts
from plantwarden.accounts.settings import AccountsSettings
from plantwarden.cli.catalog import SECTIONS
from plantwarden.cli.state import CliState
from plantwarden.core.cli_values import FiniteFloatRange, IntegerRange
from plantwarden.core.config import SupervisorSettings
from plantwarden.core.files import atomic_write
from plantwarden.core.listen import listening_socket
from plantwarden.core.processes import ProcessSpec, Supervisor
from plantwarden.core.runtime import Runtime
from plantwarden.core.settings import load_settings
from plantwarden.sim.behaviour import device_key
from plantwarden.sim.plant import default_plant
from plantwarden.zones import applied

SITE = "riverside"
PLC_PORT = 5020
BROKER = ("127.10.1.40", 18830)
"""The demo's MQTT broker: broker-1's address in the plant, a port no system broker takes."""
GATEWAY = ("127.10.1.60", PLC_PORT)
"""The demo's Modbus/TCP security gateway (asset gateway-1 in the supervisory zone), in front of
all six PLCs: each PLC answers its own unit id (`UNIT_IDS`), which the gateway routes by."""
UNIT_IDS = {plc.name: number for number, plc in enumerate(default_plant().plcs, start=1)}
SEED = 1
HELPER_NICE = 5
"""Niceness of the processes nobody waits for at the start (broker, telemetry, watchdog): on a busy
machine the console, the plant, the sensor and the gateway start first."""
"""The plant's seed (its physics, its clients, its devices' telemetry keys)."""
ADMIN = "admin"
ADMIN_ROLES = ("admin", "security_analyst")
"""The demo's one user administers and works the alerts (an administrator alone sees none)."""
MARKER = ".plantwarden-demo"
"""The file that marks a directory as a demo's: only such a directory is ever emptied (--fresh)."""
PLANT_SOURCE = "plantwarden.sim:riverside.yaml"
CHANNEL = re.compile(r"^( +)protocol: (modbus|mqtt)\n", re.MULTILINE)
CONSOLE_ASSET = re.compile(r"^( +)- \{id: console-1, .*\n", re.MULTILINE)
RIGHTS = re.compile(r"^( +)rights:\n", re.MULTILINE)
GATEWAY_RIGHTS = (
    '{role: operator, zones: [cell-a, cell-b], operations: ["modbus.read", "modbus.identify"]}',
    "{role: engineer, zones: [cell-a, cell-b],"
    ' operations: ["modbus.read", "modbus.identify", "modbus.write"]}',
)
"""Rights for the gateway's clients: without training (the gateway knows no training records and
never meets a right that requires it, docs/gateway.md), no diagnostics, no programming."""


@dataclass(frozen=True)
class Prepared:
    """What the demo set up: where, the plant file and the admin's one-time password (None when
    the admin existed already)."""

    directory: Path
    plant_file: Path
    one_time_password: str | None


def demo_directory(state: CliState, directory: Path | None) -> Path:
    """The demo's data directory: `directory`, or `<data_dir>/demo` of the settings; never the
    data directory itself (the demo must not mix with a real plant's data)."""
    settings = load_settings(SECTIONS, config_file=state.config_file, overrides=state.overrides)
    data_dir = Path(str(settings.value("data_dir"))).expanduser().resolve()
    if directory is None:
        return data_dir / "demo"
    chosen = directory.expanduser().resolve()
    if chosen == data_dir or chosen in data_dir.parents:
        raise click.ClickException(
            f"--dir {directory} is (or holds) the data directory {data_dir}: give the demo one of its own"
        )
    return chosen


def claim_directory(directory: Path) -> None:
    """Make `directory` the demo's (marked as such): a new or empty one, or a demo's already; any
    other is refused, so that `--fresh` never empties a directory the demo did not make."""
    if directory.exists() and not (directory / MARKER).is_file() and any(directory.iterdir()):
        raise click.ClickException(
            f"{directory} holds files and is not a demo directory (no {MARKER} in it): give the demo an"
            " empty or new directory (--dir)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("The data directory of `plantwarden demo`.\n")


def empty_demo_directory(directory: Path) -> None:
    """Remove a previous demo's data; a directory without the demo's marker is refused."""
    if not directory.exists():
        return
    if not (directory / MARKER).is_file():
        raise click.ClickException(
            f"{directory} is not a demo directory (no {MARKER} in it): --fresh empties only a demo's"
        )
    shutil.rmtree(directory)


def prepare(runtime: Runtime, directory: Path) -> Prepared:
    """The store ready, the Riverside plant applied, the admin added (first run only), the tap's
    FIFO made."""
    claim_directory(directory)
    plant_file = directory / "riverside.yaml"
    raw = demo_plant(resources.files("plantwarden.sim").joinpath("riverside.yaml").read_bytes())
    plant_file.write_bytes(raw)
    one_time = None
    ctx = runtime.context("demo")
    with runtime.ready_store().transaction() as session:
        applied.apply_plant(session, ctx, raw, PLANT_SOURCE)
        if not any(user.username == ADMIN for user in accounts.list_users(session)):
            settings = runtime.settings[AccountsSettings]
            _, one_time = accounts.create_user(session, ctx, ADMIN, "Demo administrator", settings=settings)
            for role in ADMIN_ROLES:
                accounts.grant_role(session, ctx, ADMIN, role, SITE, None)
    device_keys(directory)
    fifo = tap_path(directory)
    fifo.parent.mkdir(parents=True, exist_ok=True)
    if fifo.exists() and not stat.S_ISFIFO(fifo.stat().st_mode):
        fifo.unlink()
    if not fifo.exists():
        os.mkfifo(fifo, 0o600)
    return Prepared(directory, plant_file, one_time)


def demo_plant(raw: bytes) -> bytes:
    """The Riverside model with its Modbus and MQTT channels on the demo's ports: its PLCs serve
    on 5020 (502 needs root) and its broker on 18830 (a system broker may hold 1883), and the zone
    check must see the plant's own traffic as the channels allow it."""
    text = raw.decode("utf-8")
    ports = {"modbus": PLC_PORT, "mqtt": BROKER[1]}
    if {match[2] for match in CHANNEL.finditer(text)} != set(ports):
        raise RuntimeError(
            "the Riverside model lacks a Modbus or MQTT channel: the demo cannot move its ports"
        )
    text = CHANNEL.sub(lambda match: f"{match[0]}{match[1]}ports: [{ports[match[2]]}]\n", text)
    for name, unit_id in UNIT_IDS.items():
        block = re.compile(rf"(- id: {re.escape(name)}\n(?:(?! +- id:).*\n)*? +unit_id: )1\n")
        text, found = block.subn(rf"\g<1>{unit_id}\n", text)
        if found != 1:
            raise RuntimeError(
                f"the Riverside model has no unit_id 1 for {name}: the demo cannot renumber it"
            )
    text = _insert_after(CONSOLE_ASSET, text, lambda indent: [
        f"{indent}- {{id: gateway-1, name: Modbus/TCP security gateway, address: {GATEWAY[0]},"
        " criticality: high}"])  # fmt: skip
    text = _insert_after(RIGHTS, text, lambda indent: [f"{indent}  - {right}" for right in GATEWAY_RIGHTS])
    header = (
        f"# plantwarden demo: sim/riverside.yaml with its Modbus channels on port {PLC_PORT}, its MQTT"
        f" channel on {BROKER[1]},\n# the PLCs on unit ids 1-{len(UNIT_IDS)} behind the security gateway"
        f" gateway-1 ({GATEWAY[0]}:{GATEWAY[1]}) and rights for its clients\n"
    )
    return (header + text).encode("utf-8")


def _insert_after(line: re.Pattern[str], text: str, lines: Callable[[str], list[str]]) -> str:
    """`text` with `lines(indent)` inserted after the one line `line` matches."""
    matches = list(line.finditer(text))
    if len(matches) != 1:
        raise RuntimeError(f"the Riverside model has {len(matches)} lines like {line.pattern!r}, not one")
    match = matches[0]
    added = "".join(f"{item}\n" for item in lines(match[1]))
    return text[: match.end()] + added + text[match.end() :]


def device_keys(directory: Path) -> Path:
    """The plant's telemetry keys (device -> hex), for the subscriber that checks their tags."""
    keys = {plc.name: device_key(SEED, plc.name).hex() for plc in default_plant().plcs}
    path = directory / "device-keys.json"
    # a new file, 0600 from the start: never readable by others, even where an earlier version
    # left this one with looser permissions
    atomic_write(path, json.dumps(keys, indent=2) + "\n", mode=0o600)
    return path


def tap_path(directory: Path) -> Path:
    return directory / "run" / "tap.fifo"


def process_table(prepared: Prepared, env: dict[str, str], *, speed: float) -> list[ProcessSpec]:
    """The demo's processes (each a `plantwarden` command with the demo's settings in `env`)."""
    command = [sys.executable, "-m", "plantwarden"]
    tap = str(tap_path(prepared.directory))
    plant = str(prepared.plant_file)
    broker = f"{BROKER[0]}:{BROKER[1]}"
    plant_argv = ["sim", "run", "--seed", str(SEED), "--port", str(PLC_PORT), "--speed", str(speed),
                  "--broker", broker, "--tap", tap]  # fmt: skip
    telemetry_argv = ["telemetry", "subscribe", "--broker", broker, "--site", SITE,
                      "--keys", str(prepared.directory / "device-keys.json")]  # fmt: skip
    gateway = f"{GATEWAY[0]}:{GATEWAY[1]}"
    plant_argv += ["--gateway", gateway, *(f"--unit-id={name}={unit}" for name, unit in UNIT_IDS.items())]
    upstreams = [f"--upstream={plc.name}={plc.host.address}:{PLC_PORT}" for plc in default_plant().plcs]
    gateway_argv = ["gateway", "run", "--plant", plant, "--site", SITE, "--listen", gateway, *upstreams]
    sensor_argv = ["sensor", "run", "--tap", tap, "--site", SITE,
                   "--modbus-port", str(PLC_PORT), "--plant", plant, "--zone-report-every", "2",
                   "--save-every", "10"]  # fmt: skip
    return [
        ProcessSpec("server", [*command, "serve"], env),
        ProcessSpec("broker", [*command, "devices", "broker", "--listen", broker], env, nice=HELPER_NICE),
        ProcessSpec("plant", [*command, *plant_argv], env),
        ProcessSpec("telemetry", [*command, *telemetry_argv], env, nice=HELPER_NICE),
        ProcessSpec("sensor", [*command, *sensor_argv], env),
        ProcessSpec("gateway", [*command, *gateway_argv], env),
        ProcessSpec("watchdog", [*command, "sensor", "watch"], env, nice=HELPER_NICE),
    ]


@click.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="The demo's data directory (default: <data_dir>/demo).",
)
@click.option(
    "--port", type=IntegerRange(1, 65535), default=8000, show_default=True, help="The console's port."
)
@click.option(
    "--speed",
    type=FiniteFloatRange(min=0.1, max=100.0),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--fresh", is_flag=True, help="Start from an empty demo directory (the previous demo's data goes)."
)
@click.pass_obj
def demo(state: CliState, directory: Path | None, port: int, speed: float, fresh: bool) -> None:
    """Run the whole platform against a simulated plant: the console, the plant, the sensor on its
    tap, detection; Ctrl-C stops everything."""
    listening_socket("127.0.0.1", port).close()  # in use (another demo?): one error, before any work
    where = demo_directory(state, directory)
    if fresh:
        empty_demo_directory(where)
    claim_directory(where)
    # its own store whatever the configuration says (a database_url of a real plant included)
    store = f"sqlite:///{where / 'plantwarden.db'}"
    state.add_overrides(
        {"data_dir": str(where), "database_url": store, "server.port": str(port), "server.host": "127.0.0.1"}
    )
    runtime = state.runtime()
    prepared = prepare(runtime, where)
    runtime.close()
    supervisor_settings = runtime.settings[SupervisorSettings]
    supervisor = Supervisor(
        process_table(prepared, state.child_environment(), speed=speed),
        state_file=where / "run" / "supervisor.json",
        max_backoff=supervisor_settings.max_backoff,
        stop_timeout=supervisor_settings.stop_timeout,
    )
    _banner(prepared, port)
    sys.exit(supervisor.run())


def _banner(prepared: Prepared, port: int) -> None:
    data = f"--data-dir {prepared.directory}"
    gateway = f"{GATEWAY[0]}:{GATEWAY[1]}"
    lines = [
        "",
        f"Plantwarden demo: the Riverside plant (site {SITE}), data in {prepared.directory}",
        f"  console:  http://127.0.0.1:{port}/",
    ]
    if prepared.one_time_password is not None:
        lines += [
            f"  login:    {ADMIN} / {prepared.one_time_password}  (one-time password, shown once: the",
            "            first login sets your own password and enrols the second factor)",
        ]
    else:
        lines += [
            f"  login:    {ADMIN}, with the password you set on the first run (`plantwarden demo --fresh`",
            "            starts over with a new one-time password)",
        ]
    lines += [
        f"  attack:   plantwarden {data} sim attack unauthorized-write   (`sim scenarios` lists them)",
        f"  gateway:  {gateway}, in front of the PLCs: add --gateway {gateway} to send an attack through it",
        f"  alerts:   plantwarden {data} alerts list",
        "  Ctrl-C stops everything.",
        "",
    ]
    click.echo("\n".join(lines), err=True)
