"""Baselines in the store: load a site's baselines, save what was learned (merging with what
others changed since: accepted facts, scopes protected or reset by hand), raise deviations as
alerts, and the analyst's actions (protect, accept a deviation or a fact, reset a scope), each
in the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plantwarden.alerts.models import Alert
from plantwarden.alerts.services import RaisedCounts, get_alert, raise_alerts
from plantwarden.core.auditlog import AuditLog
from plantwarden.core.clock import from_nanoseconds, nanoseconds
from plantwarden.core.context import Context
from plantwarden.core.db import sqlite_write_lock
from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.core.parsing import one_line
from plantwarden.detection.baselines.alerting import DETECTOR, EVIDENCE_KIND, draft
from plantwarden.detection.baselines.checker import Deviation, accepted_value, merge_value
from plantwarden.detection.baselines.facts import KEY_FIELDS, FactKey, FactKind
from plantwarden.detection.baselines.learner import LEARNING, LEARNING_NS, PROTECTING, Baseline, Fact, Scope
from plantwarden.detection.baselines.models import BaselineFact, BaselineScope
from plantwarden.detection.baselines.naming import PlantNames

CONDUIT_PREFIX = "conduit:"


def load(session: Session, site: str, baseline: Baseline | None = None) -> Baseline:
    """The site's scopes and facts from the store, into `baseline` (a new one by default); facts
    stored with a key of an older shape are given the current one first (`upgrade_keys`)."""
    lock_site(session, site)
    upgrade_keys(session, site)
    baseline = baseline if baseline is not None else Baseline()
    for row in session.scalars(select(BaselineScope).where(BaselineScope.site == site)):
        baseline.scopes[(site, row.scope)] = _scope(row)
    for fact in session.scalars(select(BaselineFact).where(BaselineFact.site == site)):
        baseline.facts[FactKey.parse(fact.kind, site, fact.key)] = _fact(fact)
    return baseline


def write_lock(session: Session) -> None:
    """On SQLite, take the store's write lock before anything is read (`FOR UPDATE` means nothing
    there); PostgreSQL locks the rows instead."""
    sqlite_write_lock(session, "baseline_scopes", "facts")


def lock_site(session: Session, site: str) -> list[BaselineScope]:
    """Lock the site's baselines to the end of the transaction, before reading any fact: SQLite's
    write lock, and on PostgreSQL every scope row of the site in name order. Every writer of a
    site's baselines (a save, a load, a reset, a protect, an accept) starts here, so they take
    turns and none can deadlock another; facts need no lock of their own. The site's scopes."""
    write_lock(session)
    return scopes(session, site, lock=True)


def upgrade_keys(session: Session, site: str) -> int:
    """Store the site's written-range and setpoint facts kept without a table under their key with
    one (`keys.legacy_table`), merged into the fact of that key if there is one already; how many."""
    legacy = [
        row
        for row in session.scalars(
            select(BaselineFact).where(
                BaselineFact.site == site,
                BaselineFact.kind.in_((FactKind.WRITTEN_RANGE.value, FactKind.SETPOINT.value)),
            )
        )
        if row.key.count("|") == len(KEY_FIELDS[FactKind(row.kind)]) - 2
    ]
    for row in legacy:
        key = FactKey.parse(row.kind, site, row.key)
        found = session.get(BaselineFact, (site, row.kind, key.text))
        if found is None:
            row.key = key.text
            continue
        found.value = merge_value(key.kind, dict(found.value), dict(row.value))
        found.first_seen, found.last_seen = (
            min(found.first_seen, row.first_seen),
            max(found.last_seen, row.last_seen),
        )
        found.count += row.count
        if row.source == "accepted":  # who accepted it, when and why stay with the fact
            found.source, found.accepted_by, found.reason = "accepted", row.accepted_by, row.reason
            if row.accepted_at is not None and (
                found.accepted_at is None or row.accepted_at > found.accepted_at
            ):
                found.accepted_at = row.accepted_at
        session.delete(row)
    session.flush()
    return len(legacy)


def _scope(row: BaselineScope) -> Scope:
    return Scope(
        row.site,
        row.scope,
        row.state,
        nanoseconds(row.learning_started),
        nanoseconds(row.learning_ends),
        row.generation,
        dirty=False,
    )


def _fact(row: BaselineFact) -> Fact:
    key = FactKey.parse(row.kind, row.site, row.key)
    return Fact(
        key,
        dict(row.value),
        nanoseconds(row.first_seen),
        nanoseconds(row.last_seen),
        row.count,
        row.scope,
        row.conduit,
        row.source,
        dirty=False,
    )


