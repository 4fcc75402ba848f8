"""EST (RFC 7030) routes with real requests: cacerts, simpleenroll with HTTP Basic and a one-time
token, simplereenroll with the client certificate in the ASGI TLS extension (put there by the same
`with_tls_extension` the server's protocol uses; the real handshake is in test_est_tls.py and
tests/functional/test_est.py), and the plain-text refusals with their statuses."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import FastAPI
from fastapi.testclient import TestClient

from plantwarden.pki import est_wire
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.certs import identity_of
from plantwarden.pki.est_throttle import EnrolmentThrottle
from plantwarden.pki.models import CertificateRecord
from plantwarden.pki.services import DeviceIdentity, create_token, revoke
from plantwarden.web.tls import with_tls_extension
from tests.unit.pki.support import PASSPHRASE, device_key, make_csr
from tests.web_support import CTX, Server, server

EST = "/.well-known/est"


@pytest.fixture
def running(data_dir: Path) -> Iterator[Server]:
    for made in server(data_dir):
        CertificateAuthority.initialise(pki_directory(data_dir), PASSPHRASE)
        yield made


def token(running: Server, device: str = "plc-7") -> str:
    with running.store.transaction() as session:
        return create_token(
            session, CTX, None, identity=DeviceIdentity("plant-a", device, "cell-1", "operator")
        )


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def csr_body(csr: x509.CertificateSigningRequest) -> bytes:
    return est_wire.base64_lines(csr.public_bytes(Encoding.DER))


PKCS10 = {"Content-Type": "application/pkcs10", "Content-Transfer-Encoding": "base64"}


def enrol(running: Server, key: ec.EllipticCurvePrivateKey | None = None) -> x509.Certificate:
    answer = running.client.post(
        f"{EST}/simpleenroll",
        content=csr_body(make_csr(key)),
        headers={**PKCS10, **basic("plc-7", token(running))},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pkcs7-mime; smime-type=certs-only"
    assert answer.headers["content-transfer-encoding"] == "base64"
    (certificate,) = est_wire.read_certs_only(answer.content)
    return certificate


def test_cacerts_is_the_chain_as_certs_only_pkcs7(running: Server, data_dir: Path) -> None:
    answer = running.client.get(f"{EST}/cacerts")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pkcs7-mime"
    ca = CertificateAuthority.load(pki_directory(data_dir))
    assert set(est_wire.read_certs_only(answer.content)) == {ca.issuing, ca.root}


def test_simpleenroll_takes_the_identity_from_the_token(running: Server) -> None:
    certificate = enrol(running)
    identity = identity_of(certificate)
    assert (identity.site, identity.device, identity.zone, identity.role) == (
        "plant-a",
        "plc-7",
        "cell-1",
        "operator",
    )
    with running.store.transaction() as session:
        record = session.get(CertificateRecord, format(certificate.serial_number, "x"))
        assert record is not None and record.issued_via == "est"


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({"Content-Type": "application/pkcs10"}, 401, "authenticate with HTTP Basic"),
        ({"Content-Type": "application/pkcs10", "Authorization": "Bearer pwt_x"}, 401, "HTTP Basic"),
        ({"Content-Type": "application/pkcs10", **basic("plc-7", "")}, 401, "HTTP Basic"),
        (
            {"Content-Type": "application/x-www-form-urlencoded", **basic("plc-7", "t")},
            415,
            "application/pkcs10",
        ),
        ({"Content-Type": "application/pkcs10", **basic("plc-7", "wrong")}, 403, "token is unknown"),
    ],
)
def test_simpleenroll_refusals_are_plain_text(
    running: Server, headers: dict[str, str], status: int, message: str
) -> None:
    answer = running.client.post(f"{EST}/simpleenroll", content=csr_body(make_csr()), headers=headers)
    assert answer.status_code == status and message in answer.text, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    if status == 401:
        assert answer.headers["www-authenticate"].startswith('Basic realm="plantwarden-est"')


def test_a_used_token_and_a_bad_body(running: Server) -> None:
    secret = token(running)
    headers = {**PKCS10, **basic("plc-7", secret)}
    bad = running.client.post(f"{EST}/simpleenroll", content=b"%%% not base64", headers=headers)
    assert bad.status_code == 400 and "not base64" in bad.text
    weak = ec.generate_private_key(ec.SECP384R1())
    wrong_curve = running.client.post(
        f"{EST}/simpleenroll", content=csr_body(make_csr(weak)), headers=headers
    )
    assert wrong_curve.status_code == 400 and "P-256" in wrong_curve.text
    assert (
        running.client.post(f"{EST}/simpleenroll", content=csr_body(make_csr()), headers=headers).status_code
        == 200
    )
    again = running.client.post(f"{EST}/simpleenroll", content=csr_body(make_csr()), headers=headers)
    assert again.status_code == 403 and "already used" in again.text


def test_simpleenroll_slows_down_a_failing_source(running: Server) -> None:
    app = running.client.app
    assert isinstance(app, FastAPI)
    app.state.enrolment_throttle = EnrolmentThrottle(free=0, base=30.0)
    headers = {**PKCS10, **basic("plc-7", "wrong")}
    assert (
        running.client.post(f"{EST}/simpleenroll", content=csr_body(make_csr()), headers=headers).status_code
        == 403
    )
    throttled = running.client.post(
        f"{EST}/simpleenroll",
        content=csr_body(make_csr()),
        headers={**PKCS10, **basic("plc-7", token(running))},
    )
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "60"


def reenrol_client(running: Server, certificate: x509.Certificate | None) -> TestClient:
    """A client whose requests carry the TLS extension with `certificate` (None: an empty chain)."""
    chain = [certificate.public_bytes(Encoding.PEM).decode()] if certificate is not None else []
    extension: dict[str, object] = {"client_cert_chain": chain, "tls_version": 0x0304}
    return TestClient(with_tls_extension(running.client.app, extension), raise_server_exceptions=False)


def reenrol_csr(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bytes:
    csr = x509.CertificateSigningRequestBuilder().subject_name(certificate.subject).sign(key, hashes.SHA256())
    return csr_body(csr)


def test_simplereenroll_renews_the_client_certificate(running: Server) -> None:
    current = enrol(running)
    new_key = device_key()
    answer = reenrol_client(running, current).post(
        f"{EST}/simplereenroll", content=reenrol_csr(current, new_key), headers=PKCS10
    )
    assert answer.status_code == 200, answer.text
    (renewed,) = est_wire.read_certs_only(answer.content)
    assert renewed.subject == current.subject and renewed.public_key() == new_key.public_key()
    with running.store.transaction() as session:
        old = session.get(CertificateRecord, format(current.serial_number, "x"))
        new = session.get(CertificateRecord, format(renewed.serial_number, "x"))
        assert old is not None and new is not None
        assert (old.status, new.replaces, new.issued_via) == ("superseded", old.serial, "renewal")
    twice = reenrol_client(running, current).post(
        f"{EST}/simplereenroll", content=reenrol_csr(current, device_key()), headers=PKCS10
    )
    assert twice.status_code == 409 and "already renewed" in twice.text


def test_simplereenroll_refusals(running: Server) -> None:
    current = enrol(running)
    body = reenrol_csr(current, device_key())
    no_tls = running.client.post(f"{EST}/simplereenroll", content=body, headers=PKCS10)
    assert no_tls.status_code == 403 and "does not ask for client certificates" in no_tls.text
    no_cert = reenrol_client(running, None).post(f"{EST}/simplereenroll", content=body, headers=PKCS10)
    assert no_cert.status_code == 403 and "curl --cert" in no_cert.text
    other = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(make_csr().subject)
        .sign(device_key(), hashes.SHA256())
    )
    renamed = reenrol_client(running, current).post(
        f"{EST}/simplereenroll", content=csr_body(other), headers=PKCS10
    )
    assert renamed.status_code == 400 and "RFC 7030 4.2.2" in renamed.text
    with running.store.transaction() as session:
        revoke(session, CTX, None, serial=format(current.serial_number, "x"), reason="keyCompromise")
    revoked = reenrol_client(running, current).post(f"{EST}/simplereenroll", content=body, headers=PKCS10)
    assert revoked.status_code == 403 and "revoked" in revoked.text


def test_without_a_ca_est_answers_503(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for made in server(empty):
        answer = made.client.get(f"{EST}/cacerts")
        assert answer.status_code == 503 and "plantwarden pki init" in answer.text
        enrolled = made.client.post(
            f"{EST}/simpleenroll", content=csr_body(make_csr()), headers={**PKCS10, **basic("d", "t")}
        )
        assert enrolled.status_code == 503


@pytest.mark.parametrize(
    ("method", "address", "status", "message"),
    [
        ("GET", f"{EST}/cacerts?label=%00", 422, "query parameter 'label' holds a NUL character"),
        ("POST", f"{EST}/simpleenroll?a%00=1", 422, "query parameter 'a\\x00' holds a NUL character"),
        ("GET", f"{EST}/no-such-operation", 404, "Not Found"),
        ("DELETE", f"{EST}/cacerts", 405, "Method Not Allowed"),
    ],
)
def test_refusals_before_an_est_route_are_plain_text_too(
    running: Server, method: str, address: str, status: int, message: str
) -> None:
    """An EST client reads a plain-text refusal (RFC 7030 4.2.3), not the console's page: the ones
    that come before a route (a NUL, an unknown operation, a wrong method) as well."""
    answer = running.client.request(method, address, headers={"accept": "text/html"})
    assert answer.status_code == status and message in answer.text, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
