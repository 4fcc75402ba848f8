"""Live updates for the console: server-sent events fed from the domain event log.

`GET /live` (a console session, `platform:alerts.read`) streams the alert events of the caller's
sites as they are recorded: the stream starts after `?after=POSITION` (the log's head when the
page was rendered, which every console page carries, so that an alert raised between the page
and the stream's start is not missed), after the `Last-Event-ID` the browser sends when it
reconnects, or else at the log's head, which is also where a position past the head starts (the
store was restored from an older backup: waiting for the log to pass it would hide the alerts
until then); reads the log every
second, sends each alert event as `event: alert` with the event's position as its id, and a
comment every 15 s so that proxies keep the connection. A stream ends after `server.live_seconds`
(300 by default) and the browser reconnects a second later (`retry`), which also checks the
caller's session and rights again: a user who logged out or lost the right stops receiving within
that time.

`static/live.js` shows the new alerts in the top bar and adds them to the Alerts page's table.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from plantwarden.alerts.models import Alert
from plantwarden.core.access import Actor, Requires
from plantwarden.core.db import Store
from plantwarden.core.eventlog import head_position, read_after
from plantwarden.core.events import Event
from plantwarden.core.parsing import INTEGER
from plantwarden.core.settings import Settings
from plantwarden.web.settings import ServerSettings

router = APIRouter(include_in_schema=False)
POLL = 1.0
KEEPALIVE = 15.0
RETRY_MS = 1000
BATCH = 200
ALERT_EVENTS = frozenset(
    {
        "alerts.AlertRaised",
        "alerts.AlertRepeated",
        "alerts.AlertAcknowledged",
        "alerts.AlertClosed",
        "alerts.AlertAssigned",
    }
)
PASSED = ("alert_id", "title", "severity", "rule_id", "occurrences", "by", "assignee", "verdict")
MAX_POSITION = 2**63 - 1
"""The log's last possible position (a BIGINT; SQLite's INTEGER): a larger one is no position."""


@router.get("/live")
async def live(
    request: Request, actor: Annotated[Actor, Depends(Requires("platform:alerts.read"))]
) -> StreamingResponse:
    """The caller's sites' alert events, as server-sent events."""
    store: Store = request.app.state.store
    start = _last_event_id(request.headers.get("last-event-id"))  # a reconnect: after the last event
    if start is None:  # the first connect: after the events the page was rendered with
        start = _last_event_id(request.query_params.get("after"))
    head = await asyncio.to_thread(position, store)
    if start is None or start > head:  # past the head: a log restored from an older backup
        start = head
    settings: Settings = request.app.state.settings
    lifetime = min(max(settings[ServerSettings].live_seconds, 0), 3600)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _stream(request, store, start, actor, lifetime), media_type="text/event-stream", headers=headers
    )


def _last_event_id(value: str | None) -> int | None:
    """A position of the log, or None (not a whole number from 0 to `MAX_POSITION`: the next
    source decides where the stream starts)."""
    text = (value or "").strip()
    if not INTEGER.fullmatch(text) or text.startswith("-") or len(text) > len(str(MAX_POSITION)):
        return None  # int() refuses over 4,300 digits
    return int(text) if int(text) <= MAX_POSITION else None


def position(store: Store) -> int:
    """The event log's head: a page rendered now has seen everything up to it."""
    with store.engine.connect() as connection:
        return head_position(connection)


def _after(store: Store, position: int, actor: Actor) -> tuple[int, bool, list[tuple[int, Event]]]:
    """The position reached, whether a full batch was read (more may wait), and the alert events
    after `position` that `actor` may see (an alert of a zone the caller holds the right in, when
    the right is for some zones only)."""
    with store.transaction() as session:
        events = read_after(session, position, BATCH)
        visible = []
        for event_position, event in events:
            if event.type not in ALERT_EVENTS or event.site is None or event.site not in actor.sites:
                continue
            if not actor.may_see(event.site):  # a right for some zones of the site only
                alert_id = _uuid(event.payload.get("alert_id"))
                alert = None if alert_id is None else session.get(Alert, alert_id)
                if alert is None or not actor.may_see(alert.site, alert.zone):
                    continue
            visible.append((event_position, event))
    return (events[-1][0] if events else position), len(events) == BATCH, visible


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def _stream(
    request: Request, store: Store, position: int, actor: Actor, lifetime: float
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    opened = last_sent = time.monotonic()
    while time.monotonic() - opened < lifetime:
        if await request.is_disconnected():
            return
        reached, more, events = await asyncio.to_thread(_after, store, position, actor)
        sent = position
        for sent, event in events:
            last_sent = time.monotonic()
            yield f"id: {sent}\nevent: alert\ndata: {json.dumps(_data(event))}\n\n"
        if reached != sent:  # events the caller does not see: its Last-Event-ID moves past them
            last_sent = time.monotonic()
            yield f"id: {reached}\n\n"
        position = reached
        if more:
            continue
        if time.monotonic() - last_sent >= KEEPALIVE:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(POLL)


def _data(event: Event) -> dict[str, Any]:
    payload = event.payload
    data: dict[str, Any] = {
        "type": event.type.removeprefix("alerts."),
        "site": event.site,
        "at": event.occurred_at.isoformat(),
    }
    data.update({key: payload[key] for key in PASSED if key in payload})
    return data
