"""`plantwarden sim`: the simulated plant: generate its traffic, list and run attack scenarios."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from plantwarden.core.cli_values import FiniteFloatRange, Integer, IntegerRange
from plantwarden.core.config import CoreSettings
from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.core.parsing import host_port
from plantwarden.core.runtime import RuntimeProvider
from plantwarden.sim.attacks import SCENARIOS, scenario
from plantwarden.sim.control import ask, control_path, serve_control
from plantwarden.sim.live_attacks import LiveAttack, Targets
from plantwarden.sim.plant import Plant, default_plant
from plantwarden.sim.runtime import LiveOptions, LivePlant
from plantwarden.sim.tap import Tap, open_tap
from plantwarden.sim.traffic.generator import generate

DEFAULT_CONSOLE = ("127.0.0.1", 8000)
DEFAULT_BROKER = ("127.0.0.1", 1883)


@click.group("sim")
def sim_group() -> None:
    """The simulated plant: its traffic as captures, its attacks, the running plant."""


@sim_group.command("scenarios")
def list_scenarios() -> None:
    """The attack scenarios, with their ATT&CK technique."""
    for known in SCENARIOS.values():
        click.echo(f"{known.name:24} {known.technique:6} {known.description}")


def _attack_names(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[str]:
    if not value:
        return []
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == ["all"]:
        return list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise click.BadParameter(
            f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}, or all"
        )
    return names


@sim_group.command("generate")
@click.option(
    "--seed",
    type=Integer(),
    default=1,
    show_default=True,
    help="Same seed, same capture, byte for byte.",
)
@click.option("--packets", type=IntegerRange(1), default=100_000, show_default=True, help="Frames to write.")
@click.option(
    "--attacks",
    callback=_attack_names,
    metavar="NAME,...",
    help="Attack scenarios to mix in (comma-separated, or 'all'); see `plantwarden sim scenarios`.",
)
@click.option("--nanoseconds", is_flag=True, help="Nanosecond timestamps (default: microseconds).")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
def generate_command(seed: int, packets: int, attacks: list[str], nanoseconds: bool, output: Path) -> None:
    """Write the plant's traffic to OUTPUT (.pcap or .pcapng), with labels and a ledger beside it."""
    started = time.monotonic()

    def progress(written: int) -> None:
        elapsed = time.monotonic() - started
        click.echo(f"  {written:,} of {packets:,} packets ({written / elapsed:,.0f}/s)", err=True)

    result = generate(
        output, seed=seed, packets=packets, attacks=attacks, nanoseconds=nanoseconds, progress=progress
    )
    ledger = result.ledger
    elapsed = time.monotonic() - started
    size = f"{ledger['packets']:,} packets ({ledger['bytes']:,} bytes)"
    click.echo(f"wrote {size} to {result.capture} in {elapsed:.1f} s")
    shared, split = ledger["share_of_pdus_in_shared_segments"], ledger["share_of_pdus_split"]
    click.echo(
        f"  Modbus PDUs: {ledger['modbus_pdus']:,}; in shared segments: {shared:.1%}; split: {split:.1%}; "
        f"retransmissions: {ledger['retransmissions']:,}"
    )
    for attack in ledger["attacks"]:
        sources = ", ".join(attack["sources"])
        actions = len(attack["actions"])
        clipped = "; clipped: the capture ended first (docs/sim.md)" if attack.get("clipped") else ""
        name = f"{attack['instance']} ({attack['technique']})"
        click.echo(f"  attack {name} from {sources}: {actions} actions{clipped}")
    click.echo(f"  labels: {result.labels} ({ledger['attack_packets']:,} attack packets)")
    click.echo(f"  ledger: {result.ledger_path}")


def _gateway_of(asked: object, own: tuple[str, int] | None) -> tuple[str, int] | None:
    """The gateway an attack request names: none (straight to the PLCs), `true` for the plant's own
    (`sim run --gateway`), or `[host, port]`."""
    if asked is None or asked is False:
        return None
    if asked is True:
        if own is None:
            raise InvalidInput("this plant runs without a gateway (sim run --gateway HOST:PORT)")
        return own
    if (
        isinstance(asked, list)
        and len(asked) == 2
        and isinstance(asked[0], str)
        and asked[0]
        and type(asked[1]) is int  # not a bool
        and 0 < asked[1] < 65536
    ):
        return asked[0], asked[1]
    raise InvalidInput(f"gateway {asked!r} is not true or [host, port]")


