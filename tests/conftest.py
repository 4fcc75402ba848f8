"""Fixtures shared by the whole suite: settings, and real stores on SQLite and PostgreSQL.

Every store test runs on both backends: SQLite in a temporary data directory, and the
PostgreSQL server of this machine, each test in a schema of its own that is dropped afterwards.
PostgreSQL is found at PW_TEST_POSTGRES_URL (default: the local server, database `test`);
when it is unreachable the PostgreSQL variants skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from plantwarden.cli.catalog import SECTIONS
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store, create_store_engine
from plantwarden.core.settings import Settings, load_settings

POSTGRES_URL = os.environ.get("PW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def make_settings(data_dir: Path, **overrides: str) -> Settings:
    """Settings for a test: defaults, no file, no environment, a temporary data directory."""
    return load_settings(
        SECTIONS, environ={}, cwd=data_dir, overrides={"data_dir": str(data_dir), **overrides}
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 26, 8, 0, tzinfo=UTC))


@pytest.fixture
def ctx(clock: FixedClock) -> Context:
    """The context service calls of a test run in: a fixed clock, source `test`."""
    return Context(source="test", clock=clock)


def _postgres_available() -> str | None:
    try:
        engine = create_engine(make_url(POSTGRES_URL), connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except OperationalError as error:
        return str(error).splitlines()[0]
    return None


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    return _postgres_available()


class PostgresSchemas:
    """Creates throw-away schemas on the PostgreSQL server and drops them at the end."""

    def __init__(self) -> None:
        self._admin = create_engine(make_url(POSTGRES_URL))
        self.names: list[str] = []
        self._stores: list[Store] = []

    def store(self) -> Store:
        """An empty store in a new schema."""
        name = f"pwtest_{uuid.uuid4().hex[:16]}"
        with self._admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        self.names.append(name)
        store = Store(create_store_engine(make_url(POSTGRES_URL), schema=name))
        self._stores.append(store)
        return store

    def url_with_schema(self) -> tuple[str, str]:
        """A URL (with the schema as search path) for processes started by a test."""
        name = f"pwtest_{uuid.uuid4().hex[:16]}"
        with self._admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        self.names.append(name)
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False), name

    def drop_all(self) -> None:
        for store in self._stores:
            store.close()
        with self._admin.begin() as connection:
            for name in self.names:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        self._admin.dispose()


@pytest.fixture
def postgres(postgres_problem: str | None) -> Iterator[PostgresSchemas]:
    if postgres_problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and unreachable: {postgres_problem}")
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_URL}: {postgres_problem}")
    schemas = PostgresSchemas()
    yield schemas
    schemas.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


StoreFactory = Callable[[], Store]


@pytest.fixture
def store_factory(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Makes empty stores of the test's backend; each is closed (and its schema dropped) after."""
    stores: list[Store] = []
    counter = iter(range(1000))

    def make() -> Store:
        if backend == "sqlite":
            store = Store(create_store_engine(make_url(f"sqlite:///{tmp_path}/store-{next(counter)}.db")))
        else:
            schemas: PostgresSchemas = request.getfixturevalue("postgres")
            store = schemas.store()
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    """An empty store on the test's backend."""
    return store_factory()
