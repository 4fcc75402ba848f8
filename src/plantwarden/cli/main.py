"""The root command: global flags, the mounted command groups, and one way to report errors."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from plantwarden import __version__
from plantwarden.cli.lazy import LazyCommand, LazyGroup, deferred
from plantwarden.cli.state import CliState
from plantwarden.core.errors import PlantwardenError
from plantwarden.core.settings import parse_assignment
from plantwarden.monitoring.detector_keys import (
    BASELINE_FACTORY,
    PROCESS_FACTORY,
    RULES_FACTORY,
    ZONE_CHECK_FACTORY,
)

COMMANDS: dict[str, LazyCommand] = {
    "demo": LazyCommand(
        "plantwarden.cli.demo:demo",
        "Run the whole platform against a simulated plant: the console, the plant, the sensor on its tap, "
        "detection; Ctrl-C stops everything.",
    ),
    "serve": LazyCommand(
        "plantwarden.cli.serve:serve", "Run the server: API, console, health and readiness."
    ),
    "routes": LazyCommand(
        "plantwarden.cli.serve:routes",
        "The route table: every route of the server and the permission it declares.",
    ),
    "up": LazyCommand(
        "plantwarden.cli.serve:up",
        "Start every Plantwarden process, restart any that crashes, stop all on Ctrl-C.",
    ),
    "config": LazyCommand("plantwarden.cli.config:config_group", "Inspect settings."),
    "db": LazyCommand("plantwarden.cli.store:db_group", "Schema of the domain store."),
    "backup": LazyCommand(
        "plantwarden.cli.store:backup_command",
        "Write a backup archive of the store (default: <data_dir>/backups/).",
    ),
    "restore": LazyCommand(
        "plantwarden.cli.store:restore_command",
        "Restore a backup archive into an empty store, then migrate it to the newest schema.",
    ),
    "site": LazyCommand("plantwarden.zones.cli:site_group", "Sites and their network segments."),
    "plant": LazyCommand(
        "plantwarden.zones.plant_cli:plant_group",
        "The plant model as code (plant.yaml): zones, conduits, assets, rights.",
    ),
    "firewall": LazyCommand(
        "plantwarden.zones.firewall.cli:firewall_group",
        "nftables rulesets compiled from the plant model, and their drift.",
    ),
    "zones": LazyCommand(
        "plantwarden.detection.cli:zones_group",
        "The plant's zones and conduits (plant.yaml) against what the sensor saw.",
        subcommands=("plantwarden.inventory.zoning_cli:suggest_command",),
    ),
    "rules": LazyCommand(
        "plantwarden.detection.rules.cli:rules_group",
        "Detection rules (YAML, close to Sigma): list, validate, test, check stored records.",
    ),
    "detect": LazyCommand(
        "plantwarden.detection.process.cli:detect_group",
        "Process anomaly models: evaluate them on public benchmarks or your own CSV.",
        subcommands=("plantwarden.detection.process_watch.cli:PROCESS_COMMANDS",),
    ),
    "baseline": LazyCommand(
        "plantwarden.detection.baselines.cli:baseline_group",
        "Learned baselines per asset and conduit: learning, then protecting.",
    ),
    "reach": LazyCommand(
        "plantwarden.zones.reach_cli:reach_group",
        "What an attacker in a zone can reach, and the paths to the crown jewels.",
        subcommands=("plantwarden.inventory.reach_views_cli:compare_command",),
    ),
    "alerts": LazyCommand("plantwarden.alerts.cli:alerts_group", "Alerts raised by every detector."),
    "assets": LazyCommand(
        "plantwarden.inventory.cli:assets_group", "The asset inventory: what is on the plant network."
    ),
    "events": LazyCommand(
        "plantwarden.cli.events:events_group",
        "Domain events: the embedded log, its consumers, and the JetStream relay.",
    ),
    "records": LazyCommand(
        "plantwarden.cli.records:records_group", "Protocol records, read aggregates, flows and telemetry."
    ),
    "telemetry": LazyCommand(
        "plantwarden.monitoring.telemetry_cli:telemetry_group",
        "Numeric time series of devices: push, query, and subscribe to MQTT telemetry.",
    ),
    "pki": LazyCommand(
        "plantwarden.pki.cli:pki_group",
        "The device PKI: platform CA, enrolment, certificates, revocation and CRL.",
    ),
    "devices": LazyCommand(
        "plantwarden.devices.cli:devices_group",
        "Device telemetry on the platform side: broker configuration, ingest, status.",
    ),
    "agent": LazyCommand(
        "plantwarden.devices.cli:agent_group",
        "The device agent: enrol with the platform, publish signed and encrypted telemetry.",
    ),
    "gateway": LazyCommand(
        "plantwarden.gateway.cli:gateway_group",
        "The Modbus/TCP security gateway: who may do what to which PLC, enforced and recorded.",
    ),
    "quarantine": LazyCommand(
        "plantwarden.incidents.cli:quarantine_group",
        "Quarantine subjects and assets: denied everything at once, their live sessions closed.",
    ),
    "export": LazyCommand("plantwarden.cli.export:export_group", "Export data in standard formats."),
    "audit-log": LazyCommand(
        "plantwarden.cli.audit:audit_group",
        "The audit log: security-relevant actions in a keyed hash chain (see docs/audit-log.md).",
    ),
    "user": LazyCommand(
        "plantwarden.accounts.cli:user_group", "User accounts and their roles per site or zone."
    ),
    "token": LazyCommand("plantwarden.accounts.cli:token_group", "API bearer tokens."),
    "sim": LazyCommand(
        "plantwarden.sim.cli:sim_group",
        "The simulated plant: its traffic as captures, its attacks, the running plant.",
    ),
    "sensor": LazyCommand(
        "plantwarden.monitoring.cli:sensor_group",
        "The passive sensor: capture, flows, industrial protocols, records.",
        subcommands=(  # the sensor's evidence, status and watchdog read packages above monitoring
            "plantwarden.cli.evidence:evidence_command",
            "plantwarden.monitoring.health_cli:status_command",
            "plantwarden.monitoring.health_cli:watch_command",
        ),
    ),
    "vendors": LazyCommand(
        "plantwarden.cli.vendors:vendors_group",
        "MAC address vendors: the IEEE registries shipped, and newer ones you add.",
    ),
    "notify": LazyCommand(
        "plantwarden.workers.notify.cli:notify_group",
        "Alert notifications: a signed webhook and syslog (RFC 5424 over TLS).",
    ),
}
"""Every command of the root: where it lives and its short help (checked by tests/unit/cli/test_main.py)."""

DETECTOR_FACTORIES = {
    ZONE_CHECK_FACTORY: "plantwarden.detection.live:open_zone_check",  # sensor run --plant
    RULES_FACTORY: "plantwarden.detection.rules.live:open_rule_tee",  # sensor run --rules
    PROCESS_FACTORY: "plantwarden.detection.process_watch.live:open_process_watch",  # --process-models
    BASELINE_FACTORY: "plantwarden.detection.baselines.live:open_baseline_tee",  # sensor run --baselines
}
"""The factories `sensor run` finds in `ctx.meta` (detection sits above monitoring); each is
imported when the sensor first calls it."""


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
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
    ctx.meta.update({key: deferred(target) for key, target in DETECTOR_FACTORIES.items()})
    ctx.call_on_close(state.close)


def main() -> None:
    """Entry point of the `plantwarden` console script."""
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort as error:
        if isinstance(error.__cause__, EOFError):  # click takes any EOFError for Ctrl-D at a prompt
            click.echo(
                "error [truncated_input]: an input ended in the middle of its data (a truncated or damaged"
                " file?); nothing more was done",
                err=True,
            )
            sys.exit(1)
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
    except OSError as error:  # a file or folder the system refused, not tied to an option (click
        # itself ends a command whose reader went away, `| head`, quietly with 1)
        click.echo(f"error [os_error]: {os_problem(error)}", err=True)
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)  # a command's click.exceptions.Exit(code), returned in this mode


def os_problem(error: OSError) -> str:
    """What the system refused, and on which file: `File name too long: '/tmp/xx...'`."""
    problem = error.strerror or str(error)
    if error.filename is not None:
        problem += f": {str(error.filename)!r}"
    if error.filename2 is not None:
        problem += f" -> {str(error.filename2)!r}"
    return problem
