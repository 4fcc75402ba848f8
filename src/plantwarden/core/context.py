"""Who and what is acting: passed to every service call next to the session."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field

from plantwarden.core.clock import Clock, SystemClock


@dataclass(frozen=True)
class Context:
    """The clock, the process that acts (`source` of its events) and the acting user, if any."""

    source: str
    clock: Clock = field(default_factory=SystemClock)
    actor: str | None = None


def host_actor(by: str | None = None) -> str:
    """Who acts from a command line, for the audit log: `by` when given, else the host account
    running the command (`host:<login name>`, or `host` when it has none)."""
    if by:
        return by
    try:
        return f"host:{getpass.getuser()}"
    except (KeyError, OSError):
        return "host"
