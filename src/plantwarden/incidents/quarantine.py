"""Quarantine, a response action: deny a subject or an asset of a site everything, at once.

`quarantine` and `release` change the site's list (`QuarantineEntry`) and announce the change
with an event (`incidents.SubjectQuarantined`, `incidents.AssetQuarantined`,
`incidents.QuarantineReleased`) and an audit entry, all in the caller's transaction: the gateway
of the site reads the events after its position in the event log and applies them to its deny
overlay within a tick, so that a quarantined subject loses its live sessions and a quarantined
asset gets nothing forwarded. `active` is what a gateway loads when it starts.

Targets are written `KIND:ID`, the subjects of the policy model (`cert_role:engineer`,
`address:10.1.1.20`, `user:alice`), a certificate by its serial (`certificate:1f3a...`: the
gateway closes the sessions of that one certificate and refuses it at the handshake), or an
asset by the id of the plant model (`asset:plc-1`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plantwarden.accounts.services import get_user_by_name
from plantwarden.core import eventlog
from plantwarden.core.auditlog import AuditLog
from plantwarden.core.context import Context
from plantwarden.core.errors import Conflict, InvalidInput, NotFound
from plantwarden.core.events import envelope
from plantwarden.core.parsing import ACTOR_LENGTH, one_line
from plantwarden.incidents.events import (
    ASSET,
    AssetQuarantined,
    QuarantineReleased,
    SubjectQuarantined,
)
from plantwarden.incidents.models import QuarantineEntry
from plantwarden.pki.models import CertificateRecord
from plantwarden.pki.queries import normalise_serial
from plantwarden.zones.applied import current_model

CERTIFICATE = "certificate"
SUBJECT_KINDS = ("cert_role", "address", "user", CERTIFICATE)
"""The subject kinds of the policy model, and a single certificate by serial."""
TARGET_KINDS = (*SUBJECT_KINDS, ASSET)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


@dataclass(frozen=True, slots=True)
class QuarantineTarget:
    """What is quarantined: a subject (`kind` one of SUBJECT_KINDS) or an asset (`kind` asset)."""

    kind: str
    id: str

    @classmethod
    def parse(cls, text: str) -> QuarantineTarget:
        """`KIND:ID` (for example `cert_role:engineer`, `address:10.1.1.20`, `asset:plc-1`)."""
        kind, separator, ident = text.strip().partition(":")
        if not separator or kind not in TARGET_KINDS or not ident.strip():
            raise InvalidInput(
                f"{text!r} is not a quarantine target: expected KIND:ID with KIND one of "
                f"{', '.join(TARGET_KINDS)} (for example cert_role:engineer or address:10.1.1.20)"
            )
        return cls(kind, ident.strip())

    @classmethod
    def asset(cls, asset: str) -> QuarantineTarget:
        return cls(ASSET, asset.strip())

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def quarantine(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    *,
    site: str,
    target: QuarantineTarget,
    reason: str,
) -> QuarantineEntry:
    """Put `target` of `site` in quarantine: the row, the event and the audit entry, in the
    caller's transaction. `Conflict` when it already is (the first reason stays)."""
    site, why = _site(site), _reason(reason)
    target = checked(session, site, target)
    row = session.get(QuarantineEntry, (site, target.kind, target.id), with_for_update=True)
    if row is not None and row.active:
        raise Conflict(
            f"{target} is already quarantined at site {site} (since "
            f"{row.quarantined_at.isoformat(timespec='seconds')}, by {row.quarantined_by}: {row.reason})",
            details={"site": site, "target": str(target)},
        )
    now, by = ctx.clock.now(), _who(ctx)
    if row is None:
        row = QuarantineEntry(site=site, kind=target.kind, target=target.id, reason=why,
                              quarantined_by=by, quarantined_at=now)  # fmt: skip
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # quarantined by someone else in the meantime (PostgreSQL)
            raise Conflict(f"{target} was quarantined at site {site} at the same time") from None
    else:
        row.reason, row.quarantined_by, row.quarantined_at = why, by, now
        row.released_at = row.released_by = row.release_reason = None
        session.flush()
    payload: object = (
        AssetQuarantined(site, target.id, why, by)
        if target.kind == ASSET
        else SubjectQuarantined(site, target.kind, target.id, why, by)
    )
    _announce(session, ctx, audit, payload, "incidents.quarantine.added", site, target, why)
    return row


