"""`plantwarden sensor run`: read traffic (capture files, a live interface, the plant's tap), record
flows and industrial requests in the records plane, build the asset inventory, keep recent
packets as evidence, show progress and a summary; `plantwarden sensor evidence`: a pcap slice of
the kept packets."""

from __future__ import annotations

import re
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from plantwarden.capture.errors import CaptureError
from plantwarden.capture.evidence import EvidenceRing
from plantwarden.core.cli_values import FiniteFloatRange, IntegerRange, duration_ns, given_flag
from plantwarden.core.errors import InvalidInput
from plantwarden.core.parsing import one_line
from plantwarden.core.records.plane import RecordWriter
from plantwarden.core.records.settings import RecordsSettings
from plantwarden.core.runtime import Runtime, RuntimeProvider
from plantwarden.inventory.store import SaveResult, save_inventory
from plantwarden.monitoring.detectors import DetectorChoice, Detectors, open_detectors
from plantwarden.monitoring.health import Heartbeat, SensorHeartbeats
from plantwarden.monitoring.inventory_feed import InventoryFeed
from plantwarden.monitoring.protocol_streams import StreamProtocol
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.register_values import RegisterValues
from plantwarden.monitoring.sensor import Sensor, SensorCounters, SensorOptions
from plantwarden.monitoring.sources import packet_batches
from plantwarden.monitoring.summary import Progress, summary_lines
from plantwarden.monitoring.tuning import keep_freed_memory
from plantwarden.zones.plant.load import load_plant


@click.group("sensor")
def sensor_group() -> None:
    """The passive sensor: capture, flows, industrial protocols, records."""


