"""The platform's own service certificates: a damaged one is issued again from the platform CA, like a
stale one, with a warning naming the file; a whole one is kept."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography import x509

from plantwarden.core.clock import FixedClock
from plantwarden.pki.authority import CertificateAuthority
from plantwarden.pki.service_certs import BACKDATE, Purpose, ServiceIdentity, ensure_service_identity

BROKEN_BLOCK = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
HOSTS = ("broker.plant.example",)


def _ensure(ca: CertificateAuthority, clock: FixedClock) -> ServiceIdentity:
    return ensure_service_identity(ca, "mqtt-broker", Purpose.SERVER, hosts=HOSTS, clock=clock)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda _: b"garbage\n", id="not PEM"),
        pytest.param(lambda _: b"", id="empty"),
        pytest.param(lambda _: BROKEN_BLOCK, id="a certificate that does not parse"),
        # the first block still reads, but TLS reads them all and refused the file ("[PEM] ASN1 lib")
        pytest.param(lambda data: data + BROKEN_BLOCK, id="a broken block after it"),
    ],
)
def test_a_damaged_service_certificate_is_issued_again_with_a_warning(
    ca: CertificateAuthority,
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[bytes], bytes],
) -> None:
    # it was a ValueError from cryptography, without the file, and the service did not start
    identity = _ensure(ca, clock)
    key = identity.key.read_bytes()
    identity.certificate.write_bytes(damage(identity.certificate.read_bytes()))
    clock.advance(timedelta(minutes=1))
    with caplog.at_level(logging.WARNING, logger="plantwarden.pki.service_certs"):
        again = _ensure(ca, clock)
    (certificate,) = x509.load_pem_x509_certificates(again.certificate.read_bytes())
    certificate.verify_directly_issued_by(ca.issuing)
    assert certificate.not_valid_before_utc == clock.now() - BACKDATE  # issued now
    assert again.key.read_bytes() == key and certificate.public_key() == again.load_key().public_key()
    assert [record.getMessage() for record in caplog.records] == [
        f"the service certificate {identity.certificate} is damaged (not a PEM certificate, or a broken one):"
        " issuing it again from the platform CA"
    ]


def test_a_whole_service_certificate_is_kept_without_a_warning(
    ca: CertificateAuthority, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    first = _ensure(ca, clock).certificate.read_bytes()
    clock.advance(timedelta(days=1))
    with caplog.at_level(logging.WARNING, logger="plantwarden.pki.service_certs"):
        assert _ensure(ca, clock).certificate.read_bytes() == first
    assert not caplog.records