def release(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    *,
    site: str,
    target: QuarantineTarget,
    reason: str,
) -> QuarantineEntry:
    """End the quarantine of `target` of `site` (row, event, audit entry in the caller's
    transaction); `NotFound` when it is not quarantined there."""
    site, why = _site(site), _reason(reason)
    target = _normalised(target)
    row = session.get(QuarantineEntry, (site, target.kind, target.id), with_for_update=True)
    if row is None or not row.active:
        raise NotFound(
            f"{target} is not quarantined at site {site} (plantwarden quarantine list --site {site})",
            details={"site": site, "target": str(target)},
        )
    row.released_at, row.released_by, row.release_reason = ctx.clock.now(), _who(ctx), why
    session.flush()
    payload = QuarantineReleased(site, target.kind, target.id, why, _who(ctx))
    _announce(session, ctx, audit, payload, "incidents.quarantine.released", site, target, why)
    return row


def active(session: Session, site: str | None = None) -> Sequence[QuarantineEntry]:
    """What is quarantined now, at `site` or everywhere, oldest first."""
    query = select(QuarantineEntry).where(QuarantineEntry.released_at.is_(None))
    if site is not None:
        query = query.where(QuarantineEntry.site == site)
    return session.scalars(
        query.order_by(QuarantineEntry.site, QuarantineEntry.quarantined_at, QuarantineEntry.target)
    ).all()


def checked(session: Session, site: str, target: QuarantineTarget) -> QuarantineTarget:
    """`target` in the form the gateway compares (an address as it prints, a serial as the
    inventory keeps it, a username in lower case), and known where the store can tell: a user
    must exist, a certificate must be one of the site's, an asset one of the applied plant
    model's assets of the site (when a model is applied and names the site)."""
    target = _normalised(target)
    if target.kind == "user":
        get_user_by_name(session, target.id)
    elif target.kind == CERTIFICATE:
        record = session.get(CertificateRecord, target.id)
        if record is None:
            raise NotFound(f"no certificate with serial {target.id} (plantwarden pki list)")
        if record.site != site:
            raise InvalidInput(
                f"certificate {target.id} belongs to site {record.site}, not {site}: quarantine it there"
            )
    elif target.kind == ASSET:
        model = current_model(session)
        plant_site = next((s for s in model.sites if s.id == site), None) if model else None
        if plant_site is not None and target.id not in {a.id for a in plant_site.assets}:
            known = ", ".join(sorted(a.id for a in plant_site.assets)) or "none"
            raise NotFound(
                f"site {site} of the applied plant model has no asset {target.id} (assets: {known})"
            )
    return target


def _normalised(target: QuarantineTarget) -> QuarantineTarget:
    if target.kind not in TARGET_KINDS:
        raise InvalidInput(f"{target.kind!r} is not a quarantine kind ({', '.join(TARGET_KINDS)})")
    if target.kind == "address":
        try:
            ip = ipaddress.ip_address(target.id.split("%", 1)[0])
        except ValueError:
            raise InvalidInput(f"address:{target.id}: not an IP address (for example 10.1.1.20)") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return QuarantineTarget("address", str(ip))
    if target.kind == CERTIFICATE:
        return QuarantineTarget(CERTIFICATE, normalise_serial(target.id))
    if target.kind == "user":
        return QuarantineTarget("user", target.id.strip().lower())
    if not _NAME.fullmatch(target.id):
        raise InvalidInput(
            f"{target}: a {target.kind} id is letters, digits, '.', '_' and '-' (at most 255 characters)"
        )
    return target


def _site(site: str) -> str:
    text = site.strip()
    if not _SITE.fullmatch(text):
        raise InvalidInput(f"{site!r} is not a site id (letters, digits, '.', '_', '-'; at most 63)")
    return text


def _reason(reason: str) -> str:
    """The reason on one line (line breaks and runs of spaces made one space), or `InvalidInput`
    when it is empty, too long, or holds a control or format character: that would break or
    reorder the lines that show it (`quarantine list`, the gateway's decisions)."""
    empty = "say why (--reason): the reason is shown in every decision the quarantine causes"
    return one_line(" ".join(reason.split()), "the reason", 1000, empty=empty)


def _who(ctx: Context) -> str:
    """Who acts, as the row keeps it: refused rather than cut to its column."""
    return one_line(ctx.actor or ctx.source, "who acts (--actor)", ACTOR_LENGTH, trim=False)


def _announce(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    payload: object,
    action: str,
    site: str,
    target: QuarantineTarget,
    reason: str,
) -> None:
    """The event, then the audit entry (the audit log's order: see `auditlog.append`)."""
    eventlog.record(
        session, envelope(payload, clock=ctx.clock, source=ctx.source, site=site), clock=ctx.clock
    )
    if audit is not None:
        details = {"kind": target.kind, "id": target.id, "reason": reason}
        audit.record(session, ctx, action, site=site, target=str(target), details=details)
