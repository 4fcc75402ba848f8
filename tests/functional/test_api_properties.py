"""A property-based run against the OpenAPI document: every operation, as every role, and no server
error (schemathesis). An operation the role may call gets up to 50 generated requests (hypothesis
stops earlier only where an operation has fewer distinct inputs, such as one without parameters);
one the access matrix refuses to the role gets 10, none of which may succeed: the refusal comes
before the handler, so more inputs would test the same few lines. The roles that write run on
PostgreSQL too, which refuses values SQLite takes (an integer past an INTEGER column, a NUL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from plantwarden.pki.authority import CertificateAuthority, pki_directory
from tests.conftest import PostgresSchemas
from tests.functional.test_access_matrix import EXPECTED, PUBLIC
from tests.web_support import Server, server

ROLES = ("viewer", "operator", "engineer", "security_analyst", "admin", "auditor")
EXAMPLES = 50
REFUSED_EXAMPLES = 10


def platform(data_dir: Path, **overrides: str) -> Iterator[Server]:
    """A server with a user of each role."""
    for made in server(data_dir, **overrides):
        # a platform CA, so that the PKI's public routes answer (without one they are 503 by design)
        CertificateAuthority.initialise(pki_directory(data_dir), b"properties passphrase")
        for role in ROLES:
            made.user(role, role)
        yield made


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from platform(Path(tmp_path_factory.mktemp("properties")))


@pytest.fixture
def running_on_postgresql(postgres: PostgresSchemas, tmp_path: Path) -> Iterator[Server]:
    url, _ = postgres.url_with_schema()
    yield from platform(tmp_path, database_url=url)


def runner(strategy: Any, headers: dict[str, str], examples: int, statuses: list[int]) -> Callable[[], None]:
    """A hypothesis test sending up to `examples` generated requests of one operation with
    `headers`, keeping the status of each answer in `statuses`."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        statuses.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    return run


def may_call(role: str, operation: Any) -> bool:
    """Whether the access matrix (test_access_matrix, written from docs/policy.md) lets `role` call it."""
    allowed = EXPECTED[(operation.method.upper(), operation.path)]
    return allowed == PUBLIC or role in allowed


@pytest.mark.parametrize("role", ROLES)
def test_no_operation_fails_with_a_server_error(running: Server, role: str) -> None:
    no_server_error(running, role)


@pytest.mark.parametrize("role", ["admin", "security_analyst", "engineer"])
def test_no_operation_fails_with_a_server_error_on_postgresql(
    running_on_postgresql: Server, role: str
) -> None:
    no_server_error(running_on_postgresql, role)


def no_server_error(running: Server, role: str) -> None:
    """Every operation of the API as `role`: no server error, no success the access matrix refuses."""
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", running.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 13
    headers = {"Authorization": f"Bearer {running.token(role)}"}
    counts, refused_successes = {}, {}
    for operation in operations:
        statuses: list[int] = []
        examples = EXAMPLES if may_call(role, operation) else REFUSED_EXAMPLES
        runner(operation.as_strategy(), headers, examples, statuses)()
        counts[operation.label] = len(statuses)
        if not may_call(role, operation) and any(status < 400 for status in statuses):
            refused_successes[operation.label] = statuses
    assert not refused_successes, f"refused to {role} by the access matrix, yet answered: {refused_successes}"
    with_parameters = [op for op in operations if op.path_parameters or op.query or op.body]
    open_ones = [op.label for op in with_parameters if may_call(role, op)]
    assert open_ones, "no operation with parameters is open to this role"
    assert all(counts[label] >= EXAMPLES for label in open_ones), counts
