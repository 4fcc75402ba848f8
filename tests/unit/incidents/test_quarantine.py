"""Quarantine services on SQLite and PostgreSQL: each change is a row, an event and an audit
entry in one transaction; targets are checked and put in the form the gateway compares."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from plantwarden.accounts import services as accounts
from plantwarden.core import eventlog, migrate
from plantwarden.core.auditlog import AuditEntry, AuditKeys, AuditLog, Checkpoints
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import Conflict, InvalidInput, NotFound
from plantwarden.incidents import quarantine as services
from plantwarden.incidents.events import QuarantineChange, change_of
from plantwarden.incidents.quarantine import QuarantineTarget
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from plantwarden.pki.certs import DeviceIdentity
from plantwarden.pki.issuing import issue
from plantwarden.zones.applied import apply_plant
from tests.unit.pki.support import PASSPHRASE, make_csr

ENGINEER = QuarantineTarget.parse("cert_role:engineer")


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(keys=AuditKeys.generate(), checkpoints=Checkpoints(path=tmp_path / "checkpoints.log"))


def changes(store: Store) -> list[QuarantineChange]:
    with store.transaction() as session:
        found = [change_of(event) for _, event in eventlog.read_after(session, 0)]
    return [change for change in found if change is not None]


def test_quarantine_and_release_write_the_row_the_event_and_the_audit_entry(
    ready: Store, ctx: Context, audit: AuditLog, clock: FixedClock
) -> None:
    analyst = Context(source="test", clock=clock, actor="sam")
    with ready.transaction() as session:
        row = services.quarantine(
            session, analyst, audit, site="plant-a", target=ENGINEER, reason=" laptop\n lost "
        )
        assert (row.label, row.reason, row.quarantined_by, row.active) == (
            "cert_role:engineer", "laptop lost", "sam", True
        )  # fmt: skip
    with ready.transaction() as session:
        assert [r.label for r in services.active(session, "plant-a")] == ["cert_role:engineer"]
        assert services.active(session, "plant-b") == []
        services.release(session, ctx, audit, site="plant-a", target=ENGINEER, reason="found it")
    with ready.transaction() as session:
        assert services.active(session) == []
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert [(e.action, e.actor, e.target) for e in entries] == [
            ("incidents.quarantine.added", "sam", "cert_role:engineer"),
            ("incidents.quarantine.released", None, "cert_role:engineer"),
        ]
        assert audit.verify(session).ok
    assert changes(ready) == [
        QuarantineChange("plant-a", "cert_role", "engineer", "laptop lost", True),
        QuarantineChange("plant-a", "cert_role", "engineer", "found it", False),
    ]


def test_twice_is_a_conflict_and_releasing_what_is_not_quarantined_is_not_found(
    ready: Store, ctx: Context
) -> None:
    with ready.transaction() as session:
        services.quarantine(session, ctx, None, site="plant-a", target=ENGINEER, reason="first")
    with (
        pytest.raises(Conflict, match=r"already quarantined at site plant-a .* first"),
        ready.transaction() as session,
    ):
        services.quarantine(session, ctx, None, site="plant-a", target=ENGINEER, reason="second")
    with pytest.raises(NotFound, match="not quarantined at site plant-b"), ready.transaction() as session:
        services.release(session, ctx, None, site="plant-b", target=ENGINEER, reason="wrong site")
    with ready.transaction() as session:
        services.release(session, ctx, None, site="plant-a", target=ENGINEER, reason="done")
        again = services.quarantine(session, ctx, None, site="plant-a", target=ENGINEER, reason="again")
        assert again.active and again.released_at is None and again.reason == "again"
    assert [c.quarantined for c in changes(ready)] == [True, False, True]  # the refusals announced nothing


def test_targets_are_normalised_and_checked(
    ready: Store, ctx: Context, data_dir: Path, clock: FixedClock
) -> None:
    with ready.transaction() as session:
        accounts.create_user(session, ctx, "alice")
        mapped = QuarantineTarget.parse("address:::ffff:10.1.1.20")
        assert services.quarantine(session, ctx, None, site="plant-a", target=mapped, reason="r").target == (
            "10.1.1.20"
        )
        user = QuarantineTarget.parse("user:Alice")
        assert (
            services.quarantine(session, ctx, None, site="plant-a", target=user, reason="r").target == "alice"
        )
    bad = [
        ("address:10.1.1.300", InvalidInput, "not an IP address"),
        ("user:nobody", NotFound, "nobody"),
        ("certificate:zz", InvalidInput, "not a certificate serial"),
        ("certificate:7e57", NotFound, "no certificate with serial 7e57"),
        ("cert_role:two words", InvalidInput, "letters, digits"),
    ]
    for text, error, message in bad:
        with pytest.raises(error, match=message), ready.transaction() as session:
            services.quarantine(
                session, ctx, None, site="plant-a", target=QuarantineTarget.parse(text), reason="r"
            )
    for text in ("engineer", "role:engineer", "cert_role:"):
        with pytest.raises(InvalidInput, match="not a quarantine target"):
            QuarantineTarget.parse(text)
    with pytest.raises(InvalidInput, match="say why"), ready.transaction() as session:
        services.quarantine(session, ctx, None, site="plant-a", target=ENGINEER, reason="  ")
    ca = CertificateAuthority.initialise(pki_directory(data_dir), PASSPHRASE, clock=clock)
    key = ec.generate_private_key(ec.SECP256R1())
    with ready.transaction() as session:
        identity = DeviceIdentity("plant-b", "hmi-9", "cell-1", "operator")
        record = issue(session, ctx, None, ca, identity=identity, csr=make_csr(key)).record
        serial = QuarantineTarget.parse(f"certificate:0x{record.serial.upper()}")
        assert services.quarantine(session, ctx, None, site="plant-b", target=serial, reason="r").target == (
            record.serial
        )
    with pytest.raises(InvalidInput, match="belongs to site plant-b"), ready.transaction() as session:
        services.quarantine(session, ctx, None, site="plant-a", target=serial, reason="r")


def test_an_asset_must_be_one_of_the_applied_plant_models_when_there_is_one(
    ready: Store, ctx: Context
) -> None:
    with ready.transaction() as session:  # no model applied: any asset id of the site's plant.yaml
        services.quarantine(
            session, ctx, None, site="plant-a", target=QuarantineTarget.asset("plc-9"), reason="r"
        )
    plant = (
        "version: 1\nsites:\n  - id: plant-a\n    zones:\n"
        "      - {id: cell-1, purdue_level: 1, subnets: [10.1.1.0/24], security_level: 2}\n"
        "    assets:\n      - {id: plc-1, address: 10.1.1.5}\n"
    )
    with ready.transaction() as session:
        apply_plant(session, ctx, plant.encode(), "plant.yaml")
    with pytest.raises(NotFound, match=r"no asset plc-2 \(assets: plc-1\)"), ready.transaction() as session:
        services.quarantine(
            session, ctx, None, site="plant-a", target=QuarantineTarget.asset("plc-2"), reason="r"
        )
    with ready.transaction() as session:
        row = services.quarantine(
            session, ctx, None, site="plant-a", target=QuarantineTarget.asset("plc-1"), reason="r"
        )
        assert row.label == "asset:plc-1"
    assert [(c.kind, c.id) for c in changes(ready)] == [("asset", "plc-9"), ("asset", "plc-1")]
