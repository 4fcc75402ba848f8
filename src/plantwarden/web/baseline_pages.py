"""Console pages of the learned baselines: every scope of the caller's sites (the site, its assets
and its conduits) with its state (learning until the window ends, or protecting since when) and
its facts counted by kind, and one scope with the facts it holds and where each came from.

Both pages need `platform:baselines.read` (security analysts and auditors) and show only the
sites the caller may read baselines at, as the JSON API does (`detection/baselines/api.py`): a
baseline belongs to a whole site, so a grant limited to one zone does not show it, and another
site's scope is answered as not found.

A baseline deviation's alert page carries an "Accept into the baseline" form for those who hold
`platform:baselines.manage` at its site: the deviation becomes an accepted fact (audited with the
reason, as `baseline accept` and the API do) and the scope's page then shows it.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Row, func, or_, select
from sqlalchemy.orm import Session

from plantwarden.alerts.errors import AlertNotFound
from plantwarden.alerts.models import Alert
from plantwarden.alerts.services import get_alert
from plantwarden.core.access import Actor, Requires
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.core.records.schema import Protocol
from plantwarden.detection.baselines import services
from plantwarden.detection.baselines.alerting import EVIDENCE_KIND
from plantwarden.detection.baselines.facts import FactKey, FactKind
from plantwarden.detection.baselines.learner import LEARNING, SITE_SCOPE
from plantwarden.detection.baselines.models import BaselineFact, BaselineScope
from plantwarden.web.auth import places_of
from plantwarden.web.pagination import page_of

router = APIRouter(include_in_schema=False)
READ = Requires("platform:baselines.read")
MANAGE_ACTION = "platform:baselines.manage"
TIME = "%Y-%m-%d %H:%M:%S"
KINDS = tuple(kind.value for kind in FactKind)
FACT_LIMIT = 2000
"""Facts on a scope's page at most: past it the page says so and the kind filter narrows it."""
LEARN_HINTS = ("plantwarden sensor run", "plantwarden baseline learn --site SITE --last 7d")
TRANSPORTS = {6: "tcp", 17: "udp"}

Counts = dict[tuple[str, str], Counter[str]]
"""Per (site, scope): facts by kind, and under `accepted` how many of them were accepted."""


