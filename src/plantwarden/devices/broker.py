"""The plant's Mosquitto, configured from the platform: a TLS listener whose certificate comes from
the platform CA, client certificates of the platform CA required, the CRL checked, and an ACL.

Who may do what at the broker (the ACL; a client's user name is its certificate's common name and,
with `use_username_as_clientid`, so is its client id, so nobody can take over another's session):
- each site's ingest (`pw-ingest-SITE`) reads that site's telemetry, `SITE/+/+/telemetry`;
- each device writes only its own topic, `+/+/DEVICE/telemetry` (`pattern write +/+/%u/telemetry`).
The envelope does not depend on any of this (a broker that lets anyone do anything still cannot read
or forge a message); the ACL keeps devices from reading each other's ciphertext and from filling
the ingest's queue in another device's name.

A CRL is valid for a day (`pki.revocation`): the files are rewritten with `refresh`, and Mosquitto
reads them again on SIGHUP (the listener's CRL and certificates included, Mosquitto 2.0), which
`broker-config --refresh-every` does on its own.
"""

from __future__ import annotations

import os
import signal
import ssl
from dataclasses import dataclass
from pathlib import Path

from plantwarden.core.errors import InvalidInput
from plantwarden.core.runtime import Runtime
from plantwarden.devices.tls import ClientFiles, client_tls_context
from plantwarden.monitoring.telemetry import check_site
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.keys import replace_file
from plantwarden.pki.revocation import crl_pem
from plantwarden.pki.service_certs import Purpose, ServiceIdentity, ensure_service_identity

BROKER = "mqtt-broker"
INGEST_PREFIX = "pw-ingest-"
MAX_INFLIGHT = 1000
"""QoS 1 messages the broker sends a client before it waits for acknowledgements (the ingest
acknowledges in batches of 500)."""
MAX_QUEUED = 100_000
"""QoS 1 messages the broker keeps for a disconnected persistent session (the ingest restarting)."""


INGEST_REMEDY = (
    "remove it and start the ingest again: a missing certificate, key or chain is made anew from the"
    " platform CA"
)


def ingest_identity(ca: CertificateAuthority, site: str) -> ServiceIdentity:
    """The client certificate of a site's telemetry ingest (common name `pw-ingest-SITE`); one whose
    file is damaged is issued again (`ensure_service_identity`)."""
    return ensure_service_identity(ca, f"{INGEST_PREFIX}{check_site(site)}", Purpose.CLIENT)


def ingest_tls_context(identity: ServiceIdentity) -> ssl.SSLContext:
    """The ingest's client TLS: the broker verified by the platform CA, the ingest's certificate."""
    files = ClientFiles(identity.chain, identity.certificate, identity.key, "the ingest's", INGEST_REMEDY)
    return client_tls_context(files)


@dataclass(frozen=True)
class BrokerConfig:
    """Where the listener's files go and what it serves."""

    out: Path
    hosts: tuple[str, ...]
    sites: tuple[str, ...]
    port: int = 8883
    bind: str = "0.0.0.0"  # noqa: S104 (a broker serves the plant network)

    @property
    def conf(self) -> Path:
        return self.out / "mosquitto.conf"

    @property
    def pidfile(self) -> Path:
        return self.out / "mosquitto.pid"


def _acl(sites: tuple[str, ...]) -> str:
    lines = [
        "# written by `plantwarden devices broker-config`: a client's user name is its certificate's CN",
        "# every device writes its own telemetry topic only",
        "pattern write +/+/%u/telemetry",
    ]
    for site in sites:
        lines += ["", f"# the telemetry ingest of site {site}", f"user {INGEST_PREFIX}{site}"]
        lines.append(f"topic read {site}/+/+/telemetry")
    return "\n".join(lines) + "\n"


def write_broker_config(runtime: Runtime, config: BrokerConfig) -> None:
    """Write (or rewrite) the listener: chain, server certificate and key, the current CRL, the
    ACL and mosquitto.conf."""
    if not config.sites:
        raise InvalidInput("name the sites whose ingest reads from this broker (--site)")
    for site in config.sites:
        check_site(site)
    ca = CertificateAuthority.load(pki_directory(runtime.core.data_path))
    identity = ensure_service_identity(ca, BROKER, Purpose.SERVER, hosts=config.hosts)
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    with runtime.ready_store().transaction() as session:
        crl = crl_pem(session, ca)
    replace_file(out / "ca-chain.pem", ca.chain_pem(), 0o644)
    replace_file(out / "broker.pem", identity.certificate.read_bytes(), 0o644)
    replace_file(out / "broker.key", identity.key.read_bytes(), 0o600)
    replace_file(out / "crl.pem", crl, 0o644)
    replace_file(out / "acl", _acl(config.sites).encode(), 0o644)
    text = (
        f"# written by `plantwarden devices broker-config`\n"
        f"per_listener_settings false\n"
        f"acl_file {out / 'acl'}\n"
        f"persistence true\npersistence_location {out}/\n"
        f"max_inflight_messages {MAX_INFLIGHT}\nmax_queued_messages {MAX_QUEUED}\n"
        f"pid_file {config.pidfile}\n\n"
        f"listener {config.port} {config.bind}\n"
        f"cafile {out / 'ca-chain.pem'}\ncertfile {out / 'broker.pem'}\nkeyfile {out / 'broker.key'}\n"
        f"crlfile {out / 'crl.pem'}\nrequire_certificate true\n"
        f"use_identity_as_username true\nuse_username_as_clientid true\n"
        f"tls_version tlsv1.2\n"
    )
    replace_file(config.conf, text.encode(), 0o644)


def reload_broker(pidfile: Path) -> int | None:
    """Ask the running Mosquitto to read its files again (SIGHUP); its pid, or None when none runs."""
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        return None
    return pid
