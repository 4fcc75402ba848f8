"""The root command: global flags, the mounted command groups, and one way to report errors."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from plantwarden import __version__
from plantwarden.accounts.cli import token_group, user_group
from plantwarden.alerts.cli import alerts_group
from plantwarden.cli.audit import audit_group
from plantwarden.cli.config import config_group
from plantwarden.cli.demo import demo
from plantwarden.cli.events import events_group
from plantwarden.cli.evidence import evidence_command
from plantwarden.cli.export import export_group
from plantwarden.cli.records import records_group
from plantwarden.cli.serve import routes, serve, up
from plantwarden.cli.state import CliState
from plantwarden.cli.store import backup_command, db_group, restore_command
from plantwarden.cli.vendors import vendors_group
from plantwarden.core.errors import PlantwardenError
from plantwarden.core.settings import parse_assignment
from plantwarden.detection.baselines.cli import baseline_group
from plantwarden.detection.baselines.live import open_baseline_tee
from plantwarden.detection.cli import zones_group
from plantwarden.detection.live import open_zone_check
from plantwarden.detection.process.cli import detect_group
from plantwarden.detection.process_watch.cli import PROCESS_COMMANDS
from plantwarden.detection.process_watch.live import open_process_watch
from plantwarden.detection.rules.cli import rules_group
from plantwarden.detection.rules.live import open_rule_tee
from plantwarden.devices.cli import agent_group, devices_group
from plantwarden.gateway.cli import gateway_group
from plantwarden.incidents.cli import quarantine_group
from plantwarden.inventory.cli import assets_group
from plantwarden.inventory.reach_views_cli import compare_command
from plantwarden.inventory.zoning_cli import suggest_command
from plantwarden.monitoring.cli import sensor_group
from plantwarden.monitoring.detectors import (
    BASELINE_FACTORY,
    PROCESS_FACTORY,
    RULES_FACTORY,
    ZONE_CHECK_FACTORY,
)
from plantwarden.monitoring.health_cli import status_command, watch_command
from plantwarden.monitoring.telemetry_cli import telemetry_group
from plantwarden.pki.cli import pki_group
from plantwarden.sim.cli import sim_group
from plantwarden.workers.notify.cli import notify_group
from plantwarden.zones.cli import site_group
from plantwarden.zones.firewall.cli import firewall_group
from plantwarden.zones.plant_cli import plant_group
from plantwarden.zones.reach_cli import reach_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plantwarden")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="TOML configuration file.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory (setting data_dir).")
@click.option(
    "--set", "assignments", multiple=True, metavar="KEY=VALUE", help="Set any setting (repeatable)."
)
@click.pass_context
def cli(
    ctx: click.Context, config_file: Path | None, data_dir: Path | None, assignments: tuple[str, ...]
) -> None:
    """Plantwarden: security for smart factories (OT/ICS)."""
    state = CliState(config_file=config_file)
    state.add_overrides(dict(parse_assignment(a) for a in assignments))
    state.add_overrides({"data_dir": str(data_dir) if data_dir else None})
    ctx.obj = state
    ctx.meta[ZONE_CHECK_FACTORY] = open_zone_check  # sensor run --plant (detection sits above monitoring)
    ctx.meta[RULES_FACTORY] = open_rule_tee  # sensor run --rules
    ctx.meta[PROCESS_FACTORY] = open_process_watch  # sensor run --plant --process-models
    ctx.meta[BASELINE_FACTORY] = open_baseline_tee  # sensor run --baselines
    ctx.call_on_close(state.close)


COMMANDS = (
    demo,
    serve,
    routes,
    up,
    config_group,
    db_group,
    backup_command,
    restore_command,
    site_group,
    plant_group,
    firewall_group,
    zones_group,
    rules_group,
    detect_group,
    baseline_group,
    reach_group,
    alerts_group,
    assets_group,
    events_group,
    records_group,
    telemetry_group,
    pki_group,
    devices_group,
    agent_group,
    gateway_group,
    quarantine_group,
    export_group,
    audit_group,
    user_group,
    token_group,
    sim_group,
    sensor_group,
    vendors_group,
    notify_group,
)
for command in COMMANDS:
    cli.add_command(command)
sensor_group.add_command(evidence_command)
sensor_group.add_command(status_command)
sensor_group.add_command(watch_command)
zones_group.add_command(suggest_command)
reach_group.add_command(compare_command)
for command in PROCESS_COMMANDS:
    detect_group.add_command(command)


def main() -> None:
    """Entry point of the `plantwarden` console script."""
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except PlantwardenError as error:
        click.echo(f"error [{error.code}]: {error.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)  # a command's click.exceptions.Exit(code), returned in this mode
