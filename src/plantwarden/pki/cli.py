"""`plantwarden pki`: the platform CA (init, backup, offline root, re-signing the issuing CA),
enrolment tokens, operator-side enrolment of a CSR, the certificate inventory, revocation, the
CRL and expiry alerts. The commands live in `cli_ca` and `cli_certificates`."""

from __future__ import annotations

import click

from plantwarden.pki.cli_ca import (
    cacerts_command,
    export_root_command,
    init_command,
    renew_issuing_command,
    root_offline_command,
)
from plantwarden.pki.cli_certificates import (
    check_expiry_command,
    crl_command,
    enroll_command,
    list_command,
    revoke_command,
    show_command,
    token_group,
)


@click.group("pki")
def pki_group() -> None:
    """The device PKI: platform CA, enrolment, certificates, revocation and CRL."""


for command in (
    init_command,
    export_root_command,
    root_offline_command,
    renew_issuing_command,
    cacerts_command,
    token_group,
    enroll_command,
    list_command,
    show_command,
    revoke_command,
    crl_command,
    check_expiry_command,
):
    pki_group.add_command(command)
