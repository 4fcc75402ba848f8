"""Audit entries of the PKI's actions; refusals are written in a transaction of their own, so
that they stay when the caller's transaction rolls back on the error."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from plantwarden.core.auditlog import AuditLog
from plantwarden.core.context import Context


def audit_action(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    action: str,
    *,
    site: str | None,
    target: str,
    details: dict[str, Any],
) -> None:
    """A successful action, in the caller's transaction (after any event: see `auditlog.append`)."""
    if audit is not None:
        audit.record(session, ctx, action, site=site, target=target, details=details)


def audit_refusal(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    action: str,
    *,
    site: str | None,
    target: str,
    details: dict[str, Any],
) -> None:
    """A refused action, committed at once on a session of its own (on the caller's engine).
    Call it before the caller's transaction writes anything: on SQLite a second writer waits."""
    if audit is None:
        return
    with Session(bind=session.get_bind()) as own, own.begin():
        audit.record(own, ctx, action, site=site, target=target, details=details, outcome="denied")
