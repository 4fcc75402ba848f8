"""What the `plantwarden pki` commands share: the CA of the data directory, the audit log, the
passphrase, durations, identities and output files."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from plantwarden.core.auditlog import AuditLog, AuditSettings
from plantwarden.core.cli_values import actor_name, duration_ns
from plantwarden.core.files import atomic_write
from plantwarden.core.runtime import Runtime
from plantwarden.core.settings import PKI_PASSPHRASE_ENV
from plantwarden.pki.auditing import audit_action
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.certs import DeviceIdentity

PASSPHRASE_ENV = PKI_PASSPHRASE_ENV


def duration(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> timedelta | None:
    """Click callback: 90s, 15m, 24h, 14d, 2w."""
    ns = duration_ns(ctx, param, value)
    return None if ns is None else timedelta(microseconds=ns // 1000)


def audit_log(runtime: Runtime) -> AuditLog:
    return AuditLog.open(runtime.core, runtime.settings[AuditSettings])


def directory_of(runtime: Runtime) -> Path:
    return pki_directory(runtime.core.data_path)


def load_ca(runtime: Runtime) -> CertificateAuthority:
    return CertificateAuthority.load(directory_of(runtime))


def passphrase(file: Path | None, *, confirm: bool) -> bytes:
    """The root key's passphrase: from a file (its first line), PLANTWARDEN_PKI_PASSPHRASE, or asked."""
    if file is not None:
        lines = file.read_bytes().splitlines()
        return lines[0] if lines else b""
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV].encode()
    text = click.prompt("Root CA passphrase", hide_input=True, confirmation_prompt=confirm)
    return str(text).encode()


PASSPHRASE_FILE = click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"Read the root CA passphrase from FILE (else ${PASSPHRASE_ENV}, else asked).",
)
ACTOR = click.option("--actor", default=None, callback=actor_name, help="Who acts (for the audit log).")


def audit_ca(runtime: Runtime, actor: str | None, action: str, details: dict[str, Any]) -> None:
    with runtime.ready_store().transaction() as session:
        ctx, audit = runtime.context(actor), audit_log(runtime)
        audit_action(session, ctx, audit, action, site=None, target="platform-ca", details=details)


def emit(data: bytes, out: Path | None) -> None:
    if out is None:
        click.echo(data.decode(), nl=False)
    else:
        atomic_write(out, data)
        click.echo(f"written to {out}", err=True)


def identity_option_values(
    site: str, device: str, zone: str, role: str | None, asset: str | None
) -> DeviceIdentity:
    try:
        asset_id = uuid.UUID(asset) if asset else None
    except ValueError:
        raise click.BadParameter(f"{asset!r} is not an asset id (a UUID)", param_hint="--asset") from None
    return DeviceIdentity(site, device, zone, role, asset_id)
