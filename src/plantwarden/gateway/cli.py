"""`plantwarden gateway run`: the Modbus/TCP security gateway of one site, until stopped."""

from __future__ import annotations

import asyncio
import gc
import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from plantwarden.core.cli_values import FiniteFloatRange, IntegerRange
from plantwarden.core.errors import InvalidInput
from plantwarden.core.parsing import NUMBER
from plantwarden.core.parsing import host_port as parse_host_port
from plantwarden.core.records.partitions import writer_name_of
from plantwarden.core.records.plane import RecordWriter
from plantwarden.core.records.settings import RecordsSettings
from plantwarden.core.runtime import Runtime, RuntimeProvider
from plantwarden.gateway.alerts import DenialAlerts
from plantwarden.gateway.busy_poll import MAX_SPIN, loop_factory
from plantwarden.gateway.decide import RateLimit
from plantwarden.gateway.identity import CertificateChecker, server_context
from plantwarden.gateway.quarantine_watch import QuarantineWatch
from plantwarden.gateway.records import RecordBuffer
from plantwarden.gateway.revocations import RevocationFeed
from plantwarden.gateway.server import Gateway, GatewayConfig
from plantwarden.gateway.state import parse_upstreams, store_loader, unknown_limits
from plantwarden.monitoring.telemetry_cli import until_stopped
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.service_certs import Purpose, ensure_service_identity
from plantwarden.zones.plant.load import load_plant

MBAPS_PORT = 802
SWITCH_INTERVAL = 0.0001
"""Seconds a background thread keeps the interpreter lock while the event loop waits for it."""
BACKGROUND_NICE = 10
"""How much lower the priority of the gateway's background threads (store queries, the records'
encoding) is than the event loop's: on the gateway's core, the scheduler lets requests go first."""
BACKGROUND_THREADS = 4


def host_port(text: str, option: str, default_port: int | None = None) -> tuple[str, int]:
    """HOST:PORT (or HOST alone when a default port exists) as a pair; `InvalidInput` otherwise."""
    if ":" not in text and default_port is not None:
        return text, default_port
    found = parse_host_port(text)
    if found is None:
        raise InvalidInput(
            f"{option} {text!r}: expected HOST:PORT (for example 0.0.0.0:{default_port or 502})"
        )
    return found


def writer_name(site: str) -> str:
    """The records writer of the gateway of `site`."""
    return writer_name_of("gateway", site)


def rate_limits(items: tuple[str, ...]) -> dict[str, RateLimit]:
    """`ROLE=N` options: at most N requests a second per client of the role (a burst of 2 N)."""
    found = {}
    for item in items:
        role, _, rate = item.partition("=")
        value = _rate(rate)
        if not role or value <= 0:
            raise InvalidInput(
                f"--rate-limit {item!r}: expected ROLE=REQUESTS_PER_SECOND (for example operator=50)"
            )
        found[role] = RateLimit(value, 2 * value)
    return found


def _rate(text: str) -> float:
    """A finite rate in ASCII digits, else 0 (refused by the caller): float() also takes 'nan',
    'inf', '1_0' and other scripts' digits."""
    value = float(text) if NUMBER.fullmatch(text.strip()) else 0.0
    return value if math.isfinite(value) else 0.0