def sync(session: Session, ctx: Context, baseline: Baseline, site: str) -> None:
    """Save what `baseline` learned about `site` and take in what changed in the store since:
    a scope reset elsewhere (its generation grew) loses its facts in memory (a conduit's are
    released); a scope protected by hand protects here; each fact saved or unchanged takes the
    stored value, which holds what was accepted elsewhere. A save adds to the stored value only
    what was learnt since the last save (`Fact.delta`), never the whole value again."""
    now = ctx.clock.now()
    # Two writers of a site save one after the other, each adding its delta to what the other
    # saved, and a reset is seen whole, before or after, never between reading the scopes and
    # reading the facts.
    rows = {row.scope: row for row in lock_site(session, site)}
    for (scope_site, name), scope in list(baseline.scopes.items()):
        if scope_site != site:
            continue
        row = rows.get(name)
        if row is None:
            rows[name] = _new_scope_row(scope, now)
            session.add(rows[name])
            scope.dirty = False
            continue
        if row.generation != scope.generation:
            _forget(baseline, site, name)
            baseline.scopes[(site, name)] = _scope(row)
            continue
        if row.state == PROTECTING and scope.state == LEARNING:
            scope.state, scope.ends_ns = PROTECTING, nanoseconds(row.learning_ends)
        elif scope.dirty and scope.state == PROTECTING and row.state == LEARNING:
            row.state, row.protected_at, row.updated_at = PROTECTING, now, now
            row.learning_ends = from_nanoseconds(scope.ends_ns)
        scope.dirty = False
    for name, row in rows.items():
        if (site, name) not in baseline.scopes:
            baseline.scopes[(site, name)] = _scope(row)
    session.flush()
    stored = {
        (row.kind, row.key): row
        for row in session.scalars(select(BaselineFact).where(BaselineFact.site == site))
    }
    for key, fact in baseline.facts.items():
        if key.site != site:
            continue
        saved = stored.get((key.kind.value, key.text))
        if fact.dirty:
            _save_fact(session, fact, saved)
        elif saved is not None:  # nothing learnt since the last save: the store's value holds
            fact.value, fact.source = dict(saved.value), saved.source  # what was accepted since
    known = {(k.kind.value, k.text) for k in baseline.facts if k.site == site}
    for (kind, key_text), saved in stored.items():
        if (kind, key_text) not in known:
            baseline.facts[FactKey.parse(kind, site, key_text)] = _fact(saved)
    counts = baseline.counts()
    for name, row in rows.items():
        row.facts = counts.get((site, name), 0)
        row.updated_at = now
    session.flush()


def _new_scope_row(scope: Scope, now: datetime) -> BaselineScope:
    return BaselineScope(
        site=scope.site,
        scope=scope.name,
        state=scope.state,
        learning_started=from_nanoseconds(scope.started_ns),
        learning_ends=from_nanoseconds(scope.ends_ns),
        protected_at=now if scope.state == PROTECTING else None,
        facts=0,
        generation=scope.generation,
        updated_at=now,
    )


def _save_fact(session: Session, fact: Fact, row: BaselineFact | None) -> None:
    key = fact.key
    if row is None:
        session.add(
            BaselineFact(
                site=key.site,
                kind=key.kind.value,
                key=key.text,
                scope=fact.scope,
                conduit=fact.conduit,
                value=fact.value,
                first_seen=from_nanoseconds(fact.first_ns),
                last_seen=from_nanoseconds(fact.last_ns),
                count=fact.unsaved,
                source=fact.source,
            )
        )
    else:  # the stored value holds what earlier saves (and acceptances) gave it: add the rest
        row.value = merge_value(key.kind, dict(row.value), fact.delta)
        row.first_seen = min(row.first_seen, from_nanoseconds(fact.first_ns))
        row.last_seen = max(row.last_seen, from_nanoseconds(fact.last_ns))
        row.count = row.count + fact.unsaved
        if row.source == "accepted":
            fact.source = "accepted"
        fact.value = dict(row.value)
    fact.dirty, fact.unsaved, fact.delta = False, 0, {}


def _forget(baseline: Baseline, site: str, scope: str) -> None:
    """What a reset elsewhere did, in memory: the scope's facts forgotten (a conduit's released)."""
    for key, fact in list(baseline.facts.items()):
        if key.site != site:
            continue
        if fact.scope == scope:
            del baseline.facts[key]
        elif fact.conduit == scope:
            fact.conduit = None


def raise_deviations(
    session: Session, ctx: Context, deviations: Sequence[Deviation], names: PlantNames | None = None
) -> RaisedCounts:
    """One alert per broken fact (named with the plant model's assets and registers when `names`
    is given); an open alert of the same fact counts another occurrence."""
    return raise_alerts(
        session, ctx, [draft(d, names) if names is not None else draft(d) for d in deviations]
    )


