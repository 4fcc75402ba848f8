"""`plantwarden pki` commands over certificates: enrolment tokens, enrolling a CSR, list, show,
revoke, the CRL, expiry alerts."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.serialization import Encoding

from plantwarden.core.cli_values import IntegerRange, given_flag, output_file_option
from plantwarden.core.errors import InvalidInput, PlantwardenError
from plantwarden.core.files import atomic_write
from plantwarden.core.runtime import Runtime, RuntimeProvider
from plantwarden.pki import services
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.certs import DEFAULT_LIFETIME, load_csr
from plantwarden.pki.cli_support import ACTOR, audit_log, duration, emit, identity_option_values, load_ca
from plantwarden.pki.models import CertificateRecord


@click.group("token")
def token_group() -> None:
    """One-time enrolment tokens."""


@token_group.command("create")
@click.argument("device")
@click.option("--site", required=True)
@click.option("--zone", required=True)
@click.option("--role", help="The device's Modbus/TCP Security role (one).")
@click.option("--asset", help="The inventory asset id it is (else found by the device name).")
@click.option("--ttl", default="24h", show_default=True, callback=duration, help="How long it stays usable.")
@ACTOR
@click.pass_obj
def token_create_command(
    provider: RuntimeProvider,
    device: str,
    site: str,
    zone: str,
    role: str | None,
    asset: str | None,
    ttl: timedelta,
    actor: str | None,
) -> None:
    """Create a one-time enrolment token for DEVICE; the secret is shown once."""
    runtime = provider.runtime()
    identity = identity_option_values(site, device, zone, role, asset)
    with runtime.ready_store().transaction() as session:
        secret = services.create_token(
            session, runtime.context(actor), audit_log(runtime), identity=identity, ttl=ttl
        )
    click.echo(secret)
    expires = runtime.clock.now() + ttl
    click.echo(f"one-time token for {device} at {site}, usable until {expires:%Y-%m-%d %H:%M} UTC", err=True)


@click.command("enroll")
@click.option("--token", help="A one-time token (the identity is the token's).")
@click.option("--device", help="Without a token: the device to issue for ...")
@click.option("--site", help="... its site ...")
@click.option("--zone", help="... its zone ...")
@click.option("--role", help="... and its Modbus/TCP Security role, if any.")
@click.option("--asset", help="Without a token: the inventory asset id (else found by the device name).")
@click.option(
    "--csr", "csr_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@output_file_option("--out", required=True, help="Certificate file.")
@output_file_option("--chain-out", help="CA chain file.")
@click.option("--days", type=IntegerRange(1, 825), help="Without a token: the lifetime in days (default 90).")
@ACTOR
@click.pass_obj
def enroll_command(
    provider: RuntimeProvider,
    token: str | None,
    device: str | None,
    site: str | None,
    zone: str | None,
    role: str | None,
    asset: str | None,
    csr_file: Path,
    out: Path,
    chain_out: Path | None,
    days: int | None,
    actor: str | None,
) -> None:
    """Issue a certificate for a device's CSR (PEM or DER), with a token or an identity."""
    if (token is None) == (device is None):
        raise click.UsageError("give either --token or --device (with --site and --zone)")
    if token is not None:
        _refuse_identity_options(click.get_current_context())
    runtime = provider.runtime()
    csr = load_csr(csr_file.read_bytes())
    ca, ctx, audit = load_ca(runtime), runtime.context(actor), audit_log(runtime)
    with runtime.ready_store().transaction() as session:
        if token is not None:
            issued = services.enrol_with_token(session, ctx, audit, ca, token=token, csr=csr, via="cli")
        else:
            if site is None or zone is None:
                raise click.UsageError("--device needs --site and --zone")
            identity = identity_option_values(site, str(device), zone, role, asset)
            lifetime = timedelta(days=days) if days else None
            issued = services.issue(session, ctx, audit, ca, identity=identity, csr=csr, lifetime=lifetime)
    atomic_write(out, issued.certificate.public_bytes(Encoding.PEM))
    if chain_out is not None:
        atomic_write(chain_out, ca.chain_pem())
    record = issued.record
    click.echo(
        f"issued {record.serial} for {record.device} at {record.site} until {record.not_after:%Y-%m-%d}"
    )


IDENTITY_OPTIONS = ("site", "zone", "role", "asset", "days")
"""The options of an enrolment without a token: with one, they would change nothing."""


def _refuse_identity_options(ctx: click.Context) -> None:
    """Refuse, before any work, an identity or a lifetime given with --token: the certificate has
    the identity the token names and the default lifetime."""
    given = [flag for flag in (given_flag(ctx, name) for name in IDENTITY_OPTIONS) if flag is not None]
    if given:
        verb = "goes" if len(given) == 1 else "go"
        raise click.UsageError(
            f"{', '.join(given)} {verb} with --device, not --token: a token's certificate has the identity"
            f" the token names and the default lifetime ({DEFAULT_LIFETIME.days} days)"
        )


def _row(record: CertificateRecord) -> dict[str, Any]:
    return {
        "serial": record.serial,
        "fingerprint": record.fingerprint,
        "site": record.site,
        "device": record.device,
        "zone": record.zone,
        "role": record.role,
        "asset_id": str(record.asset_id) if record.asset_id else None,
        "status": record.status,
        "not_before": record.not_before.isoformat(),
        "not_after": record.not_after.isoformat(),
        "issued_via": record.issued_via,
        "issued_by": record.issued_by,
        "replaces": record.replaces,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "revocation_reason": record.revocation_reason,
    }