@sensor_group.command("run")
@click.option(
    "--pcap",
    "pcaps",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
    help="A pcap or pcapng file (repeat for several; - for standard input).",
)
@click.option("--interface", help="Capture live on this interface (needs root or CAP_NET_RAW).")
@click.option(
    "--tap",
    "tap",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the simulated plant's tap (a FIFO or a growing file from `plantwarden sim run --tap`).",
)
@click.option("--site", default="default", show_default=True, help="The site the sensor watches.")
@click.option("--segment", default="default", show_default=True, help="The network segment it sits on.")
@click.option(
    "--modbus-port",
    "modbus_ports",
    multiple=True,
    type=IntegerRange(1, 65535),
    default=(502,),
    show_default=True,
    help="TCP port of Modbus servers (repeat for several).",
)
@click.option(
    "--protocols",
    default="all",
    show_default=True,
    help="Protocols to decode beside Modbus, comma-separated ("
    + ", ".join([*PROTOCOLS, "identity"])
    + "), all or none; identity: ARP, LLDP, PROFINET DCP and DHCP.",
)
@click.option("--no-records", is_flag=True, help="Decode and count only; write nothing to the records plane.")
@click.option(
    "--inventory/--no-inventory",
    default=True,
    show_default=True,
    help="Build the asset inventory (assets, roles, communications) and save it in the store.",
)
@click.option(
    "--save-every",
    type=FiniteFloatRange(min=1.0),
    default=300.0,
    show_default=True,
    help="Seconds between saves of the inventory while the sensor runs (and once at the end).",
)
@click.option(
    "--evidence/--no-evidence",
    default=None,
    help="Keep the packets in the evidence ring (<data_dir>/evidence/SITE/SEGMENT) for alerts to cite; "
    "on by default for --interface and --tap, off for --pcap (the file is its own evidence).",
)
@click.option(
    "--evidence-max-mb",
    type=IntegerRange(min=1),
    default=1024,
    show_default=True,
    help="The evidence ring's size on disk; the oldest packets go first.",
)
@click.option(
    "--duration",
    type=FiniteFloatRange(min=0.1),
    help="With --interface or --tap: stop after this many seconds.",
)
@click.option(
    "--rules",
    "rules_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Run the detection rules of this directory as traffic passes (default: the built-in pack); "
    "detections become alerts every second and at the end.",
)
@click.option("--no-rules", is_flag=True, help="Do not run the detection rules.")
@click.option(
    "--sensor-name",
    default=socket.gethostname(),
    callback=lambda _ctx, _param, value: sensor_name(value),
    show_default="this host's name",
    help="The name this sensor reports its health under (plantwarden sensor status): 1-120 printable "
    "characters; two sensors of a segment need two names.",
)
@click.option(
    "--plant",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Check the traffic against this plant.yaml (the --site's zones) as it passes; "
    "zone violations become alerts every --zone-report-every seconds and at the end; the register "
    "values seen (its register maps) become telemetry samples, which the process models learn and watch.",
)
@click.option(
    "--zone-report-every",
    type=FiniteFloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="Seconds between two reports of the zone check's violations as alerts (with --plant).",
)
@click.option(
    "--baselines/--no-baselines",
    default=True,
    show_default=True,
    help="Learn the site's baselines (assets, communications, functions, written ranges, polling "
    "periods, setpoints) and, once a scope protects, raise an alert per deviation.",
)
@click.option(
    "--baseline-learning",
    callback=duration_ns,
    default="7d",
    show_default=True,
    metavar="DURATION",
    help="How long (record time) a new baseline scope learns before it protects.",
)
@click.option(
    "--process-models/--no-process-models",
    default=True,
    show_default=True,
    help="With --plant: learn each device's process model from its telemetry, then watch it.",
)
@click.option(
    "--process-learning",
    callback=duration_ns,
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="How much telemetry (data time) a device without a saved process model learns from.",
)
@click.pass_obj
def run_command(
    state: RuntimeProvider,
    pcaps: tuple[Path, ...],
    interface: str | None,
    tap: Path | None,
    site: str,
    segment: str,
    modbus_ports: tuple[int, ...],
    protocols: str,
    no_records: bool,
    inventory: bool,
    save_every: float,
    evidence: bool | None,
    evidence_max_mb: int,
    duration: float | None,
    rules_dir: Path | None,
    no_rules: bool,
    sensor_name: str,
    plant: Path | None,
    zone_report_every: float,
    baselines: bool,
    baseline_learning: int,
    process_models: bool,
    process_learning: int,
) -> None:
    """Run the sensor over capture files, a live interface or the plant's tap, then summarise."""
    sources = sum(bool(x) for x in (pcaps, interface, tap))
    if sources != 1:
        raise click.UsageError("give exactly one source: --pcap FILE..., --interface IF, or --tap PATH")
    _check_options(click.get_current_context())
    decoded, identity = _protocols(protocols)
    check_place(site, segment)
    runtime = state.runtime()
    uses_store = _uses_store(click.get_current_context().params)
    if uses_store:
        runtime.ready_store()  # a store that cannot take the inventory is refused before a packet is read
    beats = _heartbeats(runtime, site, segment, sensor_name, pcaps, interface, tap) if uses_store else None
    keep_evidence = evidence if evidence is not None else not pcaps
    ring = _ring(runtime, site, segment, evidence_max_mb) if keep_evidence else None
    kept = ring
    writer: RecordWriter | None = None
    choice = DetectorChoice(
        plant=plant,
        zone_report_seconds=zone_report_every,
        rules=not no_rules,
        rules_dir=rules_dir,
        baselines=baselines,
        process_models=process_models,
        learn_ns=process_learning,
        baseline_learn_ns=baseline_learning,
        sensor_name=sensor_name,
    )
    try:
        values = _register_values(plant, site, segment) if plant is not None else None
        writer = None if no_records else _writer(runtime)
        detectors = open_detectors(runtime, site, writer, choice)
    except BaseException:
        if writer is not None:
            writer.close()
        if ring is not None:
            ring.close()
        raise
    sink = detectors.sink
    feed = InventoryFeed(site, segment, sink) if inventory else None
    keep_freed_memory()
    options = SensorOptions(site=site, segment=segment, modbus_ports=modbus_ports)
    sensor = Sensor(options, feed or sink, decoded, identity, values=values)
    progress = Progress(sys.stderr)
    saves = Saves()
    next_save = time.monotonic() + save_every
    problem: str | None = None
    stopped_by: signal.Signals | None = None
    last_loss: tuple[int, int] | None = None
    last_ts: int | None = None
    stopping = _stop_on_sigterm()
    try:
        for batch, loss in packet_batches(pcaps, interface, tap, duration):
            if batch is None:  # a quiet live interface: keep reporting health and detections
                _idle(beats, detectors, sensor.counters.packets, loss or last_loss, last_ts)
                continue
            modbus = sensor.process(batch)
            if feed is not None:
                feed.observe(sensor, batch, modbus)
                if time.monotonic() >= next_save:
                    saves.add(_save(runtime, feed))
                    feed.new_period()
                    next_save = time.monotonic() + save_every
            if ring is not None:
                try:
                    ring.add(batch)
                except OSError as error:  # a full disk stops the evidence, not the sensor
                    click.echo(
                        f"warning: evidence ring {ring.directory}: {error.strerror or error}; "
                        "packets are no longer kept",
                        err=True,
                    )
                    ring.close()
                    ring = None
            progress.update(sensor.counters, loss)
            if beats is not None:
                last_loss = loss or last_loss
                last_ts = int(batch.ts_ns[-1]) if len(batch) else last_ts
                beats.beat(sensor.counters.packets, last_loss, last_ts)
    except CaptureError as error:
        problem = error.message
    except OSError as error:
        problem = f"cannot read {error.filename or 'the capture'}: {error.strerror or error}"
    except _ServiceStop:
        stopped_by = signal.SIGTERM
    except KeyboardInterrupt:
        stopped_by = signal.SIGINT
    finally:
        if stopping is not None:
            signal.signal(signal.SIGTERM, stopping)
        try:
            counters = sensor.finish()
            try:
                detectors.close()
            finally:
                if writer is not None:
                    writer.close()
        finally:
            if ring is not None:
                ring.close()
            if beats is not None:
                beats.stop(sensor.counters.packets, last_loss, last_ts)
            progress.done()
    if feed is not None:
        saves.add(_save(runtime, feed))
    _report(counters, progress, problem, saves if feed is not None else None, kept)
    if values is not None:
        c = values.counters
        click.echo(
            f"telemetry from registers: {c.samples:,} samples ({c.reads:,} reads, {c.writes:,} writes); "
            f"skipped: {c.unmapped:,} unmapped, {c.unreachable:,} split PDUs, {c.malformed:,} malformed, "
            f"{c.exceptions:,} exceptions"
        )
    for line in detectors.summaries():
        click.echo(line)
    if stopped_by is not None:
        _stopped(stopped_by, live=not pcaps)


def _stopped(signum: signal.Signals, *, live: bool) -> None:
    """The end of a run stopped by Ctrl-C or SIGTERM, after its summary. A live capture has no end
    of its own: a stop is how it ends (exit status 0, as tcpdump's). Capture files not read to
    their end were interrupted: 128 + the signal's number (130 for Ctrl-C)."""
    how = "Ctrl-C" if signum == signal.SIGINT else signum.name
    if live:
        click.echo(f"stopped ({how}): what was read is recorded", err=True)
        return
    click.echo(
        f"interrupted ({how}) before the end of the capture: what was read so far is recorded", err=True
    )
    raise SystemExit(128 + signum)


class _ServiceStop(KeyboardInterrupt):
    """SIGTERM: a service stop (systemd, a container, the supervisor), told apart from Ctrl-C."""


def _check_options(ctx: click.Context) -> None:
    """Refuse, before any work, an option the user gave that changes nothing with the others."""
    for name, goes_with in _idle_options(ctx.params):
        flag = given_flag(ctx, name)
        if flag is not None:
            raise click.UsageError(f"{flag} goes with {goes_with}")


def _idle_options(params: dict[str, Any]) -> list[tuple[str, str]]:
    """The options that would change nothing with the others given, and what each goes with."""
    idle = []
    if params["no_rules"]:
        idle.append(("rules_dir", "the rules, not --no-rules"))
    if params["plant"] is None:  # the zone check and the process models need the plant
        idle += [(name, "--plant") for name in ("zone_report_every", "process_models", "process_learning")]
    elif not params["process_models"]:
        idle.append(("process_learning", "the process models, not --no-process-models"))
    if not params["baselines"]:
        idle.append(("baseline_learning", "the baselines, not --no-baselines"))
    if params["evidence"] is False:
        idle.append(("evidence_max_mb", "the evidence ring, not --no-evidence"))
    elif params["evidence"] is None and params["pcaps"]:
        idle.append(("evidence_max_mb", "the evidence ring, which is off for --pcap unless --evidence"))
    if not params["inventory"]:
        idle.append(("save_every", "the inventory, not --no-inventory"))
    if params["pcaps"]:
        idle.append(("duration", "--interface or --tap, not --pcap (a capture file ends by itself)"))
    if not _uses_store(params):
        idle.append(
            ("sensor_name", "a run that reports its health: live, or with the inventory, rules or baselines")
        )
    return idle


def _uses_store(params: dict[str, Any]) -> bool:
    """Whether the run writes to the store beside the records: a live sensor reports its health."""
    return bool(
        params["inventory"]
        or params["plant"] is not None
        or not params["no_rules"]
        or params["baselines"]
        or not params["pcaps"]
    )


def _stop_on_sigterm() -> Any:
    """A service stop (SIGTERM, from systemd or a container) ends the run as Ctrl-C does: the
    rules, the zone check and the inventory report what they hold and the last heartbeat says
    `stopped`. Returns the handler to put back."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise _ServiceStop

    if threading.current_thread() is not threading.main_thread():
        return None  # only the main thread may set handlers (a test running the command in a thread)
    return signal.signal(signal.SIGTERM, interrupt)


def _heartbeats(
    runtime: Runtime,
    site: str,
    segment: str,
    name: str,
    pcaps: tuple[Path, ...],
    interface: str | None,
    tap: Path | None,
) -> SensorHeartbeats:
    source = (
        f"interface {interface}" if interface else f"tap {tap}" if tap else f"{len(pcaps)} capture file(s)"
    )
    now = runtime.clock.now()
    identity = Heartbeat(site, segment, name, source[:300], "running", now, now, 0)
    return SensorHeartbeats(runtime.ready_store(), runtime.clock, identity)


SENSOR_NAME_LENGTH = 120
"""The longest sensor name (the store's column; a name is part of its heartbeats' key)."""


def sensor_name(value: str) -> str:
    """A sensor name as given, or a clear error: one cut to fit its column would share heartbeats
    with another sensor of the same first characters, and a control character would break the
    lines of `sensor status`."""
    try:
        return one_line(
            value, "the sensor name", SENSOR_NAME_LENGTH, empty="the sensor name is empty", trim=False
        )
    except InvalidInput as error:
        raise click.BadParameter(
            f"{error.message} (1-{SENSOR_NAME_LENGTH} printable characters)", param_hint="--sensor-name"
        ) from None


def _register_values(plant: Path, site: str, segment: str) -> RegisterValues:
    """The register values of `site`'s register maps in `plant`, as telemetry samples."""
    try:
        model = load_plant(plant).site(site)
    except KeyError:
        raise click.UsageError(f"{plant} has no site {site!r} (give the plant's --site)") from None
    return RegisterValues.from_site(model, segment)


def _protocols(names: str) -> tuple[tuple[StreamProtocol, ...], bool]:
    """The stream protocols named, and whether "identity" is among them."""
    wanted = [name.strip().lower() for name in names.split(",") if name.strip()]
    if wanted == ["all"]:
        return tuple(PROTOCOLS.values()), True
    if wanted == ["none"]:
        return (), False
    unknown = [name for name in wanted if name not in PROTOCOLS and name != "identity"]
    if unknown or not wanted:
        known = ", ".join([*PROTOCOLS, "identity", "all", "none"])
        raise click.BadParameter(f"unknown protocol {', '.join(unknown) or names!r} (known: {known})")
    chosen = tuple(PROTOCOLS[name] for name in dict.fromkeys(wanted) if name != "identity")
    return chosen, "identity" in wanted


def _ring(runtime: Runtime, site: str, segment: str, max_mb: int) -> EvidenceRing:
    directory = evidence_directory(runtime, site, segment)
    segment_bytes = min(64 << 20, max(1 << 20, (max_mb << 20) // 8))
    return EvidenceRing(directory, max_bytes=max_mb << 20, segment_bytes=segment_bytes)


def evidence_directory(runtime: Runtime, site: str, segment: str) -> Path:
    """Where the sensor of `site` and `segment` keeps its evidence ring."""
    check_place(site, segment)
    return runtime.core.data_path / "evidence" / site / segment


PLACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
"""A site or segment name: it names a directory of the evidence and fits the store's columns."""


def check_place(site: str, segment: str) -> None:
    """Refuse a site or segment name that could not be stored or would leave its directory."""
    for kind, name in (("site", site), ("segment", segment)):
        if not PLACE_NAME.fullmatch(name):
            raise click.BadParameter(
                f"{name!r} is not a {kind} name: 1-63 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                param_hint=f"--{kind}",
            )


@dataclass
class Saves:
    """What the run's saves of the inventory did, added up."""

    saves: int = 0
    assets: int = 0
    """Assets of the last save (the book holds every asset of the run)."""
    created: int = 0
    changed: int = 0
    edges_created: int = 0
    edges_updated: int = 0

    def add(self, result: SaveResult) -> None:
        self.saves += 1
        self.assets = len(result.ids)
        self.created += result.assets_created
        self.changed += result.assets_changed
        self.edges_created += result.edges_created
        self.edges_updated += result.edges_updated


def _save(runtime: Runtime, feed: InventoryFeed) -> SaveResult:
    """Keep what the run learnt of the plant's assets and communications."""
    snapshot = feed.snapshot()
    with runtime.ready_store().transaction() as session:
        return save_inventory(
            session,
            runtime.context(),
            snapshot.assets,
            snapshot.edges,
            snapshot.statistics,
            snapshot.roles,
        )


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count:,} times"


def _writer(runtime: Runtime) -> RecordWriter:
    settings = runtime.settings[RecordsSettings]
    return RecordWriter(
        runtime.records(),
        "sensor",
        partition_seconds=settings.partition_seconds,
        chunk_rows=settings.chunk_rows,
    )


def _idle(
    beats: SensorHeartbeats | None,
    detectors: Detectors,
    packets: int,
    loss: tuple[int, int] | None,
    last_ts: int | None,
) -> None:
    """A second without packets: the heartbeat and the pending detections do not wait for traffic."""
    if beats is not None:
        beats.beat(packets, loss, last_ts)
    detectors.flush()


def _report(
    counters: SensorCounters,
    progress: Progress,
    problem: str | None,
    saved: Saves | None,
    ring: EvidenceRing | None,
) -> None:
    extra = []
    if saved is not None:
        extra.append(
            (
                "inventory",
                f"{saved.assets:,} assets seen ({saved.created:,} new, {saved.changed:,} changed), "
                f"{saved.edges_created:,} new communications, {saved.edges_updated:,} updated; "
                f"saved {_times(saved.saves)} (plantwarden assets list)",
            )
        )
    if ring is not None:
        extra.append(("evidence", f"{ring.size:,} bytes kept in {ring.directory}"))
    for line in summary_lines(counters, progress.elapsed, progress.loss, extra):
        click.echo(line)
    if problem is not None:
        click.echo(f"error: {problem}", err=True)
        raise SystemExit(1)
