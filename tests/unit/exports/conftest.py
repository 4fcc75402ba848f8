"""Fixtures of the export tests."""

from __future__ import annotations

import pytest

from plantwarden.core import migrate
from plantwarden.core.db import Store


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store
