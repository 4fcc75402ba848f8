from __future__ import annotations

import stat
from pathlib import Path

import pytest

from plantwarden.accounts.secrets import AccountSecrets
from plantwarden.core.errors import ConfigurationError
from tests.output_support import full_disk


def test_the_key_file_is_created_private_and_read_back(tmp_path: Path) -> None:
    first = AccountSecrets.load_or_create(tmp_path)
    path = AccountSecrets.key_path(tmp_path)
    assert path == tmp_path / "secrets" / "accounts.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(path.read_bytes()) == 32
    again = AccountSecrets.load_or_create(tmp_path)
    assert again.decrypt(first.encrypt(b"secret")) == b"secret"


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    AccountSecrets.load_or_create(tmp_path)
    path = AccountSecrets.key_path(tmp_path)
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        AccountSecrets.load_or_create(tmp_path)


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    AccountSecrets.load_or_create(tmp_path)
    AccountSecrets.key_path(tmp_path).write_bytes(b"short")
    with pytest.raises(ConfigurationError, match="damaged"):
        AccountSecrets.load_or_create(tmp_path)


def test_a_key_file_that_could_not_be_written_whole_is_not_left_behind(tmp_path: Path) -> None:
    """A full disk (or Ctrl-C) while the new key was written left a short key file that every
    later start refused as damaged; a process that lost the race to create it could read it
    before the key was in it."""
    with pytest.raises(OSError, match="File too large"), full_disk(room=16):
        AccountSecrets.load_or_create(tmp_path)
    assert list((tmp_path / "secrets").iterdir()) == []
    created = AccountSecrets.load_or_create(tmp_path)
    assert AccountSecrets.load_or_create(tmp_path).decrypt(created.encrypt(b"secret")) == b"secret"


def test_encryption_is_randomised_authenticated_and_bound_to_its_owner() -> None:
    keys = AccountSecrets(bytes(range(32)))
    one, two = keys.encrypt(b"secret", b"user-1"), keys.encrypt(b"secret", b"user-1")
    assert one != two and b"secret" not in one
    assert keys.decrypt(one, b"user-1") == b"secret"
    with pytest.raises(ConfigurationError, match="does not decrypt"):
        keys.decrypt(one, b"user-2")
    with pytest.raises(ConfigurationError, match="does not decrypt"):
        AccountSecrets.generate().decrypt(one, b"user-1")
    tampered = one[:-1] + bytes([one[-1] ^ 1])
    with pytest.raises(ConfigurationError, match="does not decrypt"):
        keys.decrypt(tampered, b"user-1")
    with pytest.raises(ConfigurationError, match="malformed"):
        keys.decrypt(b"\x02" + one[1:], b"user-1")


def test_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        AccountSecrets(b"x" * 16)
    assert "hidden" in repr(AccountSecrets.generate())
