"""Races of the last-user-manager guard with logins: a failed login that reaches the lockout
threshold and a disable of the same account, at the same moment, both complete (on PostgreSQL they
take the account's row, then the site's admin grants, in that order; the other way round they
deadlocked and PostgreSQL aborted one of them)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import update

from plantwarden.accounts import services
from plantwarden.accounts.errors import InvalidCredentials
from plantwarden.accounts.models import User
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from tests.unit.accounts.test_login import NO_BACKOFF, add


def test_a_disable_during_a_failed_login_at_the_threshold_does_not_deadlock(
    ready: Store, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(ready, ctx, "ada", ("admin", "plant-a"))
    add(ready, ctx, "abe", ("admin", "plant-a"))
    with ready.transaction() as session:  # the next failure reaches the threshold
        session.execute(
            update(User).where(User.username == "ada").values(failed_logins=NO_BACKOFF.lockout_after - 1)
        )
    login_holds_the_account = threading.Event()
    disable_holds_the_grants = threading.Event()
    lock_or_alert, keep = services._lock_or_alert, services._keep_user_managers

    def slow_lock_or_alert(*args: Any, **kwargs: Any) -> None:
        login_holds_the_account.set()  # its failure count is written: it holds ada's row
        disable_holds_the_grants.wait(2)
        lock_or_alert(*args, **kwargs)

    def keep_and_tell(*args: Any, **kwargs: Any) -> list[str]:
        sites = keep(*args, **kwargs)
        disable_holds_the_grants.set()
        return sites

    monkeypatch.setattr(services, "_lock_or_alert", slow_lock_or_alert)
    monkeypatch.setattr(services, "_keep_user_managers", keep_and_tell)
    errors: dict[str, BaseException | None] = {}

    def run(name: str, work: Any) -> None:
        try:
            with ready.transaction() as session:
                work(session)
        except BaseException as error:
            errors[name] = error
        else:
            errors[name] = None

    def log_in(session: Any) -> None:
        services.login(session, ctx, "ada", "wrong password!", "10.0.0.5", settings=NO_BACKOFF)

    def disable(session: Any) -> None:
        login_holds_the_account.wait(10)
        services.disable_user(session, ctx, "ada")

    threads = [threading.Thread(target=run, args=a) for a in (("login", log_in), ("disable", disable))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert isinstance(errors["login"], InvalidCredentials), errors["login"]
    assert errors["disable"] is None, errors["disable"]
    with ready.transaction() as session:
        ada = services.get_user_by_name(session, "ada")
        assert ada.disabled and ada.locked and ada.failed_logins == NO_BACKOFF.lockout_after
