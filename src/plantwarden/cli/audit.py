"""`plantwarden audit-log`: verify the audit log's chain, list its newest entries, write a
checkpoint of its head."""

from __future__ import annotations

import json
import sys

import click

from plantwarden.cli.options import text_table
from plantwarden.cli.state import CliState
from plantwarden.core import auditlog
from plantwarden.core.auditlog import AuditKeys, AuditSettings
from plantwarden.core.cli_values import IntegerRange


@click.group("audit-log")
def audit_group() -> None:
    """The audit log: security-relevant actions in a keyed hash chain (see docs/audit-log.md)."""


@audit_group.command("verify")
@click.pass_obj
def verify_command(state: CliState) -> None:
    """Recompute the chain and check it against the checkpoints; exit 1 on any problem."""
    runtime = state.runtime()
    data = runtime.core.data_path
    checkpoints = auditlog.checkpoints_path(data)
    with runtime.ready_store().transaction() as session:
        if not auditlog.key_path(data).exists() and auditlog.count(session) == 0 and not checkpoints.exists():
            click.echo("the audit log is empty (no entries, no key, no checkpoints yet)")
            return
        keys = AuditKeys.load(auditlog.key_path(data))
        report = auditlog.verify(session, keys, checkpoints)
    click.echo(f"entries:     {report.entries}")
    click.echo(f"head:        seq {report.head_seq}, mac {report.head_mac}")
    newest = report.newest_checkpoint
    described = (
        f"{report.checkpoints} valid, newest at seq {newest.seq} ({newest.at.isoformat(timespec='seconds')})"
        if newest is not None
        else f"{report.checkpoints} valid"
    )
    click.echo(f"checkpoints: {described} in {checkpoints}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    if report.ok:
        click.echo("OK: every entry matches its mac and the chain is unbroken")
        return
    for problem in report.problems:
        where = _where(problem)
        click.echo(f"PROBLEM [{problem.kind}] {where}: {problem.message}")
    click.echo(f"FAILED: {len(report.problems)} problem(s) found in the audit log", err=True)
    sys.exit(1)


def _where(problem: auditlog.Problem) -> str:
    if problem.seq is None:
        return f"checkpoint line {problem.line}"
    if problem.last_seq is not None:
        return f"seq {problem.seq}..{problem.last_seq}"
    return f"seq {problem.seq}"


@audit_group.command("list")
@click.option("--limit", type=IntegerRange(1, 10_000), default=20, show_default=True, help="How many.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.pass_obj
def list_command(state: CliState, limit: int, output: str) -> None:
    """The newest entries of the audit log, oldest first."""
    with state.runtime().ready_store().transaction() as session:
        entries = [entry.to_dict() for entry in auditlog.latest(session, limit)]
    if output == "json":
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        click.echo("no audit entries yet")
        return
    rows = [
        (
            str(e["seq"]),
            e["at"][:19].replace("T", " "),
            e["actor"] or "-",
            e["action"],
            e["outcome"],
            e["site"] or "-",
            e["target"] or "-",
            e["source"],
        )
        for e in entries
    ]
    click.echo(
        text_table(("seq", "time (UTC)", "actor", "action", "outcome", "site", "target", "source"), rows)
    )


@audit_group.command("checkpoint")
@click.pass_obj
def checkpoint_command(state: CliState) -> None:
    """Sign the current head and append it to the checkpoint file (and syslog, when configured)."""
    runtime = state.runtime()
    settings = runtime.settings[AuditSettings]
    data = runtime.core.data_path
    path = auditlog.checkpoints_path(data)
    with runtime.ready_store().transaction() as session:
        key_file = auditlog.key_path(data)
        # A new key only for an empty log: one that holds entries needs the key it was written with.
        empty = auditlog.count(session) == 0
        keys = AuditKeys.load_or_create(key_file) if empty else AuditKeys.load(key_file)
        checkpoint = auditlog.write_checkpoint(session, keys, path, clock=runtime.clock)
    click.echo(f"checkpoint at seq {checkpoint.seq} (mac {checkpoint.mac}) appended to {path}")
    click.echo(f"signed with Ed25519 key {keys.key_id}, public key {keys.public_key_hex}")
    if settings.syslog_address is not None:
        try:
            auditlog.send_to_syslog(checkpoint, settings.syslog_address)
        except OSError as error:
            raise click.ClickException(
                f"the checkpoint is in {path}, but sending it to syslog at {settings.syslog_address} "
                f"failed: {error}"
            ) from None
        click.echo(f"sent to syslog at {settings.syslog_address}")
