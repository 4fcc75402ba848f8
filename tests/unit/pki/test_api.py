"""The PKI routes of the JSON API with real requests against a real store and CA: an administrator
makes a token, a device enrols with it once (openssl verifies the chain), refusals are 403 and
audited, a bad CSR is 422, a source that keeps failing is slowed down; the inventory shows only
the caller's sites; revocation lands in the CRL, which openssl verifies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from fastapi import FastAPI
from sqlalchemy import select

from plantwarden.core import eventlog
from plantwarden.core.auditlog import AuditEntry
from plantwarden.core.config import CoreSettings
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.certs import identity_of
from plantwarden.pki.est_throttle import EnrolmentThrottle
from tests.unit.pki.support import PASSPHRASE, make_csr, openssl, pem, write
from tests.web_support import Server, server


@pytest.fixture
def running(data_dir: Path) -> Iterator[Server]:
    for made in server(data_dir):
        CertificateAuthority.initialise(pki_directory(data_dir), PASSPHRASE)
        made.user("ada", "admin")
        made.user("bob", "admin", site="plant-b")
        made.user("aud", "auditor")
        made.user("sam", "security_analyst")
        made.user("vera", "viewer")
        yield made


def bearer(running: Server, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {running.token(user)}"}


def make_token(running: Server, user: str = "ada", site: str = "plant-a", device: str = "plc-7") -> str:
    body = {"site": site, "device": device, "zone": "cell-1", "role": "operator"}
    made = running.client.post("/api/v1/pki/tokens", json=body, headers=bearer(running, user))
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def enrol(running: Server, token: str, common_name: str = "anything") -> dict[str, str]:
    body = {"token": token, "csr": pem(make_csr(common_name=common_name)).decode()}
    answer = running.client.post("/api/v1/pki/enroll", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, str] = answer.json()
    return result


def ca_of(running: Server) -> CertificateAuthority:
    return CertificateAuthority.load(pki_directory(running.settings[CoreSettings].data_path))


def test_a_token_enrols_a_device_once_and_openssl_verifies_its_certificate(
    running: Server, tmp_path: Path
) -> None:
    made = running.client.post(
        "/api/v1/pki/tokens",
        json={"site": "plant-a", "device": "plc-7", "zone": "cell-1", "role": "operator", "ttl_seconds": 600},
        headers=bearer(running, "ada"),
    )
    assert made.status_code == 201, made.text
    assert made.json()["device"] == "plc-7" and len(made.json()["token"]) >= 22
    issued = enrol(running, made.json()["token"], common_name="the-device-says-otherwise")
    certificate = x509.load_pem_x509_certificate(issued["certificate"].encode())
    identity = identity_of(certificate)
    assert (identity.site, identity.device, identity.zone, identity.role) == (
        "plant-a",
        "plc-7",
        "cell-1",
        "operator",
    )
    assert issued["serial"] == format(certificate.serial_number, "x")
    ca = ca_of(running)
    assert issued["chain"].encode() == ca.chain_pem()
    root, chain = write(tmp_path / "root.pem", pem(ca.root)), write(tmp_path / "issuing.pem", pem(ca.issuing))
    leaf = write(tmp_path / "leaf.pem", issued["certificate"].encode())
    verified = openssl("verify", "-CAfile", str(root), "-untrusted", str(chain), str(leaf))
    assert verified.stdout.strip().endswith(": OK")

    again = running.client.post(
        "/api/v1/pki/enroll", json={"token": made.json()["token"], "csr": pem(make_csr()).decode()}
    )
    assert again.status_code == 403 and "already used" in again.json()["error"]["message"]
    unknown = running.client.post(
        "/api/v1/pki/enroll", json={"token": "nope", "csr": pem(make_csr()).decode()}
    )
    assert unknown.status_code == 403 and "unknown" in unknown.json()["error"]["message"]
    with running.store.transaction() as session:
        refused = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "pki.enrolment_refused")
        ).all()
    assert len(refused) == 2 and {e.outcome for e in refused} == {"denied"}


def test_a_bad_csr_is_422_and_keeps_the_token(running: Server) -> None:
    token = make_token(running)
    garbage = running.client.post("/api/v1/pki/enroll", json={"token": token, "csr": "hello"})
    assert garbage.status_code == 422 and "PEM certificate request" in garbage.json()["error"]["message"]
    enrol(running, token)  # the token was not used up by the bad request


def test_a_source_that_keeps_failing_is_slowed_down(running: Server) -> None:
    app = running.client.app
    assert isinstance(app, FastAPI)
    app.state.enrolment_throttle = EnrolmentThrottle(free=1, base=60.0)
    body = {"token": "wrong", "csr": pem(make_csr()).decode()}
    assert running.client.post("/api/v1/pki/enroll", json=body).status_code == 403
    assert running.client.post("/api/v1/pki/enroll", json=body).status_code == 403  # now blocked
    throttled = running.client.post("/api/v1/pki/enroll", json={**body, "token": make_token(running)})
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 100
    assert "too many failed enrolments" in throttled.json()["error"]["message"]


def test_tokens_only_at_the_callers_sites_and_only_for_managers(running: Server) -> None:
    body = {"site": "plant-b", "device": "plc-7", "zone": "cell-1"}
    assert (
        running.client.post("/api/v1/pki/tokens", json=body, headers=bearer(running, "ada")).status_code
        == 403
    )
    analyst = running.client.post(
        "/api/v1/pki/tokens", json={**body, "site": "plant-a"}, headers=bearer(running, "sam")
    )
    assert analyst.status_code == 403
    too_long = running.client.post(
        "/api/v1/pki/tokens",
        json={**body, "site": "plant-a", "ttl_seconds": 10**8},
        headers=bearer(running, "ada"),
    )
    assert too_long.status_code == 422
    bad_name = running.client.post(
        "/api/v1/pki/tokens",
        json={**body, "site": "plant-a", "device": "a b"},
        headers=bearer(running, "ada"),
    )
    assert bad_name.status_code == 422 and "is not a name" in bad_name.json()["error"]["message"]


def test_the_inventory_shows_only_the_callers_sites(running: Server) -> None:
    mine = enrol(running, make_token(running))
    theirs = enrol(running, make_token(running, "bob", site="plant-b"))
    listed = running.client.get("/api/v1/pki/certificates", headers=bearer(running, "aud"))
    assert [c["serial"] for c in listed.json()] == [mine["serial"]]
    assert listed.json()[0]["status"] == "valid" and listed.json()[0]["issued_via"] == "token"
    one = running.client.get(f"/api/v1/pki/certificates/{mine['serial']}", headers=bearer(running, "sam"))
    assert one.status_code == 200 and one.json()["pem"] == mine["certificate"]
    hidden = running.client.get(
        f"/api/v1/pki/certificates/{theirs['serial']}", headers=bearer(running, "aud")
    )
    assert hidden.status_code == 404
    assert running.client.get("/api/v1/pki/certificates", headers=bearer(running, "vera")).status_code == 403
    none_revoked = running.client.get(
        "/api/v1/pki/certificates?status=revoked", headers=bearer(running, "aud")
    )
    assert none_revoked.json() == []


def test_revocation_is_in_the_crl_and_the_event_log(running: Server, tmp_path: Path) -> None:
    issued = enrol(running, make_token(running))
    serial = issued["serial"]
    url = f"/api/v1/pki/certificates/{serial}/revoke"
    assert running.client.post(url, json={"reason": "x"}, headers=bearer(running, "sam")).status_code == 403
    assert running.client.post(url, json={"reason": "x"}, headers=bearer(running, "bob")).status_code == 404
    two_lines = {"reason": "superseded\nserial 4d8d8852  status valid"}  # as the command line refuses it
    assert running.client.post(url, json=two_lines, headers=bearer(running, "ada")).status_code == 422
    revoked = running.client.post(url, json={"reason": "keyCompromise"}, headers=bearer(running, "ada"))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert (
        running.client.post(url, json={"reason": "again"}, headers=bearer(running, "ada")).status_code == 409
    )
    # the check of the caller's sites comes first, on the row revoked: one who may not see it learns nothing
    assert running.client.post(url, json={"reason": "x"}, headers=bearer(running, "bob")).status_code == 404
    with running.store.transaction() as session:
        events = [e for _, e in eventlog.read_after(session, 0) if e.type == "pki.CertificateRevoked"]
    assert [e.payload["serial"] for e in events] == [serial]

    crl = running.client.get("/api/v1/pki/crl")  # public: no credentials
    assert crl.status_code == 200 and crl.headers["content-type"] == "application/pkix-crl"
    ca = ca_of(running)
    chain = write(tmp_path / "chain.pem", ca.chain_pem())
    crl_file = write(tmp_path / "crl.der", crl.content)
    checked = openssl("crl", "-inform", "DER", "-in", str(crl_file), "-CAfile", str(chain), "-noout", "-text")
    assert "verify OK" in checked.stderr + checked.stdout
    assert f"Serial Number: {serial.upper().rjust(len(serial) + len(serial) % 2, '0')}" in checked.stdout
    unknown = running.client.get("/api/v1/pki/crl?format=json")
    assert unknown.status_code == 422 and "der (the default) or pem" in unknown.json()["error"]["message"]
    as_pem = running.client.get("/api/v1/pki/crl?format=pem")
    assert as_pem.text.startswith("-----BEGIN X509 CRL-----")
    assert x509.load_pem_x509_crl(as_pem.content).get_revoked_certificate_by_serial_number(int(serial, 16))
    cacerts = running.client.get("/api/v1/pki/cacerts")
    assert cacerts.status_code == 200 and cacerts.content == ca.chain_pem()
    assert cacerts.headers["content-type"] == "application/pem-certificate-chain"


def test_without_a_ca_the_public_routes_say_what_to_do(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for made in server(empty):
        for path in ("/api/v1/pki/crl", "/api/v1/pki/cacerts"):
            answer = made.client.get(path)
            assert answer.status_code == 503 and "plantwarden pki init" in answer.json()["error"]["message"]