def _render(request: Request, template: str, context: dict[str, Any]) -> HTMLResponse:
    page: HTMLResponse = request.app.state.templates.TemplateResponse(request, template, context)
    return page


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("/baselines", response_class=HTMLResponse)
def baselines_page(
    request: Request,
    actor: Annotated[Actor, Depends(READ)],
    site: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """The scopes of the caller's sites (of one with `?site=`) by site and name, a page at a time
    (`?page=`, `web.pagination`): each with its state, its facts by kind and how many were
    accepted by hand."""
    with _store(request).transaction() as session:
        listed = session.execute(select(BaselineScope.site, BaselineScope.scope, BaselineScope.state)).all()
        rows = [row for row in listed if actor.may_see(row.site)]
        sites = sorted({row.site for row in rows})
        shown = sorted(
            (row for row in rows if not site or row.site == site),
            key=lambda row: (row.site, _scope_key(row.scope)),
        )
        pager = page_of(page, len(shown), "/baselines", {"site": site or ""})
        chosen = shown[pager.offset : pager.offset + pager.size] if pager.valid else []
        on_page = _scope_rows(session, [(row.site, row.scope) for row in chosen])
        counts = _counts(session, sorted({row.site for row in on_page}), [row.scope for row in on_page])
    context = {
        "site": site or "",
        "sites": sites,
        "kinds": KINDS,
        "groups": _groups(on_page, counts, _states(shown)),
        "page": pager,
        "learn_hints": LEARN_HINTS,
    }
    return _render(request, "baselines.html", context)


def _scope_rows(session: Session, names: Sequence[tuple[str, str]]) -> list[BaselineScope]:
    """The scopes named (site, scope), in that order."""
    if not names:
        return []
    sites, scopes = sorted({site for site, _ in names}), sorted({scope for _, scope in names})
    statement = select(BaselineScope).where(BaselineScope.site.in_(sites), BaselineScope.scope.in_(scopes))
    found = {(row.site, row.scope): row for row in session.scalars(statement)}
    return [found[name] for name in names if name in found]


def _states(rows: Iterable[Row[str, str, str]]) -> dict[str, Counter[str]]:
    """Per site: its scopes (`scopes`) and how many are in each state, across every page."""
    states: dict[str, Counter[str]] = {}
    for row in rows:
        counted = states.setdefault(row.site, Counter())
        counted["scopes"] += 1
        counted[row.state] += 1
    return states


def _groups(
    rows: Iterable[BaselineScope], counts: Counts, states: Mapping[str, Counter[str]]
) -> list[dict[str, Any]]:
    """The page's scopes by site, each site's scope first, then its conduits, then its assets;
    each site with its scopes and states across every page."""
    by_site: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_site.setdefault(row.site, []).append(_scope_row(row, counts.get((row.site, row.scope), Counter())))
    groups = []
    for name, scopes in sorted(by_site.items()):
        scopes.sort(key=lambda scope: scope["sort"])
        total = states[name]["scopes"]
        learning = states[name][LEARNING]
        protecting = total - learning
        groups.append(
            {"site": name, "scopes": scopes, "total": total, "learning": learning, "protecting": protecting}
        )
    return groups


def _scope_row(row: BaselineScope, counted: Counter[str]) -> dict[str, Any]:
    kind, _, subject = row.scope.partition(":")
    return {
        "site": row.site,
        "scope": row.scope,
        "kind": kind,
        "subject": subject,
        "sort": _scope_key(row.scope),
        "state": row.state,
        "state_text": _state_text(row),
        "learning_started": row.learning_started.strftime(TIME),
        "facts": sum(counted[k] for k in KINDS),
        "by_kind": {k: counted[k] for k in KINDS},
        "accepted": counted["accepted"],
    }


def _state_text(row: BaselineScope) -> str:
    """When the state ends or began: `until ...` (learning) or `since ...` (protecting), UTC."""
    if row.state == LEARNING:
        return f"until {row.learning_ends.strftime(TIME)}"
    since: datetime = row.protected_at or row.learning_ends
    return f"since {since.strftime(TIME)}"


def _scope_key(scope: str) -> tuple[int, int, int, bytes]:
    """The site scope, then conduits by id, then assets by address (numeric, v4 first)."""
    if scope == SITE_SCOPE:
        return 0, 0, 0, b""
    kind, _, subject = scope.partition(":")
    if kind == "asset":
        for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
            try:  # inet_pton, not ipaddress: a tenth of the time, for thousands of scopes a page
                return 2, 0, version, socket.inet_pton(family, subject)
            except OSError:
                continue
        return 2, 1, 0, subject.encode()
    return 1, 0, 0, scope.encode()


def _counts(session: Session, sites: list[str], scopes: Sequence[str]) -> Counts:
    """The facts of `scopes` by site, scope, kind and source; a fact counts in its asset scope
    (or the site scope) and in its conduit scope, as the learner counts them. Two grouped
    queries, each read from an index alone (`ix_baseline_facts_scope_counts`, `..._conduit_counts`)
    for just these scopes: a page's count does not grow with the site's facts."""
    counts: Counts = {}
    for column in (BaselineFact.scope, BaselineFact.conduit):
        statement = (
            select(BaselineFact.site, column, BaselineFact.kind, BaselineFact.source, func.count())
            .where(BaselineFact.site.in_(sites), column.in_(scopes))
            .group_by(BaselineFact.site, column, BaselineFact.kind, BaselineFact.source)
        )
        for site, name, kind, source, number in session.execute(statement):
            if name is None:  # pragma: no cover - `in_` matches no NULL
                continue
            counted = counts.setdefault((site, name), Counter())
            counted[kind] += int(number)
            if source == "accepted":
                counted["accepted"] += int(number)
    return counts


@router.get("/baselines/{site}/{scope}", response_class=HTMLResponse)
def baseline_page(
    request: Request,
    actor: Annotated[Actor, Depends(READ)],
    site: str,
    scope: str,
    kind: str | None = None,
) -> HTMLResponse:
    """One scope: its state and the facts it holds (`?kind=` one kind), each with its key, what
    was learned of its value, when it was seen, and whether it was learned or accepted (by whom
    and why)."""
    if kind and kind not in KINDS:
        raise InvalidInput(f"no fact kind {kind!r}: one of {', '.join(KINDS)}")
    if not actor.may_see(site):
        raise NotFound(f"no baselines at site {site}")
    with _store(request).transaction() as session:
        row = services.get_scope(session, site, scope)
        counted = _counts(session, [site], [scope]).get((site, scope), Counter())
        facts = _facts(session, site, scope, kind or None)
        context = {
            "site": site,
            "scope": _scope_row(row, counted),
            "kind": kind or "",
            "kinds": [k for k in KINDS if counted[k]],
            "facts": [_fact_row(fact, scope) for fact in facts[:FACT_LIMIT]],
            "more": len(facts) > FACT_LIMIT,
            "limit": FACT_LIMIT,
        }
    return _render(request, "baseline.html", context)


def may_accept(request: Request, actor: Actor, alert: Alert) -> bool:
    """Whether the alert page shows the accept form: one baseline deviation (not a rate-limited
    alert folding many), and the caller may manage baselines at its site (showing only: the
    route's `Requires` decides)."""
    deviation = not alert.rate_limited and any(item.get("kind") == EVIDENCE_KIND for item in alert.evidence)
    return deviation and actor.with_places(places_of(request, actor, MANAGE_ACTION)).may_see(alert.site)


@router.post("/alerts/{alert_id}/accept-baseline")
def accept_into_baseline(
    request: Request,
    actor: Annotated[Actor, Depends(Requires(MANAGE_ACTION))],
    alert_id: uuid.UUID,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    """The alert page's "Accept into the baseline" form: the deviation the alert reports becomes an
    accepted fact (audited with the reason), then the scope's page shows it among its kind."""
    with _store(request).transaction() as session:
        alert = get_alert(session, alert_id)
        if not actor.may_see(alert.site):
            raise AlertNotFound(f"no alert {alert_id}")
        context = Context(source="console", actor=actor.username)
        fact = services.accept_alert(session, context, request.app.state.audit, alert.id, reason)
        target = f"/baselines/{quote(fact.site, safe='')}/{quote(fact.scope, safe='')}?kind={fact.kind}"
    return RedirectResponse(target, status_code=303)


def _facts(session: Session, site: str, scope: str, kind: str | None) -> list[BaselineFact]:
    """The scope's facts (as their asset scope or their conduit) by kind and key, one more than
    the page shows so that it can say there are more."""
    statement = select(BaselineFact).where(
        BaselineFact.site == site, or_(BaselineFact.scope == scope, BaselineFact.conduit == scope)
    )
    if kind is not None:
        statement = statement.where(BaselineFact.kind == kind)
    statement = statement.order_by(BaselineFact.kind, BaselineFact.key).limit(FACT_LIMIT + 1)
    return list(session.scalars(statement))


def _fact_row(fact: BaselineFact, scope: str) -> dict[str, Any]:
    other = fact.conduit if fact.scope == scope else fact.scope
    fields = _fields(fact)
    return {
        "kind": fact.kind,
        "key": fact.key,
        "fields": fields,
        "value": value_summary(fact.kind, fact.value, dict(fields).get("table", "holding")),
        "first_seen": fact.first_seen.strftime(TIME),
        "last_seen": fact.last_seen.strftime(TIME),
        "count": fact.count,
        "source": fact.source,
        "accepted_by": fact.accepted_by or "",
        "accepted_at": fact.accepted_at.strftime(TIME) if fact.accepted_at else "",
        "reason": fact.reason or "",
        "also_in": other or "",
    }


def _fields(fact: BaselineFact) -> list[tuple[str, str]]:
    """The key's fields by name, protocols, transports and operations by their names; a key
    that no longer parses is shown as stored."""
    try:
        named = FactKey.parse(fact.kind, fact.site, fact.key).named()
    except ValueError:
        return [("key", fact.key)]
    return [(name, _field_text(name, part)) for name, part in named.items()]


def _field_text(name: str, part: str | int) -> str:
    if name == "protocol" and isinstance(part, int):
        return _protocol_name(part)
    if name == "transport" and isinstance(part, int):
        return TRANSPORTS.get(part, f"ip{part}")
    return str(part)


def _protocol_name(value: int) -> str:
    try:
        return Protocol(value).name.lower()
    except ValueError:
        return str(value)


SPACES = {"coil": "coils", "holding": "registers", "file": "file records"}
"""A written range's address space (the key's `table`) as its summary names it."""


def value_summary(kind: str, value: Mapping[str, Any], table: str = "holding") -> str:
    """What was learned of a fact's value, as a person reads it; `-` for kinds without one.
    `table`: a written range's address space, from its key (`coil`, `holding`, `file`, `-`)."""
    if kind == FactKind.POLLING and not int(value.get("intervals", 0) or 0):
        return "no interval measured yet"
    if not value:
        return "-"
    try:
        return _summary(FactKind(kind), value, SPACES.get(table, "addresses"))
    except (KeyError, TypeError, ValueError):
        return json.dumps(value, sort_keys=True, default=str)[:300]


def _summary(kind: FactKind, value: Mapping[str, Any], space: str) -> str:
    if kind is FactKind.SERVICE:
        return f"operation {value['operation']}"
    if kind is FactKind.WRITTEN_RANGE:
        spans = [f"{int(a)}" if int(a) == int(b) else f"{int(a)}-{int(b)}" for a, b in value["ranges"]]
        return f"{space} {', '.join(spans)}" if spans else "-"
    if kind is FactKind.POLLING:
        intervals = int(value["intervals"])
        plural = "s" if intervals != 1 else ""
        return f"every {_duration(int(value['median_ns']))} (median of {intervals} interval{plural})"
    if kind is FactKind.SETPOINT:
        text = f"written {float(value['min']):g} to {float(value['max']):g}"
        safe = value.get("safe")
        return f"{text}; safe range {float(safe[0]):g} to {float(safe[1]):g}" if safe else text
    return json.dumps(dict(value), sort_keys=True, default=str)[:300]


def _duration(ns: int) -> str:
    """A time span as a person reads it: `850 µs`, `3.2 ms`, `1.50 s`, `2.5 min`."""
    if ns < 1_000_000:
        return f"{ns / 1000:.0f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f} ms"
    if ns < 120_000_000_000:
        return f"{ns / 1_000_000_000:.2f} s"
    return f"{ns / 60_000_000_000:.1f} min"
