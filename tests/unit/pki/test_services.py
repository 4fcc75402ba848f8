"""The PKI's services on a real store (SQLite and PostgreSQL): one-time tokens, issuing and
renewal, revocation (event and audit), the CRL (verified by openssl), status, assets, expiry."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from plantwarden.alerts.models import Alert
from plantwarden.core.auditlog import AuditEntry, AuditLog
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.core.eventlog import EventRecord
from plantwarden.inventory.models import StoredAsset
from plantwarden.pki import services
from plantwarden.pki.authority import CertificateAuthority
from plantwarden.pki.certs import identity_of
from plantwarden.pki.errors import CertificateStateConflict, EnrolmentRefused, InvalidRequest
from plantwarden.pki.events import CERTIFICATE_REVOKED
from plantwarden.pki.models import CertificateRecord
from plantwarden.pki.revocation import CRL_VALIDITY
from plantwarden.pki.services import CertificateStatus, DeviceIdentity
from tests.unit.pki.support import device_key, make_csr, openssl, write

PLC = DeviceIdentity("plant-a", "plc-1", "cell-1", "operator")


def audit_actions(store: Store) -> list[tuple[str, str]]:
    with store.transaction() as session:
        return [(e.action, e.outcome) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


def issue(
    store: Store, ctx: Context, ca: CertificateAuthority, identity: DeviceIdentity = PLC
) -> services.IssuedCertificate:
    with store.transaction() as session:
        return services.issue(session, ctx, None, ca, identity=identity, csr=make_csr())


def test_a_token_enrols_once_and_every_refusal_is_audited(
    ready: Store, ctx: Context, ca: CertificateAuthority, audit: AuditLog, clock: FixedClock
) -> None:
    with ready.transaction() as session:
        token = services.create_token(session, ctx, audit, identity=PLC)
        expiring = services.create_token(session, ctx, audit, identity=PLC, ttl=timedelta(hours=1))
    assert len(token) >= 22  # >= 128 bits, URL-safe
    with pytest.raises(InvalidRequest, match="P-256"), ready.transaction() as session:
        services.enrol_with_token(session, ctx, audit, ca, token=token, csr=_p384_csr())
    with ready.transaction() as session:  # a bad CSR does not use the token up
        issued = services.enrol_with_token(session, ctx, audit, ca, token=token, csr=make_csr())
    assert identity_of(issued.certificate) == PLC
    assert issued.chain == [ca.issuing, ca.root]
    assert issued.record.issued_via == "token"
    with pytest.raises(EnrolmentRefused, match="already used"), ready.transaction() as session:
        services.enrol_with_token(session, ctx, audit, ca, token=token, csr=make_csr())
    with pytest.raises(EnrolmentRefused, match="unknown"), ready.transaction() as session:
        services.enrol_with_token(session, ctx, audit, ca, token=token + "x", csr=make_csr())
    clock.advance(timedelta(hours=1))
    with pytest.raises(EnrolmentRefused, match="expired"), ready.transaction() as session:
        services.enrol_with_token(session, ctx, audit, ca, token=expiring, csr=make_csr())
    assert audit_actions(ready) == [
        ("pki.token.created", "success"),
        ("pki.token.created", "success"),
        ("pki.enrolment_refused", "denied"),
        ("pki.certificate.issued", "success"),
        ("pki.enrolment_refused", "denied"),
        ("pki.enrolment_refused", "denied"),
        ("pki.enrolment_refused", "denied"),
    ]
    with ready.transaction() as session:
        (used,) = [t for t in services.tokens(session) if t.used_at is not None]
        assert used.used_serial == issued.record.serial


def _p384_csr() -> x509.CertificateSigningRequest:
    return make_csr(ec.generate_private_key(ec.SECP384R1()))


def test_renewal_supersedes_and_keeps_the_identity(
    ready: Store, ctx: Context, ca: CertificateAuthority, clock: FixedClock
) -> None:
    first = issue(ready, ctx, ca)
    clock.advance(timedelta(days=70))
    new_key = device_key()
    with ready.transaction() as session:
        second = services.renew(session, ctx, None, ca, current=first.certificate, csr=make_csr(new_key))
    assert identity_of(second.certificate) == PLC
    assert second.certificate.public_key() == new_key.public_key()
    assert (second.record.replaces, second.record.issued_via) == (first.record.serial, "renewal")
    with ready.transaction() as session:
        old = services.get_certificate(session, first.record.serial)
        assert old.status == "superseded"
        # the old certificate stays usable until it expires: the device switches over
        assert (
            services.status(session, services.fingerprint(first.certificate), clock.now())
            is CertificateStatus.VALID
        )
    renewed_by = f"already renewed \\(by {second.record.serial}"
    with pytest.raises(CertificateStateConflict, match=renewed_by), ready.transaction() as session:
        services.renew(session, ctx, None, ca, current=first.certificate, csr=make_csr())
    with ready.transaction() as session:
        services.revoke(session, ctx, None, serial=second.record.serial, reason="keyCompromise")
    with pytest.raises(EnrolmentRefused, match="revoked"), ready.transaction() as session:
        services.renew(session, ctx, None, ca, current=second.certificate, csr=make_csr())


def test_a_certificate_we_did_not_issue_cannot_renew(
    ready: Store, ctx: Context, ca: CertificateAuthority, tmp_path: Path, clock: FixedClock
) -> None:
    other = CertificateAuthority.initialise(tmp_path / "other", b"another long passphrase", clock=clock)
    foreign = issue(ready, ctx, other)
    with ready.transaction() as session:
        session.delete(services.get_certificate(session, foreign.record.serial))
    with (
        pytest.raises(EnrolmentRefused, match="not issued by this platform CA"),
        ready.transaction() as session,
    ):
        services.renew(session, ctx, None, ca, current=foreign.certificate, csr=make_csr())
    expired = issue(ready, ctx, ca)
    clock.advance(timedelta(days=91))
    with pytest.raises(EnrolmentRefused, match="not in force"), ready.transaction() as session:
        services.renew(session, ctx, None, ca, current=expired.certificate, csr=make_csr())


def test_revocation_is_an_event_in_the_same_transaction_and_an_audit_entry(
    ready: Store, ctx: Context, ca: CertificateAuthority, audit: AuditLog
) -> None:
    issued = issue(ready, ctx, ca)
    with ready.transaction() as session:
        record = services.revoke(
            session, ctx, audit, serial=issued.record.serial.upper(), reason="decommissioned"
        )
    assert (record.status, record.revocation_reason) == ("revoked", "decommissioned")
    with ready.transaction() as session:
        (event,) = session.scalars(select(EventRecord).where(EventRecord.type == CERTIFICATE_REVOKED))
        assert event.site == "plant-a"
        assert event.payload == {
            "serial": issued.record.serial,
            "fingerprint": services.fingerprint(issued.certificate).hex(),
            "site": "plant-a",
            "device": "plc-1",
            "reason": "decommissioned",
        }
        status = services.status(session, services.fingerprint(issued.certificate), ctx.clock.now())
        assert status is CertificateStatus.REVOKED
    assert audit_actions(ready) == [("pki.certificate.revoked", "success")]
    with pytest.raises(CertificateStateConflict, match="already revoked"), ready.transaction() as session:
        services.revoke(session, ctx, audit, serial=issued.record.serial, reason="again")
    with pytest.raises(Exception, match="revoked"), ready.transaction() as session:  # rolled back: no event
        services.revoke(session, ctx, audit, serial=issued.record.serial, reason="again")
    with ready.transaction() as session:
        assert (
            len(session.scalars(select(EventRecord).where(EventRecord.type == CERTIFICATE_REVOKED)).all())
            == 1
        )


def _revoke_elsewhere(store: Store, serial: str) -> str:
    """Another writer (a second operator, the API) revokes the certificate: 'committed', or 'waits'
    when it would wait for the transaction under test (it gives up after 0.2 s)."""
    sqlite = store.dialect == "sqlite"
    with store.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA busy_timeout = 200" if sqlite else "SET lock_timeout = '200ms'")
        connection.commit()
        try:
            connection.execute(
                update(CertificateRecord)
                .where(CertificateRecord.serial == serial)
                .values(status="revoked", revocation_reason="elsewhere")
            )
            connection.commit()
        except OperationalError:
            connection.rollback()
            return "waits"
        finally:
            connection.exec_driver_sql("PRAGMA busy_timeout = 30000" if sqlite else "RESET lock_timeout")
            connection.commit()
    return "committed"


@pytest.mark.parametrize("refuse", [False, True])
def test_revocation_holds_the_certificate_its_check_saw_until_it_is_revoked(
    ready: Store, ctx: Context, ca: CertificateAuthority, refuse: bool
) -> None:
    # `pki revoke SERIAL --site S` checked the site on one read and revoked on another: a revocation
    # committed in between was overwritten
    issued = issue(ready, ctx, ca)
    seen: list[tuple[str, str]] = []

    def check(record: CertificateRecord) -> None:
        seen.append((record.status, _revoke_elsewhere(ready, record.serial)))
        if refuse:
            raise InvalidInput("not this one")

    with contextlib.suppress(InvalidInput), ready.transaction() as session:
        services.revoke(session, ctx, None, serial=issued.record.serial, reason="stolen", check=check)
    assert seen == [("valid", "waits")]
    with ready.transaction() as session:
        record = services.get_certificate(session, issued.record.serial)
        assert (record.status, record.revocation_reason) == (
            ("valid", None) if refuse else ("revoked", "stolen")
        )


def test_revoke_device_revokes_every_usable_certificate(
    ready: Store, ctx: Context, ca: CertificateAuthority
) -> None:
    first = issue(ready, ctx, ca)
    with ready.transaction() as session:
        services.renew(session, ctx, None, ca, current=first.certificate, csr=make_csr())
    issue(ready, ctx, ca, DeviceIdentity("plant-a", "plc-2", "cell-1"))
    with ready.transaction() as session:
        revoked = services.revoke_device(session, ctx, None, site="plant-a", device="plc-1", reason="stolen")
        assert len(revoked) == 2
        left = services.list_certificates(session, site="plant-a", status="valid")
        assert [r.device for r in left] == ["plc-2"]


def test_the_crl_verifies_with_openssl_and_its_number_grows_with_the_set(
    ready: Store, ctx: Context, ca: CertificateAuthority, tmp_path: Path
) -> None:
    issuing = write(tmp_path / "issuing.pem", ca.issuing.public_bytes(Encoding.PEM))
    one, two = issue(ready, ctx, ca), issue(ready, ctx, ca)
    with ready.transaction() as session:
        empty = services.crl(session, ca, clock=ctx.clock)
        services.revoke(session, ctx, None, serial=one.record.serial, reason="keyCompromise")
    with ready.transaction() as session:
        first = services.crl_pem(session, ca, clock=ctx.clock)
        again = services.crl_pem(session, ca, clock=ctx.clock)
    crl_file = write(tmp_path / "crl.pem", first)
    text = openssl("crl", "-in", str(crl_file), "-CAfile", str(issuing), "-verify", "-noout", "-text")
    assert "verify OK" in text.stderr + text.stdout
    assert f"Serial Number: {_openssl_serial(one.record.serial)}" in text.stdout
    assert _openssl_serial(two.record.serial) not in text.stdout
    assert "Key Compromise" in text.stdout
    assert _crl_number(empty) == 1 and _crl_number(first) == 2 and _crl_number(again) == 2
    forged = CertificateAuthority.initialise(tmp_path / "forged", b"another long passphrase")
    other = write(tmp_path / "other.pem", forged.issuing.public_bytes(Encoding.PEM))
    refused = openssl("crl", "-in", str(crl_file), "-CAfile", str(other), "-verify", "-noout", check=False)
    assert "verify OK" not in refused.stderr + refused.stdout


def test_a_crl_is_valid_for_the_documented_day(
    ready: Store, ca: CertificateAuthority, clock: FixedClock
) -> None:
    """Whoever serves the CRL from a file must refresh it within CRL_VALIDITY: the value and the
    docs must agree."""
    with ready.transaction() as session:
        crl = x509.load_der_x509_crl(services.crl(session, ca, clock=clock))
    assert crl.last_update_utc == clock.now()
    assert crl.next_update_utc == clock.now() + CRL_VALIDITY == clock.now() + timedelta(days=1)
    doc = " ".join((Path(__file__).resolve().parents[3] / "docs" / "pki.md").read_text().split())
    assert "A CRL is valid for one day (`nextUpdate` = `thisUpdate` + `revocation.CRL_VALIDITY`)" in doc
    assert "must refresh it daily" in doc


def _openssl_serial(serial: str) -> str:
    """How `openssl crl -text` prints a serial: upper-case hex in whole bytes."""
    return serial.upper().zfill(len(serial) + len(serial) % 2)


def _crl_number(data: bytes) -> int:
    loaded = x509.load_pem_x509_crl(data) if data.startswith(b"-----") else x509.load_der_x509_crl(data)
    return loaded.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_status_over_time_and_lookup_by_fingerprint(
    ready: Store, ctx: Context, ca: CertificateAuthority
) -> None:
    issued = issue(ready, ctx, ca)
    kid = services.fingerprint(issued.certificate)
    now = ctx.clock.now()
    with ready.transaction() as session:
        record = services.certificate_by_fingerprint(session, kid)
        assert record is not None and record.serial == issued.record.serial
        assert record.certificate() == issued.certificate
        assert services.certificate_by_fingerprint(session, bytes(32)) is None
        assert services.status(session, kid, now) is CertificateStatus.VALID
        assert services.status(session, kid, now - timedelta(hours=1)) is CertificateStatus.NOT_YET_VALID
        assert services.status(session, kid, now + timedelta(days=90)) is CertificateStatus.EXPIRED
        assert services.status(session, bytes(32), now) is CertificateStatus.UNKNOWN


def _asset(site: str, name: str, ctx: Context) -> StoredAsset:
    now = ctx.clock.now()
    fact = {"value": name, "source": "lldp", "confidence": 1.0, "first_ns": 0, "last_ns": 0}
    return StoredAsset(id=uuid.uuid4(), site=site, segment="default", facts={"system_name": fact},
                       first_seen=now, last_seen=now, created_at=now, updated_at=now)  # fmt: skip


def test_certificates_link_to_the_one_asset_that_names_the_device(
    ready: Store, ctx: Context, ca: CertificateAuthority
) -> None:
    with ready.transaction() as session:
        plc = _asset("plant-a", "PLC-1", ctx)
        session.add_all(
            [
                plc,
                _asset("plant-b", "plc-1", ctx),
                _asset("plant-a", "hmi", ctx),
                _asset("plant-a", "hmi", ctx),
            ]
        )
    assert issue(ready, ctx, ca).record.asset_id == plc.id
    assert (
        issue(ready, ctx, ca, DeviceIdentity("plant-a", "hmi", "cell-1")).record.asset_id is None
    )  # two match
    given = uuid.uuid4()
    assert (
        issue(ready, ctx, ca, DeviceIdentity("plant-a", "x", "cell-1", asset_id=given)).record.asset_id
        == given
    )


def test_expiry_alerts_once_per_certificate_and_not_after_renewal(
    ready: Store, ctx: Context, ca: CertificateAuthority, clock: FixedClock
) -> None:
    plc1 = issue(ready, ctx, ca)
    issue(ready, ctx, ca, DeviceIdentity("plant-a", "plc-2", "cell-1"))
    clock.advance(timedelta(days=70))
    with ready.transaction() as session:
        assert services.check_expiry(session, ctx) == []
        services.renew(session, ctx, None, ca, current=plc1.certificate, csr=make_csr())
    clock.advance(timedelta(days=10))  # 10 days left for plc-2's certificate, plc-1 renewed
    with ready.transaction() as session:
        (found,) = services.check_expiry(session, ctx)
        assert found.device == "plc-2"
    with ready.transaction() as session:
        services.check_expiry(session, ctx)  # again: the open alert counts an occurrence
    with ready.transaction() as session:
        (alert,) = session.scalars(select(Alert))
        assert (alert.rule_id, alert.severity, alert.occurrences) == ("pw-pki-expiry", 2, 2)
        assert "plc-2" in alert.title and "10 days" in alert.title
        assert found.serial in alert.description and "in 10 days" in alert.description
