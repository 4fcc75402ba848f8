"""Suppressions: for a time, alerts of one rule (at a site, about an asset) are stored suppressed:
kept and counted, but left out of the default lists."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from plantwarden.alerts.errors import InvalidAlert, check_note
from plantwarden.alerts.events import SuppressionCreated
from plantwarden.alerts.models import Suppression
from plantwarden.core import eventlog
from plantwarden.core.context import Context
from plantwarden.core.events import envelope
from plantwarden.core.ids import new_id
from plantwarden.core.parsing import one_line

MAX_SUPPRESSION = timedelta(days=90)
"""The longest a suppression may last: a rule silenced for good should be changed instead."""
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """`30m`, `8h`, `2d` as a duration; `InvalidAlert` for anything else."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise InvalidAlert(f"{text!r} is not a duration: give a number and s, m, h or d (for example 8h)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def suppress(
    session: Session,
    ctx: Context,
    rule_id: str,
    duration: timedelta,
    reason: str,
    *,
    site: str | None = None,
    asset: str | None = None,
) -> Suppression:
    """Suppress alerts of `rule_id` (at `site`, about `asset`, where given) for `duration` from now."""
    if not rule_id.strip():
        raise InvalidAlert("a suppression needs the rule id it silences")
    rule_id = one_line(rule_id, "the rule id", 120)  # whole in its column, one line where shown
    site = one_line(site, "the site", 63) if site else None
    asset = one_line(asset, "the asset", 63) if asset else None
    if not reason.strip():
        raise InvalidAlert("a suppression needs a reason (kept with it and shown to analysts)")
    check_note(reason, "the reason")
    if not timedelta(0) < duration <= MAX_SUPPRESSION:
        raise InvalidAlert(f"a suppression lasts more than 0 and at most {MAX_SUPPRESSION.days} days")
    now = ctx.clock.now()
    suppression = Suppression(
        id=new_id(),
        rule_id=rule_id,
        site=site or None,
        asset=asset or None,
        reason=reason,
        created_by=ctx.actor,
        created_at=now,
        until=now + duration,
    )
    session.add(suppression)
    session.flush()
    event = SuppressionCreated(
        str(suppression.id), rule_id, site, asset, suppression.until.isoformat(), ctx.actor
    )
    eventlog.record(session, envelope(event, clock=ctx.clock, source=ctx.source, site=site))
    return suppression


def active_suppressions(session: Session, now: datetime, *, site: str | None = None) -> Sequence[Suppression]:
    """Suppressions in force at `now` (those of `site` and of every site when `site` is given)."""
    statement = select(Suppression).where(Suppression.until > now, Suppression.created_at <= now)
    if site is not None:
        statement = statement.where(or_(Suppression.site.is_(None), Suppression.site == site))
    return session.scalars(statement.order_by(Suppression.until.desc(), Suppression.id)).all()


def matching_suppression(
    session: Session, now: datetime, rule_id: str, site: str, assets: Sequence[str]
) -> Suppression | None:
    """The suppression in force at `now` that covers an alert of `rule_id` at `site` about `assets`."""
    for suppression in active_suppressions(session, now, site=site):
        if suppression.rule_id == rule_id and (suppression.asset is None or suppression.asset in assets):
            return suppression
    return None
