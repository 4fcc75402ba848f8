"""Fixtures of the accounts tests: a migrated store, fast password hashing, an accounts key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plantwarden.accounts import services
from plantwarden.accounts.secrets import AccountSecrets
from plantwarden.accounts.settings import AccountsSettings
from plantwarden.core import migrate
from plantwarden.core.db import Store

# Cheap argon2id for tests (the defaults are OWASP's, tested on their own in test_passwords).
FAST = AccountsSettings(password_time_cost=1, password_memory_kib=1024, password_parallelism=1)
GOOD_PASSWORD = "correct horse battery staple"
OTHER_PASSWORD = "tr0ub4dor & three more words"


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


@pytest.fixture
def keys() -> AccountSecrets:
    return AccountSecrets.generate()


@pytest.fixture
def fast() -> AccountsSettings:
    return FAST


@pytest.fixture(autouse=True)
def configured(keys: AccountSecrets) -> Iterator[None]:
    """The process configuration the server sets at start, as the web layer relies on it."""
    saved = (services._configured.settings, services._configured.secrets, services._configured.audit)
    services.configure(settings=FAST, secrets=keys)
    services._configured.audit = None
    yield
    services._configured.settings, services._configured.secrets, services._configured.audit = saved
