"""Who and what is acting: passed to every service call next to the session."""

from __future__ import annotations

from dataclasses import dataclass, field

from plantwarden.core.clock import Clock, SystemClock


@dataclass(frozen=True)
class Context:
    """The clock, the process that acts (`source` of its events) and the acting user, if any."""

    source: str
    clock: Clock = field(default_factory=SystemClock)
    actor: str | None = None