def scopes(session: Session, site: str | None = None, *, lock: bool = False) -> list[BaselineScope]:
    """Scopes, by site and name (`lock`: locked until the commit, in that order, as `sync` does)."""
    statement = select(BaselineScope).order_by(BaselineScope.site, BaselineScope.scope)
    if site is not None:
        statement = statement.where(BaselineScope.site == site)
    return list(session.scalars(statement.with_for_update() if lock else statement))


def scope_sites(session: Session) -> list[str]:
    """The sites that have baseline scopes, in order (to tell a misspelt site from a new one)."""
    return list(session.scalars(select(BaselineScope.site).distinct().order_by(BaselineScope.site)))


def get_scope(session: Session, site: str, scope: str) -> BaselineScope:
    row = session.get(BaselineScope, (site, scope))
    if row is None:
        raise NotFound(f"site {site} has no baseline scope {scope!r} (plantwarden baseline status)")
    return row


def facts_of(session: Session, site: str, scope: str) -> list[BaselineFact]:
    """The facts of a scope (as their asset scope or their conduit), by kind and key."""
    get_scope(session, site, scope)
    statement = select(BaselineFact).where(
        BaselineFact.site == site, (BaselineFact.scope == scope) | (BaselineFact.conduit == scope)
    )
    return list(session.scalars(statement.order_by(BaselineFact.kind, BaselineFact.key)))


def protect(
    session: Session, ctx: Context, audit: AuditLog | None, site: str, scope: str | None = None
) -> list[str]:
    """Start protecting one scope (or every learning scope of the site) now; the scopes turned.
    Audited when one turned (protecting what already protects changes nothing)."""
    locked = lock_site(session, site)
    rows = [get_scope(session, site, scope)] if scope is not None else locked
    if not rows:
        raise NotFound(f"site {site} has no baselines: nothing learnt there (plantwarden baseline status)")
    now = ctx.clock.now()
    turned = []
    for row in rows:
        if row.state == LEARNING:  # by hand: everything since the scope's start is judged
            row.state, row.protected_at, row.updated_at = PROTECTING, now, now
            row.learning_ends = row.learning_started
            turned.append(row.scope)
    if turned:
        _audit(session, ctx, audit, "baseline.protected", site, scope or "*", {"scopes": turned})
    return turned


