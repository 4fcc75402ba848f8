"""`plantwarden serve` (the server process) and `plantwarden up` (the supervisor)."""

from __future__ import annotations

import sys

import click

from plantwarden.cli.state import CliState
from plantwarden.core.cli_values import IntegerRange
from plantwarden.core.config import NatsSettings, SupervisorSettings
from plantwarden.core.listen import listening_socket
from plantwarden.core.processes import ProcessSpec, Supervisor
from plantwarden.core.settings import Settings
from plantwarden.gateway.settings import GatewaySettings
from plantwarden.web.settings import ServerSettings
from plantwarden.workers.notify.settings import NotifySettings


@click.command("serve")
@click.option("--host", help="Address to bind (default 127.0.0.1; others need TLS).")
@click.option("--port", type=IntegerRange(1, 65535), help="TCP port, 1-65535 (default 8000).")
@click.option("--tls", type=click.Choice(["auto", "on", "off"]), help="TLS mode.")
@click.pass_obj
def serve(state: CliState, host: str | None, port: int | None, tls: str | None) -> None:
    """Run the server: API, console, health and readiness."""
    from plantwarden.web.server import run_server  # noqa: PLC0415 - keeps other commands' start-up fast

    state.add_overrides(
        {"server.host": host, "server.port": str(port) if port is not None else None, "server.tls": tls}
    )
    run_server(state.runtime())


def process_table(settings: Settings, env: dict[str, str]) -> list[ProcessSpec]:
    """The processes `up` supervises: the server, the sensors' watchdog, the certificates' expiry
    check (every 6 hours), the gateway and the relay when configured. The
    sensor and the gateway join as they are built."""
    processes = [
        ProcessSpec("server", [sys.executable, "-m", "plantwarden", "serve"], env),
        ProcessSpec("watchdog", [sys.executable, "-m", "plantwarden", "sensor", "watch"], env),
        ProcessSpec(
            "pki-expiry", [sys.executable, "-m", "plantwarden", "pki", "check-expiry", "--every", "6h"], env
        ),
    ]
    if settings[NotifySettings].targets:
        processes.append(ProcessSpec("notify", [sys.executable, "-m", "plantwarden", "notify", "run"], env))
    gateway = settings[GatewaySettings].argv()
    if gateway is not None:
        processes.append(ProcessSpec("gateway", [sys.executable, "-m", "plantwarden", *gateway], env))
    if settings[NatsSettings].relay:
        processes.append(ProcessSpec("relay", [sys.executable, "-m", "plantwarden", "events", "relay"], env))
    return processes


@click.command("up")
@click.option("--host", help="Server address (default 127.0.0.1; others need TLS).")
@click.option("--port", type=IntegerRange(1, 65535), help="Server port, 1-65535 (default 8000).")
@click.pass_obj
def up(state: CliState, host: str | None, port: int | None) -> None:
    """Start every Plantwarden process, restart any that crashes, stop all on Ctrl-C."""
    state.add_overrides({"server.host": host, "server.port": str(port) if port is not None else None})
    runtime = state.runtime()
    runtime.ready_store()  # fail here, once, rather than in a restart loop
    runtime.close()
    server = runtime.settings[ServerSettings]
    listening_socket(server.host, server.port).close()  # so is an address in use
    _check_gateway_addresses(runtime.settings[GatewaySettings])
    supervisor_settings = runtime.settings[SupervisorSettings]
    supervisor = Supervisor(
        process_table(runtime.settings, state.child_environment()),
        state_file=runtime.core.data_path / "run" / "supervisor.json",
        max_backoff=supervisor_settings.max_backoff,
        stop_timeout=supervisor_settings.stop_timeout,
    )
    sys.exit(supervisor.run())


def _check_gateway_addresses(gateway: GatewaySettings) -> None:
    """The gateway's listeners, when `up` runs it, free before any process starts (else the
    gateway would fail and be restarted again and again)."""
    if gateway.argv() is None:
        return
    from plantwarden.gateway.cli import MBAPS_PORT, host_port  # noqa: PLC0415 - only with a gateway

    for value, key, default in (
        (gateway.listen, "gateway.listen", None),
        (gateway.mbaps, "gateway.mbaps", MBAPS_PORT),
    ):
        if value:
            host, port = host_port(value, f"setting {key}", default)
            listening_socket(host, port, named_by=f"setting {key}").close()


@click.command("routes")
@click.pass_obj
def routes(state: CliState) -> None:
    """The route table: every route of the server and the permission it declares."""
    from plantwarden.web.app import create_app  # noqa: PLC0415 - keeps other commands' start-up fast
    from plantwarden.web.route_table import route_table  # noqa: PLC0415

    runtime = state.runtime()
    for entry in route_table(create_app(runtime.settings, runtime.store())):
        click.echo(f"{','.join(entry.methods):7} {entry.path:42} {entry.permission or 'UNDECLARED'}")
