"""Exponential backoff of failed logins, per account and per source.

Two keys count failures: `user:<name>` (whether or not the user exists, so that behaviour does not
tell which names exist) and `source:<address>`. After k failures of a key, it is blocked for
`min(base * 2**(k - free), max)` seconds when k > free (free failures carry no delay). `check`
runs before any password is hashed and refuses a blocked attempt with `LoginThrottled`, so a
brute-force run costs the machine a row lookup per attempt, not an argon2 computation. A success
resets the account's key only: a source that sprays many accounts stays slowed down. A key whose
last failure is older than `throttle_window_seconds` counts from zero again.

Counting is an atomic upsert (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, on SQLite and
PostgreSQL alike), so concurrent failures are never lost.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from plantwarden.accounts.errors import LoginThrottled
from plantwarden.accounts.models import LoginThrottle
from plantwarden.accounts.settings import AccountsSettings

_table = cast(Table, LoginThrottle.__table__)
_PLAIN_NAME = re.compile(r"^[a-z0-9._@-]{1,64}$")
_PLAIN_SOURCE = re.compile(r"^[0-9A-Za-z.:_\[\]%-]{1,100}$")
_MAX_EXPONENT = 60  # beyond this every backoff is the maximum anyway


@dataclass(frozen=True)
class Backoff:
    """A key that has just begun a backoff."""

    key: str
    failures: int
    seconds: float
    blocked_until: datetime


def user_key(username: str) -> str:
    """The throttle key of an account name (odd or overlong names are hashed into the key)."""
    name = username.strip().lower()
    if _PLAIN_NAME.fullmatch(name):
        return f"user:{name}"
    return "user:~" + hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:40]


def source_key(source: str) -> str:
    """The throttle key of a source address."""
    text = source.strip()
    if _PLAIN_SOURCE.fullmatch(text):
        return f"source:{text.lower()}"
    return "source:~" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:40]


def keys(username: str, source: str) -> list[str]:
    return [user_key(username), source_key(source)]


def backoff_seconds(failures: int, settings: AccountsSettings) -> float:
    """Seconds a key is blocked after `failures` failures: 0 while failures <= free, then
    min(base * 2**(failures - free), max)."""
    excess = failures - settings.throttle_free_failures
    if excess <= 0:
        return 0.0
    if excess > _MAX_EXPONENT:
        return float(settings.throttle_max_seconds)
    return float(min(settings.throttle_base_seconds * 2**excess, settings.throttle_max_seconds))


def check(session: Session, username: str, source: str, now: datetime) -> None:
    """Refuse (`LoginThrottled`) while the account's or the source's key is blocked.

    Call this before any password is hashed; it only reads."""
    rows = session.execute(
        select(_table.c.blocked_until).where(
            _table.c.key.in_(keys(username, source)), _table.c.blocked_until > now
        )
    ).all()
    if rows:
        until = max(row.blocked_until for row in rows)
        raise LoginThrottled((until - now).total_seconds())


def record_failure(
    session: Session, username: str, source: str, now: datetime, settings: AccountsSettings
) -> list[Backoff]:
    """Count a failed login for the account and the source; the keys that now begin a backoff."""
    started: list[Backoff] = []
    for key in keys(username, source):
        failures = _count(session, key, now, settings)
        seconds = backoff_seconds(failures, settings)
        if seconds > 0:
            until = now + timedelta(seconds=seconds)
            session.execute(update(_table).where(_table.c.key == key).values(blocked_until=until))
            started.append(Backoff(key, failures, seconds, until))
    return started


def _count(session: Session, key: str, now: datetime, settings: AccountsSettings) -> int:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stale = _table.c.last_failure_at < now - timedelta(seconds=settings.throttle_window_seconds)
    statement = (
        insert(_table)
        .values(key=key, failures=1, last_failure_at=now, blocked_until=None)
        .on_conflict_do_update(
            index_elements=[_table.c.key],
            set_={
                "failures": case((stale, 1), else_=_table.c.failures + 1),
                "last_failure_at": now,
            },
        )
        .returning(_table.c.failures)
    )
    return int(session.execute(statement).scalar_one())


def failures(session: Session, key: str) -> int:
    """Failures counted for a key (0 when it has none)."""
    value = session.execute(select(_table.c.failures).where(_table.c.key == key)).scalar()
    return int(value or 0)


def reset(session: Session, key_names: Sequence[str]) -> int:
    """Forget the failures and blocks of these keys (after a success, or to unlock)."""
    if not key_names:
        return 0
    result = session.execute(delete(_table).where(_table.c.key.in_(list(key_names))))
    return int(getattr(result, "rowcount", 0) or 0)


def prune(session: Session, now: datetime, settings: AccountsSettings) -> int:
    """Delete keys that are neither blocked nor recent (keeps the table small under a spray of
    made-up names and addresses)."""
    cutoff = now - timedelta(seconds=settings.throttle_window_seconds)
    result = session.execute(
        delete(_table).where(
            _table.c.last_failure_at < cutoff,
            or_(_table.c.blocked_until.is_(None), _table.c.blocked_until <= now),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