@click.command("list")
@click.option("--site")
@click.option("--device")
@click.option("--status", type=click.Choice(["valid", "revoked", "superseded"]))
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def list_command(
    provider: RuntimeProvider, site: str | None, device: str | None, status: str | None, output: str
) -> None:
    """The certificate inventory."""
    with provider.runtime().ready_store().transaction() as session:
        rows = [_row(r) for r in services.list_certificates(session, site=site, device=device, status=status)]
    if output == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    for r in rows:
        click.echo(
            f"{r['serial']:<42}{r['site']:<14}{r['device']:<20}{r['zone']:<14}{r['role'] or '-':<12}"
            f"{r['status']:<12}until {r['not_after'][:10]}"
        )
    click.echo(f"{len(rows)} certificates")


@click.command("show")
@click.argument("serial")
@click.pass_obj
def show_command(provider: RuntimeProvider, serial: str) -> None:
    """One certificate: its record and its PEM."""
    with provider.runtime().ready_store().transaction() as session:
        record = services.get_certificate(session, serial)
        for key, value in _row(record).items():
            click.echo(f"{key:<18}{value if value is not None else '-'}")
        click.echo(record.pem, nl=False)


@click.command("revoke")
@click.argument("serial", required=False)
@click.option("--device", help="Revoke every certificate of this device (with --site).")
@click.option(
    "--site", help="With --device: its site. With a SERIAL: revoke only if the certificate is of it."
)
@click.option(
    "--reason",
    required=True,
    help="Why (an RFC 5280 reason like keyCompromise goes into the CRL): 1-400 printable characters on "
    "one line.",
)
@ACTOR
@click.pass_obj
def revoke_command(
    provider: RuntimeProvider,
    serial: str | None,
    device: str | None,
    site: str | None,
    reason: str,
    actor: str | None,
) -> None:
    """Revoke a certificate (SERIAL) or every certificate of a device."""
    if (serial is None) == (device is None) or (device is not None and site is None):
        raise click.UsageError("give a SERIAL, or --device with --site")
    runtime = provider.runtime()
    ctx, audit = runtime.context(actor), audit_log(runtime)
    with runtime.ready_store().transaction() as session:
        if serial is not None:
            check = _of_site(site) if site is not None else None
            records = [services.revoke(session, ctx, audit, serial=serial, reason=reason, check=check)]
        else:
            records = services.revoke_device(
                session, ctx, audit, site=str(site), device=str(device), reason=reason
            )
        for record in records:
            click.echo(f"revoked {record.serial} ({record.device} at {record.site})")


def _of_site(site: str) -> Callable[[CertificateRecord], None]:
    """`revoke SERIAL --site S`: a check the operator asked for, not ignored; made on the row the
    revocation holds (`services.revoke`), not on an earlier read."""

    def check(record: CertificateRecord) -> None:
        if record.site != site:
            raise InvalidInput(
                f"certificate {record.serial} is of site {record.site}, not {site}: nothing revoked"
            )

    return check


@click.command("crl")
@output_file_option("--out", stdout=True, help="Write to FILE (default, or -: standard output).")
@click.option("--pem", "as_pem", is_flag=True, help="PEM instead of DER.")
@click.pass_obj
def crl_command(provider: RuntimeProvider, out: Path | None, as_pem: bool) -> None:
    """The current CRL, signed by the issuing CA (DER unless --pem)."""
    runtime = provider.runtime()
    ca = load_ca(runtime)
    with runtime.ready_store().transaction() as session:
        if as_pem:
            data = services.crl_pem(session, ca, clock=runtime.clock)
        else:
            data = services.crl(session, ca, clock=runtime.clock)
    if out is None and not as_pem:
        sys.stdout.buffer.write(data)
        return
    emit(data, out)


@click.command("check-expiry")
@click.option("--within", default="14d", show_default=True, callback=duration, help="How soon counts.")
@click.option(
    "--every",
    callback=lambda ctx, param, value: None if value is None else duration(ctx, param, value),
    help="Check again at this interval until stopped (e.g. 6h; `plantwarden up` runs it so).",
)
@click.pass_obj
def check_expiry_command(provider: RuntimeProvider, within: timedelta, every: timedelta | None) -> None:
    """Raise an alert for every device whose newest certificate expires soon."""
    runtime = provider.runtime()
    stop = threading.Event()
    if every is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while True:
        if every is None:
            _check_expiry_once(runtime, within)
            return
        if not CertificateAuthority.exists(pki_directory(runtime.core.data_path)):
            click.echo("no platform CA yet (`plantwarden pki init`): nothing to check", err=True)
        else:
            try:
                _check_expiry_once(runtime, within)
            except PlantwardenError as error:  # e.g. the store being created right now: next time
                click.echo(f"the expiry check failed ({error.message}); trying again in {every}", err=True)
        if stop.wait(every.total_seconds()):
            return


def _check_expiry_once(runtime: Runtime, within: timedelta) -> None:
    with runtime.ready_store().transaction() as session:
        found = services.check_expiry(session, runtime.context(), within=within)
    now = runtime.clock.now()
    for record in found:
        click.echo(
            f"{record.site:<14}{record.device:<20}{record.serial}  {(record.not_after - now).days} days left"
        )
    if not found:
        click.echo(f"no certificate expires within {within.days} days")
        return
    noun = "certificate expires" if len(found) == 1 else "certificates expire"
    click.echo(f"{len(found)} {noun} within {within.days} days: an alert raised for each")
