"""The ingest's and a device's own TLS files: a damaged or unreadable one is named, with whose it is;
no error names an option of another command (`telemetry subscribe --tls-ca`)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from plantwarden.core.errors import InvalidInput
from plantwarden.core.runtime import Runtime
from plantwarden.devices.agent import CERT, CHAIN, KEY, RECIPIENT, AgentError, AgentFiles
from plantwarden.devices.broker import INGEST_REMEDY, ingest_identity, ingest_tls_context
from plantwarden.devices.cli import devices_group
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.service_certs import Purpose, ServiceIdentity, ensure_service_identity
from tests.conftest import make_settings
from tests.unit.pki.support import PASSPHRASE

SITE = "plant-a"
BROKEN_BLOCK = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


@dataclass
class _Holder:
    held: Runtime

    def runtime(self) -> Runtime:
        return self.held


@pytest.fixture
def ca(data_dir: Path) -> CertificateAuthority:
    return CertificateAuthority.initialise(pki_directory(data_dir), PASSPHRASE)


@pytest.fixture
def ingest(ca: CertificateAuthority) -> ServiceIdentity:
    return ingest_identity(ca, SITE)


def _ingest_command(data_dir: Path) -> BaseException | None:
    runtime = Runtime(make_settings(data_dir))
    try:
        arguments = ["ingest", "--site", SITE, "--broker", "127.0.0.1:1", "--duration", "0.1"]
        return CliRunner().invoke(devices_group, arguments, obj=_Holder(runtime)).exception
    finally:
        runtime.close()


def _append(path: Path, data: bytes) -> None:
    path.write_bytes(path.read_bytes() + data)


DAMAGES = [
    pytest.param(lambda path: path.write_bytes(b"garbage\n"), id="not PEM"),
    pytest.param(lambda path: _append(path, BROKEN_BLOCK), id="a broken block after it"),
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_devices_ingest_issues_its_damaged_certificate_again(
    data_dir: Path,
    ca: CertificateAuthority,
    ingest: ServiceIdentity,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], None],
) -> None:
    # a garbled file was a ValueError traceback, then "the ingest's certificate FILE is damaged ...;
    # remove it and start the ingest again": ensure_service_identity now does that itself
    damage(ingest.certificate)
    with caplog.at_level(logging.WARNING, logger="plantwarden.pki.service_certs"):
        assert _ingest_command(data_dir) is None
    x509.load_pem_x509_certificate(ingest.certificate.read_bytes()).verify_directly_issued_by(ca.issuing)
    assert f"the service certificate {ingest.certificate} is damaged" in caplog.text


@pytest.mark.parametrize("damage", DAMAGES)
def test_the_ingest_names_a_certificate_damaged_after_it_was_issued(
    ingest: ServiceIdentity, damage: Callable[[Path], None]
) -> None:
    # damaged between ensure_service_identity and the TLS context; a broken second block was
    # "--tls-cert FILE, --tls-key FILE: ..." (options of telemetry subscribe, not of devices ingest)
    damage(ingest.certificate)
    with pytest.raises(InvalidInput) as raised:
        ingest_tls_context(ingest)
    assert raised.value.message == (
        f"the ingest's certificate {ingest.certificate} is damaged: not PEM certificates, or one of them"
        f" broken; {INGEST_REMEDY}"
    )


def test_the_ingest_names_a_damaged_ca_chain_not_tls_ca(ingest: ServiceIdentity) -> None:
    # ensure_service_identity rewrites the chain at each start; one damaged after (or unreadable) was
    # "--tls-ca FILE: no CA certificate in it"
    ingest.chain.write_bytes(b"")
    with pytest.raises(InvalidInput) as raised:
        ingest_tls_context(ingest)
    assert raised.value.message == (
        f"the ingest's CA chain {ingest.chain} is damaged: not PEM certificates, or one of them broken;"
        f" {INGEST_REMEDY}"
    )
    ingest.chain.unlink()
    ingest.chain.mkdir()
    with pytest.raises(InvalidInput, match=f"^the ingest's CA chain {ingest.chain} cannot be read: "):
        ingest_tls_context(ingest)


def test_the_ingest_names_a_key_that_is_not_its_certificates(
    ca: CertificateAuthority, ingest: ServiceIdentity
) -> None:
    other = ensure_service_identity(ca, "pw-ingest-plant-b", Purpose.CLIENT)
    shutil.copy(other.key, ingest.key)
    with pytest.raises(InvalidInput) as raised:
        ingest_tls_context(ingest)
    assert raised.value.message == (
        f"the ingest's key {ingest.key} is not the key of the certificate {ingest.certificate};"
        f" {INGEST_REMEDY}"
    )


@pytest.fixture
def device(ca: CertificateAuthority, ingest: ServiceIdentity, tmp_path: Path) -> Path:
    """A device directory as `agent enroll` leaves it (a client certificate of the platform CA)."""
    directory = tmp_path / "device"
    directory.mkdir()
    recipient = ensure_service_identity(ca, "telemetry-recipient", Purpose.RECIPIENT)
    for source, name in (
        (ingest.key, KEY),
        (ingest.certificate, CERT),
        (ingest.chain, CHAIN),
        (recipient.certificate, RECIPIENT),
    ):
        shutil.copy(source, directory / name)
    return directory


@pytest.mark.parametrize(
    ("name", "damage", "what", "reason"),
    [
        (CHAIN, lambda path: path.write_bytes(b""), "CA chain", "is damaged: not PEM certificates"),
        (CERT, lambda path: path.write_bytes(b"garbage"), "certificate", "is damaged: not a PEM certificate"),
        (CERT, lambda path: _append(path, BROKEN_BLOCK), "certificate", "is damaged: not PEM certificates"),
        (RECIPIENT, lambda path: path.write_bytes(b"x"), "telemetry recipient certificate", "is damaged"),
        (CHAIN, lambda path: (path.unlink(), path.mkdir()), "CA chain", "cannot be read: Is a directory"),
    ],
)
def test_a_device_names_its_damaged_file(
    device: Path, name: str, damage: Callable[[Path], object], what: str, reason: str
) -> None:
    # they were "error [os_error]: [X509: NO_CERTIFICATE_OR_CRL_FOUND] ... (_ssl.c:4154)",
    # "[PEM] ASN1 lib (_ssl.c:3905)", "Is a directory" or a ValueError traceback, without the file
    path = device / name
    damage(path)
    with pytest.raises(AgentError) as raised:
        AgentFiles.load(device).tls_context()
    assert raised.value.message.startswith(f"the device's {what} {path} {reason}"), raised.value.message
    assert raised.value.message.endswith("; enrol the device again (`agent enroll --force` with a new token)")


def test_a_device_works_with_undamaged_files(device: Path) -> None:
    context = AgentFiles.load(device).tls_context()
    assert context.verify_mode.name == "CERT_REQUIRED" and context.check_hostname
