"""The gateway's state loader compiles a snapshot only when what it compiles from changed."""

from __future__ import annotations

from plantwarden.accounts import services as accounts
from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.gateway.state import store_loader
from tests.unit.gateway.support import plant

CTX = Context(source="test", actor="test")


def test_an_unchanged_store_gives_back_the_same_state_and_a_new_grant_a_new_one(store: Store) -> None:
    migrate.ensure_ready(store)
    load = store_loader(store, plant(), "plant-a", {})
    first = load()
    assert load() is first  # nothing changed: no compile, same snapshot
    with store.transaction() as session:
        accounts.create_user(session, CTX, "vera", password="a long enough passphrase 1")
        accounts.grant_role(session, CTX, "vera", "operator", "plant-a")
    changed = load()
    assert changed is not first
    assert changed.snapshot.version != first.snapshot.version
    assert load() is changed
