"""Fixtures of the PKI tests: a CA in a temporary directory, a migrated store, an audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwarden.core import migrate
from plantwarden.core.auditlog import AuditKeys, AuditLog, Checkpoints
from plantwarden.core.clock import FixedClock
from plantwarden.core.db import Store
from plantwarden.pki.authority import CertificateAuthority, pki_directory
from tests.unit.pki.support import PASSPHRASE


@pytest.fixture
def ca(data_dir: Path, clock: FixedClock) -> CertificateAuthority:
    return CertificateAuthority.initialise(pki_directory(data_dir), PASSPHRASE, clock=clock)


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(keys=AuditKeys.generate(), checkpoints=Checkpoints(path=tmp_path / "checkpoints.log"))
