"""A consumer of the embedded event log, run as its own process by the delivery tests.

Usage: python -m tests.eventlog_applier DATABASE_URL CONSUMER_NAME DELAY_SECONDS

Applies every event to the table `applied` (created by the test): a first delivery inserts a row,
a second delivery of the same event would increment `deliveries`, which the test checks stays 1.
"""

from __future__ import annotations

import sys
import threading
import time

from sqlalchemy import make_url, text
from sqlalchemy.orm import Session

from plantwarden.core.db import Store, create_store_engine
from plantwarden.core.eventlog import Consumer
from plantwarden.core.events import Event


def main() -> None:
    url, name, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    store = Store(create_store_engine(make_url(url)))

    def apply(session: Session, event: Event) -> None:
        session.execute(
            text(
                "INSERT INTO applied (event_id, deliveries) VALUES (:id, 1) "
                "ON CONFLICT (event_id) DO UPDATE SET deliveries = applied.deliveries + 1"
            ),
            {"id": str(event.id)},
        )
        time.sleep(delay)

    consumer = Consumer(store, name, apply, batch_size=10)
    print("ready", flush=True)
    consumer.run(threading.Event(), idle_wait=0.05)


if __name__ == "__main__":
    main()