def reset(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    site: str,
    scope: str,
    learning_ns: int = LEARNING_NS,
) -> int:
    """Forget a scope's facts and learn it again for `learning_ns` from now (the context's
    clock: the wall clock of the host that resets); how many facts were forgotten. The window is
    given, not the scope's last one: protecting by hand ends that where it began.

    An asset (or the site) scope forgets its facts, also in the conduits that share them. A
    conduit forgets none: each of its facts is also the asset fact of its server, which that
    asset's scope judges with; they are released from the conduit (its count drops to zero)."""
    lock_site(session, site)  # a save, or the reset of a scope sharing facts, takes turns with it
    row = get_scope(session, site, scope)
    conduit = scope.startswith(CONDUIT_PREFIX)
    mine = BaselineFact.conduit == scope if conduit else BaselineFact.scope == scope
    held = list(session.scalars(select(BaselineFact).where(BaselineFact.site == site, mine)))
    touched = {name for fact in held for name in (fact.scope, fact.conduit) if name is not None}
    for fact in held:
        if conduit:
            fact.conduit = None
        else:
            session.delete(fact)
    session.flush()
    now = ctx.clock.now()
    window = timedelta(microseconds=learning_ns // 1000)
    row.state, row.learning_started, row.learning_ends = LEARNING, now, now + window
    row.protected_at, row.generation, row.updated_at = None, row.generation + 1, now
    _recount(session, site, touched | {scope})
    forgotten = 0 if conduit else len(held)
    details = {"facts_forgotten": forgotten} | ({"facts_released": len(held)} if conduit else {})
    _audit(session, ctx, audit, "baseline.reset", site, scope, details)
    return forgotten


def _recount(session: Session, site: str, names: set[str]) -> None:
    """Store how many facts each of the named scopes holds (as asset scope or conduit)."""
    for name in sorted(names):
        found = session.get(BaselineScope, (site, name))
        if found is not None:
            mine = (BaselineFact.scope == name) | (BaselineFact.conduit == name)
            statement = select(func.count()).select_from(BaselineFact).where(BaselineFact.site == site, mine)
            found.facts = int(session.scalar(statement) or 0)


def accept_alert(
    session: Session, ctx: Context, audit: AuditLog | None, alert_id: uuid.UUID | str, reason: str
) -> BaselineFact:
    """Put the deviation an alert reports into the baseline as accepted (the caller may then
    close the alert with a verdict); later sightings of it are no longer deviations."""
    alert = get_alert(session, alert_id)
    item = next((e for e in alert.evidence if e.get("kind") == EVIDENCE_KIND), None)
    if item is None:
        raise InvalidInput(_not_acceptable(alert))
    scopes_named = list(item.get("scopes") or [])
    fact = accept_fact(
        session,
        ctx,
        audit,
        str(item["site"]),
        str(item["fact"]),
        str(item["key"]),
        dict(item.get("observed") or {}),
        reason,
        scopes_named,
        alert=str(alert.id),
    )
    return fact


def _not_acceptable(alert: Alert) -> str:
    """Why an alert names no deviation to accept, and what to do instead."""
    if alert.detector != DETECTOR:
        return (
            f"alert {alert.id} is not a baseline deviation (the {alert.detector} detector raised it): "
            "only a baseline's deviation can be accepted into it; close this one with a verdict "
            "(plantwarden alerts close)"
        )
    if alert.rate_limited:
        return (
            f"alert {alert.id} counts {alert.occurrences} {alert.rule_id} deviations raised past the rate "
            "limit: it holds no single fact to accept. Close it (plantwarden alerts close): the "
            "deviations that recur raise alerts of their own, which can be accepted one by one; if "
            "the scope's traffic changed as a whole, reset the scope instead (plantwarden baseline "
            "reset SCOPE --site SITE) so that it learns again"
        )
    return f"alert {alert.id} names no baseline deviation (its evidence holds none) and cannot be accepted"


def accept_fact(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    site: str,
    kind: str,
    key: str,
    value: dict[str, Any],
    reason: str,
    scopes_named: Sequence[str] = (),
    *,
    alert: str | None = None,
) -> BaselineFact:
    """Put a fact (given by hand, or from a deviation) into the baseline as accepted."""
    why = _acceptance_reason(reason)
    try:
        parsed = FactKey.parse(kind, site, key)
    except ValueError as error:
        raise InvalidInput(f"not a fact: {error}") from error
    _acceptable(parsed, value)
    lock_site(session, site)
    named = parsed.named()
    scope = (
        "site"
        if parsed.kind is FactKind.ASSET
        else next((s for s in scopes_named if s.startswith("asset:")), f"asset:{named['server']}")
    )
    conduit = next((s for s in scopes_named if s.startswith(CONDUIT_PREFIX)), None)
    now = ctx.clock.now()
    clean = {k: v for k, v in value.items() if k != "outside_safe"}
    row = session.get(BaselineFact, (site, parsed.kind.value, parsed.text), populate_existing=True)
    if row is None:
        row = BaselineFact(
            site=site,
            kind=parsed.kind.value,
            key=parsed.text,
            scope=scope,
            conduit=conduit,
            value=accepted_value(parsed.kind, {}, clean) if clean else {},
            first_seen=now,
            last_seen=now,
            count=0,
            source="accepted",
        )
        session.add(row)
    else:
        row.value = accepted_value(parsed.kind, dict(row.value), clean)
        row.source = "accepted"
    row.accepted_by, row.accepted_at, row.reason = ctx.actor or "system", now, why
    session.flush()
    details = {"fact": parsed.kind.value, "key": parsed.text, "value": row.value, "reason": why}
    if alert is not None:
        details["alert"] = alert
    _audit(session, ctx, audit, "baseline.accepted", site, f"{parsed.kind.value}:{parsed.text}", details)
    return row


REASON_LENGTH = 1000
"""The longest reason for accepting a deviation (the store's column, and the API's limit)."""


def _acceptance_reason(reason: str) -> str:
    """The reason without spaces at its ends, or `InvalidInput`: one cut to fit its column would
    lose its end unseen, and a line break or a control character would forge lines of
    `baseline show`, where each fact is one line that ends with the reason."""
    return one_line(
        reason, "the reason", REASON_LENGTH, empty="say why the deviation is accepted: the reason is empty"
    )


def _acceptable(key: FactKey, value: dict[str, Any]) -> None:
    """Refuse a value the baseline cannot take: a setpoint written outside the register map's
    safe range is judged against that range alone, whatever was accepted."""
    outside = int(value.get("outside_safe", 0) or 0)
    if key.kind is FactKind.SETPOINT and outside > 0:
        safe = value.get("safe")
        limits = (
            f" [{float(safe[0]):g}, {float(safe[1]):g}]" if isinstance(safe, list) and len(safe) == 2 else ""
        )
        raise InvalidInput(
            f"{outside} writes of {key.text} lie outside the register's safe range{limits}, which no "
            "acceptance widens: the safe range comes from the register map in plant.yaml; change it "
            "there (plantwarden plant apply) if the new value is safe, then close the alert"
        )


def _audit(
    session: Session,
    ctx: Context,
    audit: AuditLog | None,
    action: str,
    site: str,
    target: str,
    details: dict[str, Any],
) -> None:
    if audit is not None:
        audit.record(session, ctx, action, site=site, target=target, details=details)
