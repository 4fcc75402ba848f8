"""Expiry alerts: a device whose newest certificate expires soon (and was not renewed) gets an
alert, one per certificate while it stays open (repeated checks count occurrences)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from plantwarden.alerts.models import Severity
from plantwarden.alerts.services import AlertDraft, raise_alerts
from plantwarden.core.context import Context
from plantwarden.pki.models import REVOKED, CertificateRecord

RULE_ID = "pw-pki-expiry"
DETECTOR = "pki"
DEFAULT_WITHIN = timedelta(days=14)


def expiring(
    session: Session, ctx: Context, *, within: timedelta = DEFAULT_WITHIN
) -> list[CertificateRecord]:
    """Per device, its newest unrevoked certificate, when it is still in force and expires within
    `within` (a device that renewed already has a newer one and is left alone)."""
    now = ctx.clock.now()
    newest: dict[tuple[str, str], CertificateRecord] = {}
    rows = session.scalars(select(CertificateRecord).where(CertificateRecord.status != REVOKED))
    for record in rows:
        key = (record.site, record.device)
        if key not in newest or record.not_after > newest[key].not_after:
            newest[key] = record
    return sorted(
        (r for r in newest.values() if now < r.not_after <= now + within),
        key=lambda r: (r.not_after, r.site, r.device),
    )


def check_expiry(
    session: Session, ctx: Context, *, within: timedelta = DEFAULT_WITHIN
) -> list[CertificateRecord]:
    """Raise a `pw-pki-expiry` alert for every certificate `expiring` finds; those certificates."""
    found = expiring(session, ctx, within=within)
    raise_alerts(session, ctx, [_draft(record, ctx) for record in found])
    return found


def _draft(record: CertificateRecord, ctx: Context) -> AlertDraft:
    left = record.not_after - ctx.clock.now()
    days = left.days
    return AlertDraft(
        site=record.site,
        title=f"Certificate of {record.device} expires in {days} days",
        severity=Severity.MEDIUM,
        detector=DETECTOR,
        rule_id=RULE_ID,
        rule_name="Device certificate about to expire",
        description=(
            f"The certificate {record.serial} of device {record.device} (zone {record.zone}) expires on "
            f"{record.not_after.isoformat()}, in {days} days, and no newer certificate was issued. Renew it "
            "(EST simplereenroll, or `plantwarden pki token create` and enrol again) before the device "
            "loses its connection."
        ),
        assets=[str(record.asset_id)] if record.asset_id is not None else [],
        evidence=[
            {
                "kind": "certificate",
                "serial": record.serial,
                "fingerprint": record.fingerprint,
                "device": record.device,
                "not_after": record.not_after.isoformat(),
                "days_left": days,
            }
        ],
        dedup_key=f"pki-expiry:{record.site}:{record.serial}",
        zone=record.zone,
        extra={"device": record.device, "serial": record.serial, "days_left": days},
    )
