"""The console's attack launcher: the running simulated plant's attack scenarios (the demo, drills),
each launched with a button, its alerts then on the Alerts page.

The page asks the plant of the server's data directory through its control socket
(`core/control_socket.py`) which scenarios it has; a launch asks the plant to carry the attack out
(so that its tap, and the sensor on it, sees it) and returns at once: the attack runs in the
background (a scan takes seconds, the drifting sensor 30 simulated minutes) and the page shows the
launches of this server process with their outcome. Every launch is audited.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from plantwarden.core.access import Actor, Requires
from plantwarden.core.auditlog import AuditLog
from plantwarden.core.clock import SystemClock
from plantwarden.core.config import CoreSettings
from plantwarden.core.control_socket import ask, plant_control_path
from plantwarden.core.db import Store
from plantwarden.core.errors import Conflict, InvalidInput, NotFound, PlantwardenError
from plantwarden.core.settings import Settings
from plantwarden.web.settings import ServerSettings

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)
RUN = Requires("platform:exercises.run")
LIST_TIMEOUT = 10.0
"""Seconds the plant has to list its scenarios (a busy machine's plant is slow to answer)."""
ATTACK_TIMEOUT = 3 * 3600.0
"""The longest an attack may take (the drifting sensor lasts 30 simulated minutes)."""
KEPT = 20
MAX_RUNNING = 4
"""Launches running at once (each holds the plant's attention; a drift lasts 30 minutes)."""


@dataclass
class Launch:
    """One launch from this server: what, by whom, when, and how it ended (None: still running)."""

    scenario: str
    technique: str
    by: str
    started: datetime
    through_gateway: bool = False
    outcome: str | None = None


def _launches(request: Request) -> collections.deque[Launch]:
    state = request.app.state
    if not hasattr(state, "exercise_launches"):
        state.exercise_launches = collections.deque(maxlen=KEPT)
        state.exercise_tasks = set()
    launches: collections.deque[Launch] = state.exercise_launches
    return launches


def _control(request: Request) -> Any:
    settings: Settings = request.app.state.settings
    return plant_control_path(settings[CoreSettings].data_path)


async def _scenarios(request: Request) -> tuple[list[dict[str, str]], str | None]:
    """The running plant's scenarios and the security gateway in front of its PLCs (HOST:PORT, or
    None); NotFound when no plant runs with this data directory."""
    reply = await ask(_control(request), {"scenarios": True}, timeout=LIST_TIMEOUT)
    gateway = reply.get("gateway")
    where = f"{gateway[0]}:{gateway[1]}" if isinstance(gateway, list) and len(gateway) == 2 else None
    return [dict(item) for item in reply.get("scenarios", [])], where


@router.get("/exercises", response_class=HTMLResponse)
async def exercises_page(request: Request, actor: Annotated[Actor, Depends(RUN)]) -> HTMLResponse:
    """The scenarios of the running plant, a launch button each, and the recent launches."""
    scenarios: list[dict[str, str]] = []
    gateway = problem = None
    try:
        scenarios, gateway = await _scenarios(request)
    except NotFound:
        problem = (
            "No simulated plant runs with this server's data directory: `plantwarden demo` runs one"
            " (its plant may answer a few seconds after the console: reload this page then)."
        )
    except (PlantwardenError, OSError, TimeoutError) as error:
        problem = f"The simulated plant did not answer: {error}"
    context = {
        "scenarios": scenarios,
        "gateway": gateway,
        "problem": problem,
        "launches": list(reversed(_launches(request))),
    }
    page: HTMLResponse = request.app.state.templates.TemplateResponse(request, "exercises.html", context)
    return page


@router.post("/exercises/{name}")
async def launch(
    request: Request,
    actor: Annotated[Actor, Depends(RUN)],
    name: str,
    via: Annotated[str, Form(max_length=20)] = "",
) -> RedirectResponse:
    """Ask the plant to carry out scenario `name` (in the background), straight at the PLCs or,
    with `via=gateway`, through the security gateway in front of them; back to the page."""
    if via not in ("", "gateway"):
        raise InvalidInput(f"via {via!r}: an attack goes straight to the PLCs (empty) or via 'gateway'")
    try:
        listed, gateway = await _scenarios(request)
    except (OSError, TimeoutError) as error:
        raise Conflict(f"the simulated plant did not answer: {error}") from None
    scenarios = {item["name"]: item for item in listed}
    if name not in scenarios:
        raise NotFound(f"the running plant has no scenario {name!r}; known: {', '.join(scenarios)}")
    if via and gateway is None:
        raise Conflict("the running plant has no security gateway in front of its PLCs")
    running = sum(1 for launch in _launches(request) if launch.outcome is None)
    if running >= MAX_RUNNING:
        raise Conflict(f"{running} exercises are still running: wait until one ends (this page lists them)")
    entry = Launch(name, scenarios[name]["technique"], actor.username, datetime.now(UTC), bool(via))
    _audit(request, actor, name, bool(via))
    _launches(request).append(entry)
    asked = {"attack": name, "console": _console_address(request), "gateway": bool(via)}
    task = asyncio.create_task(_carry_out(_control(request), entry, asked))
    tasks: set[asyncio.Task[None]] = request.app.state.exercise_tasks
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return RedirectResponse("/exercises", status_code=303)


def _console_address(request: Request) -> list[object]:
    """Where the console-brute-force scenario sends its guesses: this server as configured (not
    the request's Host header, which the caller chooses)."""
    settings: Settings = request.app.state.settings
    server = settings[ServerSettings]
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host  # noqa: S104
    return [host, server.port]


async def _carry_out(control: Any, entry: Launch, request: dict[str, Any]) -> None:
    try:
        record = await ask(control, request, timeout=ATTACK_TIMEOUT)
    except Exception as error:  # whatever went wrong, the launch says so and is not left "running"
        entry.outcome = f"failed: {error}"
        return
    actions = record.get("actions", [])
    entry.outcome = f"done: {len(actions)} action{'s' * (len(actions) != 1)}"


def _audit(request: Request, actor: Actor, name: str, through_gateway: bool) -> None:
    audit: AuditLog | None = getattr(request.app.state, "audit", None)
    if audit is None:
        return
    store: Store = request.app.state.store
    with store.transaction() as session:  # a launch that cannot be audited does not happen
        audit.append(
            session, actor=actor.username, source="console", action="exercise.launched", outcome="success",
            target=name[:300], details={"scenario": name, "through_gateway": through_gateway},
            clock=SystemClock(),
        )  # fmt: skip