def _unit_ids(items: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in items:
        name, _, number = item.partition("=")
        if not name or not (number.isascii() and number.isdigit()):
            raise click.BadParameter(f"{item!r} is not PLC=N (for example tank-1=11)", param_hint="--unit-id")
        found[name] = int(number)
    return found


def _endpoint(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, int] | None:
    if value is None or value == "off":
        return None
    found = host_port(value)
    if found is None or found[1] == 0:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (a port 1-65535)")
    return found


@sim_group.command("run")
@click.option(
    "--seed", type=Integer(), default=1, show_default=True, help="Seed of the physics and the clients."
)
@click.option(
    "--port",
    type=IntegerRange(0, 65535),
    help="Modbus port of every PLC [default: 502, or 5020 without root].",
)
@click.option(
    "--speed",
    type=FiniteFloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--poll-period",
    type=FiniteFloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between HMI polls.",
)
@click.option(
    "--engineering-gap",
    type=FiniteFloatRange(min=1.0),
    default=900.0,
    show_default=True,
    help="Mean seconds between setpoint changes.",
)
@click.option(
    "--broker",
    default="127.0.0.1:1883",
    show_default=True,
    callback=_endpoint,
    help="MQTT broker for telemetry (HOST:PORT, or off).",
)
@click.option(
    "--tap",
    "tap_target",
    metavar="PATH|-",
    help="Write what the plant sends as a live pcapng stream (a file, a FIFO, or - for stdout).",
)
@click.option(
    "--gateway",
    callback=_endpoint,
    help="HOST:PORT of a Modbus/TCP security gateway in front of the PLCs: attacks may be sent"
    " through it (`sim attack --gateway`, the console's Exercises page).",
)
@click.option(
    "--unit-id",
    "unit_ids",
    multiple=True,
    metavar="PLC=N",
    callback=lambda _ctx, _param, value: _unit_ids(value),
    help="The Modbus unit id PLC answers (default 1 for every PLC; distinct ids let one gateway"
    " front them all).",
)
@click.option(
    "--duration",
    type=FiniteFloatRange(min=0.1),
    help="Stop after this many seconds [default: run until interrupted].",
)
@click.pass_obj
def run_command(
    state: RuntimeProvider,
    seed: int,
    port: int | None,
    speed: float,
    poll_period: float,
    engineering_gap: float,
    broker: tuple[str, int] | None,
    tap_target: str | None,
    gateway: tuple[str, int] | None,
    unit_ids: dict[str, int],
    duration: float | None,
) -> None:
    """Start the plant: six PLCs on their own addresses, the HMI, historian, engineer and telemetry."""
    data_dir = state.runtime().settings[CoreSettings].data_path
    options = LiveOptions(
        seed=seed,
        port=port,
        speed=speed,
        poll_period=poll_period,
        broker=broker,
        engineering_gap=engineering_gap,
    )
    try:
        plant = default_plant().with_unit_ids(unit_ids)
    except (NotFound, InvalidInput) as error:
        raise click.BadParameter(str(error), param_hint="--unit-id") from error
    try:
        tap = open_tap(plant, tap_target, seed=seed) if tap_target else None
    except OSError as error:
        raise click.BadParameter(
            f"cannot write {tap_target}: {error.strerror or error}", param_hint="--tap"
        ) from error
    say = (lambda text: click.echo(text, err=True)) if tap_target == "-" else click.echo
    try:
        asyncio.run(_run_plant(plant, options, tap, control_path(data_dir), duration, say, gateway))
    except KeyboardInterrupt:
        say("stopped")
    finally:
        if tap is not None:
            tap.close()


async def _run_plant(
    plant: Plant,
    options: LiveOptions,
    tap: Tap | None,
    control: Path,
    duration: float | None,
    say: Callable[[str], None],
    own_gateway: tuple[str, int] | None = None,
) -> None:
    live = LivePlant(plant, options, tap)
    await live.start()

    async def attack(request: dict[str, Any]) -> dict[str, Any]:
        if request.get("scenarios"):
            return {"scenarios": [
                {"name": s.name, "technique": s.technique, "description": s.description}
                for s in SCENARIOS.values()
            ], "gateway": None if own_gateway is None else list(own_gateway)}  # fmt: skip
        console = tuple(request.get("console") or DEFAULT_CONSOLE)
        broker = tuple(request.get("broker") or options.broker or DEFAULT_BROKER)
        ports = {name: port for name, (_, port) in live.servers.endpoints().items()}
        targets = Targets(
            ports,
            (str(console[0]), int(console[1])),
            (str(broker[0]), int(broker[1])),
            _gateway_of(request.get("gateway"), own_gateway),
        )
        chosen = scenario(str(request["attack"]))
        return await LiveAttack(
            plant, chosen, targets, tap=tap, simulation=live.simulation, seed=options.seed
        ).run()

    server = await serve_control(control, attack)
    for name, (address, port) in live.servers.endpoints().items():
        say(f"PLC {name:12} Modbus/TCP {address}:{port}")
    if own_gateway is not None:
        units = ", ".join(f"{plc.name} {plc.unit_id}" for plc in plant.plcs)
        say(f"gateway {own_gateway[0]}:{own_gateway[1]} in front of the PLCs (unit ids: {units})")
    say(f"control socket {control}; tap: {'on' if tap else 'off'}; telemetry: {options.broker or 'off'}")
    say("running (Ctrl-C stops)" if duration is None else f"running for {duration:g} s")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                await stop.wait()
    finally:
        server.close()
        await live.stop()
        control.unlink(missing_ok=True)
    counters = ", ".join(f"{name} {value}" for name, value in live.counters.items())
    say(
        f"stopped: {counters}; {len(live.writes)} writes"
        + (f"; tap wrote {tap.packets} packets" if tap else "")
    )


@sim_group.command("attack")
@click.argument("name", type=click.Choice(list(SCENARIOS)))
@click.option(
    "--console",
    default="127.0.0.1:8000",
    show_default=True,
    callback=_endpoint,
    help="The console to brute-force (HOST:PORT).",
)
@click.option(
    "--broker",
    callback=_endpoint,
    help="The MQTT broker (HOST:PORT) [default: the running plant's, else 127.0.0.1:1883].",
)
@click.option(
    "--port",
    type=IntegerRange(1, 65535),
    help="The PLCs' Modbus port of an attack from this process (--standalone, or no plant runs here)"
    " [default: 502, else 5020].",
)
@click.option(
    "--gateway",
    callback=_endpoint,
    help="Send the attack's Modbus requests through this security gateway (HOST:PORT) instead of"
    " straight to the PLCs (each to its PLC's unit id).",
)
@click.option(
    "--standalone",
    is_flag=True,
    help="Attack from this process even if a plant runs here (its tap will not see it).",
)
@click.pass_obj
def attack_command(
    state: RuntimeProvider,
    name: str,
    console: tuple[str, int],
    broker: tuple[str, int] | None,
    port: int | None,
    gateway: tuple[str, int] | None,
    standalone: bool,
) -> None:
    """Carry out attack NAME against the running plant and print its record (JSON)."""
    control = control_path(state.runtime().settings[CoreSettings].data_path)
    if port is not None and not standalone and _plant_runs(control):
        raise click.UsageError(
            "--port needs --standalone when a plant runs on this data directory: the running plant"
            " attacks its PLCs on the ports they listen on"
        )
    request = {
        "attack": name,
        "console": list(console),
        "broker": None if broker is None else list(broker),
        "gateway": None if gateway is None else list(gateway),
    }
    record: dict[str, Any] | None = None
    if not standalone:
        with contextlib.suppress(NotFound):
            record = asyncio.run(ask(control, request, timeout=3 * 3600.0))  # a drift lasts 30 min
            click.echo(f"the running plant carried out {name} (its tap saw it)", err=True)
    if record is None and gateway is not None:
        raise click.UsageError(
            "--gateway needs the running plant of this data directory (not --standalone): the"
            " gateway routes by unit id, and only the running plant knows its PLCs' unit ids"
        )
    if record is None:
        plant = default_plant()
        targets = Targets.on_port(
            plant, port or _modbus_port(plant), console, broker or DEFAULT_BROKER, gateway
        )
        record = asyncio.run(LiveAttack(plant, scenario(name), targets).run())
    click.echo(json.dumps(record, indent=2))
    if any(str(action["result"]).startswith("not carried out") for action in record["actions"]):
        click.echo(f"error: {name} needs the running plant (plantwarden sim run), not --standalone", err=True)
        raise SystemExit(1)
    if record["actions"] and all(action["action"] == "connect" for action in record["actions"]):
        click.echo(
            f"error: nothing answered the attack ({record['actions'][0]['result']}); "
            "is the plant running (`plantwarden sim run`), and on which port (--port)?",
            err=True,
        )
        raise SystemExit(1)


def _plant_runs(control: Path) -> bool:
    """Whether a plant answers on the control socket (asked for its scenarios, which changes nothing)."""
    try:
        asyncio.run(ask(control, {"scenarios": True}, timeout=10.0))
    except NotFound:
        return False
    return True


def _modbus_port(plant: Plant) -> int:
    """502 if the first PLC answers there, else 5020 (where an unprivileged plant listens)."""
    address = plant.plcs[0].host.address
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return 502 if probe.connect_ex((address, 502)) == 0 else 5020
