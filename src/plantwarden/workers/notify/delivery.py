"""The delivery loop: one worker per target, each reading the event log after its own cursor.

A worker reads a batch of events after its cursor, keeps those that match `notify.events` and
`notify.min_severity`, hands them to its target in the target's batch size, and moves its
cursor past a batch only once the target acknowledged it. A target that fails is retried with
the same notifications, waiting `notify.retry_initial_seconds`, doubled after every failure up
to `notify.retry_max_seconds`: nothing is skipped, and the other target's worker goes on.
A notifier killed between an acknowledgement and its cursor commit sends that batch again on
restart (at least once; receivers recognise the copy by its event id).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from plantwarden.core import eventlog
from plantwarden.core.clock import Clock, SystemClock
from plantwarden.core.db import Store
from plantwarden.workers.notify import document
from plantwarden.workers.notify.document import Notification
from plantwarden.workers.notify.settings import NotifySettings
from plantwarden.workers.notify.target import DeliveryFailed, Target

log = logging.getLogger(__name__)

IDLE_WAIT = 0.5  # seconds between two looks at the log when a worker has caught up


def cursor_name(target: str) -> str:
    """The event log consumer name of a target (`plantwarden events consumers` lists it)."""
    return f"notify:{target}"


@dataclass(frozen=True)
class Batch:
    """Notifications to deliver, and the log position just past the events read for them."""

    notifications: list[Notification]
    end: int | None


class TargetWorker:
    """Delivers the matching events of the log to one target, in log order."""

    def __init__(
        self, store: Store, target: Target, settings: NotifySettings, *, clock: Clock | None = None
    ) -> None:
        self.store = store
        self.target = target
        self.settings = settings
        self.clock = clock or SystemClock()
        self.name = cursor_name(target.name)
        self.failures = 0
        self.started = False
        self.caught_up = False  # the last read found nothing after the cursor

    def start(self) -> int:
        """Create the cursor on the first run (at the head of the log, or at its start with
        `notify.from_start`); returns where the worker starts."""
        with self.store.transaction() as session:
            if session.get(eventlog.ConsumerCursor, self.name) is None:
                start = 0 if self.settings.from_start else eventlog.head_position(session)
                eventlog.advance_cursor(session, self.name, start, clock=self.clock)
            position = eventlog.cursor_position(session, self.name)
        self.started = True
        return position

    def position(self) -> int:
        """The worker's cursor."""
        with self.store.transaction() as session:
            return eventlog.cursor_position(session, self.name)

    def pending(self) -> Batch:
        """The next batch after the cursor, filtered, with each alert read from the store."""
        with self.store.transaction() as session:
            position = eventlog.cursor_position(session, self.name)
            events = eventlog.read_after(session, position, self.settings.batch_size)
            wanted = [(p, e) for p, e in events if document.matches(e.type, self.settings.event_patterns)]
            now = self.clock.now()
            built = [document.build(session, p, e, now) for p, e in wanted]
        kept = [
            n
            for n in built
            if document.severe_enough(n, self.settings.min_severity) and not document.suppressed(n)
        ]
        return Batch(kept, events[-1][0] if events else None)

    def run_once(self) -> int:
        """Deliver the next batch; returns how many notifications were sent (0: caught up).

        Raises `DeliveryFailed` (the cursor then stays before the first unacknowledged one)."""
        batch = self.pending()
        self.caught_up = batch.end is None
        size = self.target.batch_size
        for start in range(0, len(batch.notifications), size):
            chunk = batch.notifications[start : start + size]
            self.target.deliver(chunk)
            self._advance(chunk[-1].position)
        if batch.end is not None:
            self._advance(batch.end)
        return len(batch.notifications)

    def _advance(self, position: int) -> None:
        with self.store.transaction() as session:
            eventlog.advance_cursor(session, self.name, position, clock=self.clock)

    def step(self) -> tuple[bool, float]:
        """One batch, failures caught: (whether there may be more at once, seconds to wait)."""
        try:
            sent = self.run_once()
        except DeliveryFailed as error:
            self.failures += 1
            wait = self.backoff()
            log.warning(
                "%s: delivery failed (attempt %d): %s; next attempt in %.1f s",
                self.target.name, self.failures, error.message, wait,
            )  # fmt: skip
            return False, wait
        if self.failures:
            log.info("%s: delivering again after %d failed attempts", self.target.name, self.failures)
            self.failures = 0
        if sent:
            log.info("%s: delivered %d notifications, cursor at %d", self.target.name, sent, self.position())
        return not self.caught_up, IDLE_WAIT

    def backoff(self) -> float:
        """The wait before the next attempt: the initial wait, doubled per failure, capped."""
        initial, cap = self.settings.retry_initial_seconds, self.settings.retry_max_seconds
        return float(min(cap, initial * 2 ** min(self.failures - 1, 62)))

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set; an unexpected error (the store away) is retried too."""
        try:
            while not stop.is_set():
                busy, wait = self._guarded_step()
                if not busy:
                    stop.wait(wait)
        finally:
            self.target.close()

    def _guarded_step(self) -> tuple[bool, float]:
        try:
            if not self.started:
                self.start()
            return self.step()
        except Exception:
            self.failures += 1
            log.exception("%s: unexpected error (attempt %d); retrying", self.target.name, self.failures)
            return False, self.backoff()


def run_workers(workers: Sequence[TargetWorker], stop: threading.Event) -> None:
    """Run every worker in a thread of its own until `stop` is set, then wait for them."""
    threads = [
        threading.Thread(target=worker.run, args=(stop,), name=worker.name, daemon=True) for worker in workers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def drain(worker: TargetWorker) -> int:
    """Deliver everything pending to one target and return how many were sent; raises
    `DeliveryFailed` at the first refusal (for `notify run --drain`)."""
    worker.start()
    total = 0
    try:
        while True:
            total += worker.run_once()
            if worker.caught_up:
                return total
    finally:
        worker.target.close()
