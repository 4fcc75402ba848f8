"""A property-based run against the OpenAPI document: every operation, as every role, with up
to 50 generated requests each (hypothesis stops earlier only where an operation has fewer distinct
inputs, such as one without parameters), and no server error (schemathesis)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from plantwarden.pki.authority import CertificateAuthority, pki_directory
from tests.web_support import Server, server

ROLES = ("viewer", "operator", "engineer", "security_analyst", "admin", "auditor")
EXAMPLES = 50


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = Path(tmp_path_factory.mktemp("properties"))
    for made in server(data_dir):
        # a platform CA, so that the PKI's public routes answer (without one they are 503 by design)
        CertificateAuthority.initialise(pki_directory(data_dir), b"properties passphrase")
        for role in ROLES:
            made.user(role, role)
        yield made


def runner(strategy: Any, headers: dict[str, str], calls: list[int]) -> Callable[[], None]:
    """A hypothesis test sending generated requests of one operation with `headers`."""

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=strategy)
    def run(case: Any) -> None:
        calls.append(1)
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    return run


@pytest.mark.parametrize("role", ROLES)
def test_no_operation_fails_with_a_server_error(running: Server, role: str) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", running.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 13
    headers = {"Authorization": f"Bearer {running.token(role)}"}
    counts = {}
    for operation in operations:
        calls: list[int] = []
        runner(operation.as_strategy(), headers, calls)()
        counts[operation.label] = len(calls)
    with_parameters = [op.label for op in operations if op.path_parameters or op.query or op.body]
    assert all(counts[label] >= EXAMPLES for label in with_parameters), counts
