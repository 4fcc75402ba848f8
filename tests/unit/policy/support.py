"""Shared subjects, times and a helper to compile the built-in roles with some grants."""

from __future__ import annotations

from datetime import UTC, datetime

from plantwarden.policy import Grant, PolicySnapshot, Subject, builtin_model, compile_policy

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ALICE = Subject("user", "alice")
BOB = Subject("user", "bob")


def snapshot_of(*grants: Grant) -> PolicySnapshot:
    """The built-in roles with `grants`, compiled."""
    return compile_policy(builtin_model(grants))
