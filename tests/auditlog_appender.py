"""Appends to the audit log from a process of its own, for the concurrency test.

Usage: python -m tests.auditlog_appender DATABASE_URL KEY_FILE NAME COUNT GO_FILE

Waits until GO_FILE exists (so that every appender starts at once), then appends COUNT entries
with actor NAME, each in a transaction of its own, and prints "done".
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import make_url

from plantwarden.core import auditlog
from plantwarden.core.clock import SystemClock
from plantwarden.core.db import Store, create_store_engine


def main() -> None:
    url, key_file, name, count, go = (
        sys.argv[1],
        Path(sys.argv[2]),
        sys.argv[3],
        int(sys.argv[4]),
        Path(sys.argv[5]),
    )
    store = Store(create_store_engine(make_url(url)))
    keys = auditlog.AuditKeys.load(key_file)
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.005)
    for number in range(count):
        with store.transaction() as session:
            auditlog.append(
                session,
                keys,
                actor=name,
                source="appender",
                action="test.appended",
                outcome="success",
                details={"number": number, "started": datetime.now(UTC).isoformat()},
                clock=SystemClock(),
            )
    store.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
