"""`plantwarden quarantine`: quarantine a subject or an asset of a site, release it, list them.
The gateway of the site applies each change within a tick (its live sessions close)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from plantwarden.core.auditlog import AuditLog, AuditSettings
from plantwarden.core.cli_values import actor_name
from plantwarden.core.runtime import Runtime, RuntimeProvider
from plantwarden.incidents import quarantine as services
from plantwarden.incidents.models import QuarantineEntry
from plantwarden.incidents.quarantine import TARGET_KINDS, QuarantineTarget

F = TypeVar("F", bound=Callable[..., Any])
_KINDS = ", ".join(kind for kind in TARGET_KINDS if kind != "asset")


@click.group("quarantine")
def quarantine_group() -> None:
    """Quarantine subjects and assets: denied everything at once, their live sessions closed."""


def _audit(runtime: Runtime) -> AuditLog:
    return AuditLog.open(runtime.core, runtime.settings[AuditSettings])


def _target(subject: str | None, asset: str | None) -> QuarantineTarget:
    if (subject is None) == (asset is None):
        raise click.UsageError("give --subject KIND:ID or --asset ASSET (one of them)")
    return QuarantineTarget.parse(subject) if subject is not None else QuarantineTarget.asset(str(asset))


def _change(
    provider: RuntimeProvider,
    change: Callable[..., QuarantineEntry],
    site: str,
    subject: str | None,
    asset: str | None,
    reason: str,
    actor: str | None,
    said: Callable[[QuarantineEntry], str],
) -> None:
    """Quarantine or release (`change`) the target the options name, and say what was done."""
    target = _target(subject, asset)
    runtime = provider.runtime()
    ctx, audit = runtime.context(actor), _audit(runtime)
    with runtime.ready_store().transaction() as session:
        row = change(session, ctx, audit, site=site, target=target, reason=reason)
        click.echo(said(row))


def _targets(command: F) -> F:
    for option in reversed(
        [
            click.option("--site", required=True, help="The site (its gateway enforces the quarantine)."),
            click.option("--subject", help=f"KIND:ID of a subject ({_KINDS}), e.g. cert_role:engineer."),
            click.option("--asset", help="The plant model id of an asset (nothing is forwarded to it)."),
            click.option(
                "--reason", required=True, help="Why (shown in every decision it causes): 1-1000 characters."
            ),
            click.option(
                "--actor",
                default=None,
                callback=actor_name,
                help="Who acts (for the audit log): at most 120 characters.",
            ),
        ]
    ):
        command = option(command)
    return command


@quarantine_group.command("add")
@_targets
@click.pass_obj
def add_command(
    provider: RuntimeProvider,
    site: str,
    subject: str | None,
    asset: str | None,
    reason: str,
    actor: str | None,
) -> None:
    """Quarantine a subject or an asset of a site."""
    _change(provider, services.quarantine, site, subject, asset, reason, actor,
            lambda row: f"quarantined {row.label} at site {row.site}: {row.reason}")  # fmt: skip


@quarantine_group.command("release")
@_targets
@click.pass_obj
def release_command(
    provider: RuntimeProvider,
    site: str,
    subject: str | None,
    asset: str | None,
    reason: str,
    actor: str | None,
) -> None:
    """End the quarantine of a subject or an asset of a site."""
    _change(provider, services.release, site, subject, asset, reason, actor,
            lambda row: f"released {row.label} at site {row.site}")  # fmt: skip


@quarantine_group.command("list")
@click.option("--site", help="Only this site.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def list_command(provider: RuntimeProvider, site: str | None, output: str) -> None:
    """What is quarantined now, with who quarantined it, when and why."""
    with provider.runtime().ready_store().transaction() as session:
        rows = [as_dict(row) for row in services.active(session, site)]
    if output == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo("nothing is quarantined" + (f" at site {site}" if site else ""))
    for r in rows:
        since = str(r["quarantined_at"])[:16].replace("T", " ")
        click.echo(f"{r['site']:<16}{r['kind'] + ':' + r['target']:<40}{since}  {r['by']}: {r['reason']}")


def as_dict(row: QuarantineEntry) -> dict[str, str]:
    return {
        "site": row.site,
        "kind": row.kind,
        "target": row.target,
        "reason": row.reason,
        "by": row.quarantined_by,
        "quarantined_at": row.quarantined_at.isoformat(),
    }
