"""Busy polling: the gateway's event loop looks for work for a while before it sleeps.

A request through the gateway wakes its process twice (the client's request, the PLC's answer).
When the process sleeps in `epoll_wait`, its core goes idle, and an idle core of a virtual machine
is halted by the host: waking it again is a trip through the hypervisor that costs tens of
microseconds on the development VM (more than the gateway's own work on a request). Polling
without sleeping for up to `spin` seconds first keeps the core awake while the next answer or
request is due, at the price of that core's time: the same trade as Linux's `SO_BUSY_POLL` or the
guest's `haltpoll` idle driver, here for a gateway that has a core of its own (`taskset`). The
spin yields the core between polls: a process that the gateway woke on its own core (the kernel
prefers the waker's core) runs at once instead of after the spin.

Measured with `python -m bench gateway` (docs/benchmarks.md): with 200 µs and 16 connections to
the PLC, the gateway's added latency at one client was 87 µs at p50, against 135 µs with the defaults
(busy polling off, 4 connections).

`plantwarden gateway run --busy-poll MICROSECONDS` turns it on; the default (0) sleeps at once.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import time
from collections.abc import Callable

MAX_SPIN = 0.01
"""The longest spin taken (seconds): beyond it, polling only burns the core."""


class BusyPollSelector(selectors.DefaultSelector):
    """The platform's selector, polling for up to `spin` seconds before it waits."""

    def __init__(self, spin: float) -> None:
        if not 0 <= spin <= MAX_SPIN:
            raise ValueError(f"spin must be 0-{MAX_SPIN} s, not {spin}")
        super().__init__()
        self.spin = spin

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        poll = self._poll
        if self.spin <= 0 or (timeout is not None and timeout <= 0):
            return poll(timeout)
        started = time.monotonic()
        end = started + (self.spin if timeout is None else min(self.spin, timeout))
        while True:
            ready = poll(0)
            if ready:
                return ready
            now = time.monotonic()
            if now >= end:
                return poll(None if timeout is None else max(0.0, timeout - (now - started)))
            # A process this one woke on its own core (the PLC, a client: the kernel prefers the
            # waker's core) runs now instead of after the spin.
            os.sched_yield()

    def _poll(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
        return ready


def loop_factory(spin: float) -> Callable[[], asyncio.AbstractEventLoop]:
    """A function making the event loop for `asyncio.Runner`: busy-polling when `spin` > 0, the
    default loop otherwise."""
    if spin <= 0:
        return asyncio.new_event_loop
    return lambda: asyncio.SelectorEventLoop(BusyPollSelector(spin))
