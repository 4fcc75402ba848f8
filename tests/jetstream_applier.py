"""A JetStream consumer process for the crash tests: applies the stream's events with the
counting handler, slowly enough to be killed in the middle of the stream.

Run from the repository root as `python -m tests.jetstream_applier NAME`, with the settings in
`PLANTWARDEN_*` variables (data directory or database URL, and the `nats` section).

With `PW_TEST_STALL=WHEN:N` and `PW_TEST_STALL_FILE=PATH`, the process stops for good when it
applies tick N, after writing the event id to PATH, so that the test kills it exactly there:
`in-transaction` (before the commit) or `after-commit` (committed, not yet acknowledged).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from plantwarden.core.config import CoreSettings, NatsSettings
from plantwarden.core.db import Store
from plantwarden.core.events import Event
from plantwarden.core.jetstream import run_consumer
from plantwarden.core.logs import configure_logging
from plantwarden.core.settings import load_settings
from tests.jetstream_support import count_application

ACK_WAIT = 2.0  # seconds before the server redelivers what a killed consumer had fetched


def stall(event: Event) -> None:
    Path(os.environ["PW_TEST_STALL_FILE"]).write_text(str(event.id))
    time.sleep(600)  # the rest of the batch stays unacknowledged


def slow_count(session: Session, event: Event) -> None:
    count_application(session, event)
    when, _, tick = os.environ.get("PW_TEST_STALL", "").partition(":")
    if tick == str(event.payload.get("n")):
        if when == "in-transaction":
            stall(event)
        else:
            sqlalchemy_event.listen(session, "after_commit", lambda _: stall(event), once=True)
    time.sleep(0.005)


async def consume(store: Store, settings: NatsSettings, name: str) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await run_consumer(store, settings, name, slow_count, stop, batch_size=10, ack_wait=ACK_WAIT)


def main() -> None:
    settings = load_settings([CoreSettings, NatsSettings])
    configure_logging("INFO", [])
    store = Store.from_settings(settings[CoreSettings])
    try:
        asyncio.run(consume(store, settings[NatsSettings], sys.argv[1]))
    finally:
        store.close()


if __name__ == "__main__":
    main()
