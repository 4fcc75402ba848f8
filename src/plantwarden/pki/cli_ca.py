"""`plantwarden pki` commands over the CA itself: init, backup, taking the root offline,
re-signing the issuing CA, and the chain devices trust."""

from __future__ import annotations

from pathlib import Path

import click

from plantwarden.core.cli_values import output_file_option
from plantwarden.core.runtime import RuntimeProvider
from plantwarden.pki.authority import CertificateAuthority, export_root, renew_issuing, root_offline
from plantwarden.pki.cli_support import (
    ACTOR,
    PASSPHRASE_FILE,
    audit_ca,
    directory_of,
    emit,
    load_ca,
    passphrase,
)


@click.command("init")
@PASSPHRASE_FILE
@click.option("--name", default="Plantwarden", show_default=True, help="Organisation name of the CA.")
@ACTOR
@click.pass_obj
def init_command(
    provider: RuntimeProvider, passphrase_file: Path | None, name: str, actor: str | None
) -> None:
    """Create the root CA (key encrypted with the passphrase) and the online issuing CA."""
    runtime = provider.runtime()
    secret = passphrase(passphrase_file, confirm=True)
    ca = CertificateAuthority.initialise(directory_of(runtime), secret, name=name, clock=runtime.clock)
    audit_ca(runtime, actor, "pki.ca.initialised", {"root": ca.root.subject.rfc4514_string()})
    click.echo(f"platform CA created in {ca.directory}")
    click.echo(f"root    {ca.root.subject.rfc4514_string()}  until {ca.root.not_valid_after_utc:%Y-%m-%d}")
    click.echo(
        f"issuing {ca.issuing.subject.rfc4514_string()}  until {ca.issuing.not_valid_after_utc:%Y-%m-%d}"
    )
    click.echo("next: back the root up (pki export-root) and take it offline (pki root-offline)")


@click.command("export-root")
@output_file_option("--out", required=True, help="Backup file.")
@ACTOR
@click.pass_obj
def export_root_command(provider: RuntimeProvider, out: Path, actor: str | None) -> None:
    """Write the root CA certificate and its (still encrypted) key to a backup file."""
    runtime = provider.runtime()
    export_root(directory_of(runtime), out)
    audit_ca(runtime, actor, "pki.root.exported", {"file": str(out)})
    click.echo(f"root CA backup written to {out}: keep it offline, with the passphrase apart")


@click.command("root-offline")
@click.option("--backup", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@PASSPHRASE_FILE
@ACTOR
@click.pass_obj
def root_offline_command(
    provider: RuntimeProvider, backup: Path, passphrase_file: Path | None, actor: str | None
) -> None:
    """Check the backup opens with the passphrase, then delete the root key from the data directory."""
    runtime = provider.runtime()
    root_offline(directory_of(runtime), backup, passphrase(passphrase_file, confirm=False))
    audit_ca(runtime, actor, "pki.root.offline", {"backup": str(backup)})
    click.echo("root CA key removed from the data directory; renewing the issuing CA now needs --root-key")


@click.command("renew-issuing")
@click.option("--root-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The root key (the backup file) when the root is offline.")  # fmt: skip
@PASSPHRASE_FILE
@ACTOR
@click.pass_obj
def renew_issuing_command(
    provider: RuntimeProvider, root_key: Path | None, passphrase_file: Path | None, actor: str | None
) -> None:
    """Re-sign the issuing CA with the root for another five years (same key)."""
    runtime = provider.runtime()
    secret = passphrase(passphrase_file, confirm=False)
    ca = renew_issuing(directory_of(runtime), secret, root_key_file=root_key, clock=runtime.clock)
    audit_ca(runtime, actor, "pki.issuing.renewed", {"until": ca.issuing.not_valid_after_utc.isoformat()})
    click.echo(f"issuing CA renewed until {ca.issuing.not_valid_after_utc:%Y-%m-%d}")


@click.command("cacerts")
@output_file_option("--out", stdout=True, help="Write to FILE (default, or -: standard output).")
@click.pass_obj
def cacerts_command(provider: RuntimeProvider, out: Path | None) -> None:
    """The CA chain (issuing CA, then root), PEM: what devices and brokers trust."""
    chain = load_ca(provider.runtime()).chain_pem()
    emit(chain, out)
