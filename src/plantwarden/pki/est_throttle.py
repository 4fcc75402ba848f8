"""Backoff of failed enrolments per source address (the JSON API's enrol and EST's simpleenroll).

An enrolment token carries 128 bits or more, so guessing one is hopeless; the backoff still keeps a
source that keeps sending wrong, used or expired tokens from costing the store a lookup and the
audit log an entry per request. It works like the login throttle (`accounts/throttle.py`): after
`free` failures within `window` seconds a source is blocked for `base * 2**(k - free)` seconds, at
most `longest`. It lives in the server process's memory, not in the store: the server is the only
process that enrols over the network, and a restart forgetting a backoff costs nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from plantwarden.core.errors import PermissionDenied


class EnrolmentThrottled(PermissionDenied):
    """Too many failed enrolments from this address: wait `retry_after_seconds`."""

    code = "enrolment_throttled"

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(
            f"too many failed enrolments from this address: try again in {retry_after_seconds:.0f} seconds",
            details={"retry_after_seconds": round(retry_after_seconds, 1)},
        )
        self.retry_after_seconds = retry_after_seconds


@dataclass
class _Source:
    failures: int
    last_failure: float
    blocked_until: float


class EnrolmentThrottle:
    """Failed enrolments per source, with exponential backoff (thread-safe: routes run in a pool)."""

    def __init__(
        self,
        *,
        free: int = 5,
        base: float = 1.0,
        longest: float = 300.0,
        window: float = 900.0,
        monotonic: Callable[[], float] = time.monotonic,
        capacity: int = 10_000,
    ) -> None:
        self.free, self.base, self.longest, self.window = free, base, longest, window
        self.monotonic = monotonic
        self.capacity = capacity
        self._sources: dict[str, _Source] = {}
        self._lock = threading.Lock()

    def check(self, source: str) -> None:
        """Refuse (`EnrolmentThrottled`) while `source` is blocked; call before any lookup."""
        now = self.monotonic()
        with self._lock:
            entry = self._sources.get(source)
        if entry is not None and entry.blocked_until > now:
            raise EnrolmentThrottled(entry.blocked_until - now)

    def failed(self, source: str) -> float:
        """Count a failure of `source`; the seconds it is now blocked (0 within the free failures)."""
        now = self.monotonic()
        with self._lock:
            entry = self._sources.get(source)
            if entry is None or now - entry.last_failure > self.window:
                if len(self._sources) >= self.capacity:
                    self._prune(now)
                entry = self._sources[source] = _Source(0, now, 0.0)
            entry.failures += 1
            entry.last_failure = now
            excess = entry.failures - self.free
            seconds = 0.0 if excess <= 0 else min(self.base * 2 ** min(excess, 30), self.longest)
            entry.blocked_until = now + seconds
            return seconds

    def _prune(self, now: float) -> None:
        """Forget sources that are neither blocked nor recent; all of them if that is not enough."""
        entries = self._sources.items()
        quiet = [k for k, e in entries if e.blocked_until <= now and now - e.last_failure > self.window]
        for key in quiet:
            del self._sources[key]
        if len(self._sources) >= self.capacity:
            self._sources.clear()
