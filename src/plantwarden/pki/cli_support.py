"""What the `plantwarden pki` commands share: the CA of the data directory, the audit log, the
passphrase, durations, identities and output files."""

from __future__ import annotations

import os
import sys
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
    if sys.stdin is None or not sys.stdin.isatty():  # a script: its lines, without the prompt's warnings
        return _piped_passphrase(confirm=confirm)
    text = click.prompt("Root CA passphrase", hide_input=True, confirmation_prompt=confirm)
    return str(text).encode()


def _piped_passphrase(*, confirm: bool) -> bytes:
    """The passphrase from standard input that is not a terminal: its first line (and, at `init`,
    the same again on the second), or a usage error saying where else it can come from."""
    lines = [sys.stdin.readline() if sys.stdin is not None else "" for _ in range(2 if confirm else 1)]
    if not all(lines):
        raise click.UsageError(
            f"no root CA passphrase: standard input ended before it was given{' twice' if confirm else ''};"
            f" give --passphrase-file FILE or set {PASSPHRASE_ENV}"
        )
    given = [line.rstrip("\r\n") for line in lines]
    if confirm and given[0] != given[1]:
        raise click.UsageError("the two passphrases on standard input differ")
    return given[0].encode()


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