def change_limits(items: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """`ASSET.REGISTER=N` options: the register may change by at most N units a second."""
    found: dict[str, dict[str, float]] = {}
    for item in items:
        name, _, rate = item.partition("=")
        asset, _, register = name.partition(".")
        value = _rate(rate)
        if not asset or not register or value <= 0:
            raise InvalidInput(
                f"--max-change {item!r}: expected ASSET.REGISTER=UNITS_PER_SECOND (plc-1.setpoint=2)"
            )
        found.setdefault(asset, {})[register] = value
    return found


@click.group("gateway")
def gateway_group() -> None:
    """The Modbus/TCP security gateway: who may do what to which PLC, enforced and recorded."""


@gateway_group.command("run")
@click.option(
    "--plant",
    "plant_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="plant.yaml (the applied model in the store wins when there is one).",
)
@click.option("--site", required=True, help="The site whose PLCs the gateway guards.")
@click.option("--listen", help="HOST:PORT of the plain Modbus/TCP listener (legacy clients, by address).")
@click.option("--mbaps", help="HOST[:PORT] of the Modbus/TCP Security listener (TLS, port 802 by default).")
@click.option("--upstream", "upstreams", multiple=True, help="ASSET=HOST:PORT of a PLC (default: the site's"
              " gateway_only assets at their address, port 502).")  # fmt: skip
@click.option("--rate-limit", "rates", multiple=True, help="ROLE=N: at most N requests a second per client.")
@click.option("--max-change", "changes", multiple=True, help="ASSET.REGISTER=N: at most N units a second.")
@click.option("--host-name", "hosts", multiple=True, help="Names of the gateway in its TLS certificate"
              " (default: the --mbaps host).")  # fmt: skip
@click.option(
    "--pipeline-depth",
    type=IntegerRange(min=1),
    default=1,
    show_default=True,
    help="Requests in flight per PLC connection (more only for PLCs that take pipelined requests).",
)
@click.option(
    "--plc-connections",
    type=IntegerRange(min=1, max=256),
    default=4,
    show_default=True,
    help="Connections the gateway keeps to each PLC at most (no more than the PLC accepts).",
)
@click.option(
    "--busy-poll",
    type=IntegerRange(min=0, max=int(MAX_SPIN * 1e6)),
    default=0,
    show_default=True,
    metavar="MICROSECONDS",
    help="Poll this long for work before sleeping: lower latency, for a gateway with a core of its own.",
)
@click.option("--max-sessions", type=IntegerRange(min=1), default=256, show_default=True,
              help="Client connections at once, in all.")  # fmt: skip
@click.option("--max-sessions-per-address", type=IntegerRange(min=1), default=16, show_default=True,
              help="Client connections at once from one source address.")  # fmt: skip
@click.option("--source-rate-limit", type=FiniteFloatRange(min=0, min_open=True), default=1000.0,
              show_default=True, help="Requests a second from one address, whatever its role.")  # fmt: skip
@click.option("--duration", type=FiniteFloatRange(min=0.1), help="Stop after this many seconds.")
@click.pass_obj
def run_command(
    provider: RuntimeProvider,
    plant_file: Path,
    site: str,
    listen: str | None,
    mbaps: str | None,
    upstreams: tuple[str, ...],
    rates: tuple[str, ...],
    changes: tuple[str, ...],
    hosts: tuple[str, ...],
    pipeline_depth: int,
    plc_connections: int,
    busy_poll: int,
    max_sessions: int,
    max_sessions_per_address: int,
    source_rate_limit: float,
    duration: float | None,
) -> None:
    """Serve until stopped (Ctrl-C, SIGTERM, or --duration): decide every request, forward what
    is allowed, answer exception 01 to the rest, record everything."""
    if listen is None and mbaps is None:
        raise click.UsageError("give --listen, --mbaps or both")
    if hosts and mbaps is None:
        raise click.UsageError("--host-name goes with --mbaps (it names the gateway in its TLS certificate)")
    runtime = provider.runtime()
    config = GatewayConfig(
        site=site,
        listen=None if listen is None else host_port(listen, "--listen"),
        mbaps=None if mbaps is None else host_port(mbaps, "--mbaps", MBAPS_PORT),
        pipeline_depth=pipeline_depth,
        pool_size=plc_connections,
        max_sessions=max_sessions,
        max_sessions_per_address=max_sessions_per_address,
        source_rate_limit=RateLimit(source_rate_limit, source_rate_limit),
        rate_limits=rate_limits(rates),
        change_limits=change_limits(changes),
    )
    gateway = _gateway(runtime, config, plant_file, parse_upstreams(upstreams), hosts)
    with asyncio.Runner(loop_factory=loop_factory(busy_poll / 1e6)) as runner:
        runner.run(_serve(gateway, duration))
    click.echo(f"gateway stopped; {gateway.records.written} requests recorded")


def _gateway(
    runtime: Runtime,
    config: GatewayConfig,
    plant_file: Path,
    upstreams: dict[str, tuple[str, int]],
    hosts: tuple[str, ...],
) -> Gateway:
    store = runtime.ready_store()
    loader = store_loader(store, load_plant(plant_file), config.site, upstreams)
    problems = unknown_limits(loader(), config.change_limits, config.rate_limits)
    if problems:  # a misspelt safety limit must not leave the register unlimited, silently
        raise InvalidInput("; ".join(problems))
    settings = runtime.settings[RecordsSettings]
    writer = RecordWriter(
        runtime.records(),
        writer_name(config.site),
        partition_seconds=settings.partition_seconds,
        chunk_rows=settings.chunk_rows,
    )
    tls = None
    if config.mbaps is not None:
        ca = CertificateAuthority.load(pki_directory(runtime.core.data_path))
        names = hosts or (config.mbaps[0],)
        tls = server_context(
            ensure_service_identity(ca, f"gateway-{config.site}", Purpose.SERVER, hosts=names)
        )
    return Gateway(
        config,
        loader,
        tls=tls,
        checker=CertificateChecker(store, runtime.clock, config.site),
        revocations=RevocationFeed(store),
        records=RecordBuffer(writer),
        alerts=DenialAlerts(store, runtime.context()),
        quarantine=QuarantineWatch(store, config.site),
    )


async def _serve(gateway: Gateway, duration: float | None) -> None:
    async def run(stop: asyncio.Event) -> None:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(BACKGROUND_THREADS, "gateway-background", initializer=_background)
        )
        await gateway.start()
        # What start-up made (modules, the store's mappers, the policy) lives as long as the
        # process: out of the collector's sight, a full collection no longer stops the requests
        # for ~100 ms (measured with the benchmark's gateway).
        gc.freeze()
        # The store queries of the supervisor and the records' encoding run in threads: when one
        # of them holds the interpreter lock, a request waits until it is handed over (5 ms by
        # default, 0.1 ms here).
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            where = ", ".join(f"{name} {host}:{port}" for name, (host, port) in gateway.addresses.items())
            click.echo(f"gateway of site {gateway.config.site} listening: {where}", err=True)
            await stop.wait()
        finally:
            await gateway.stop()

    await until_stopped(run, duration)


def _background() -> None:
    """A background thread of the gateway starts at a lower priority than the event loop."""
    if BACKGROUND_NICE:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
