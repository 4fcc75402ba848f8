"""Key files that do not load say why: a wrong passphrase, a passphrase for a key in clear (none for an
encrypted one), or a damaged file, named, that no passphrase would open."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from plantwarden.core.errors import InvalidInput
from plantwarden.pki.authority import ISSUING_KEY, ROOT_KEY, CertificateAuthority, export_root
from plantwarden.pki.errors import WrongPassphrase
from plantwarden.pki.keys import load_key
from tests.unit.pki.support import PASSPHRASE

WRONG = b"not the passphrase at all"


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _without_a_middle_line(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join(lines[:2] + lines[3:])


def _certificate_only(data: bytes) -> bytes:
    end = b"-----END CERTIFICATE-----\n"
    return data[: data.index(end) + len(end)]


def _root_key(ca: CertificateAuthority, _: Path) -> Path:
    return ca.directory / ROOT_KEY


def _issuing_key(ca: CertificateAuthority, _: Path) -> Path:
    return ca.directory / ISSUING_KEY


def _backup(ca: CertificateAuthority, tmp_path: Path) -> Path:
    return export_root(ca.directory, tmp_path / "root-backup.pem")


FileOf = Callable[[CertificateAuthority, Path], Path]


def _garbage(_: bytes) -> bytes:
    return b"garbage\n"


def _empty(_: bytes) -> bytes:
    return b""


@pytest.mark.parametrize(
    ("file_of", "damage", "passphrase"),
    [
        pytest.param(_root_key, _half, PASSPHRASE, id="root key cut in half"),
        pytest.param(_root_key, _without_a_middle_line, PASSPHRASE, id="root key without a line"),
        pytest.param(_backup, _half, PASSPHRASE, id="backup cut in half"),
        pytest.param(_backup, _certificate_only, PASSPHRASE, id="backup without its key"),
        pytest.param(_issuing_key, _half, None, id="issuing key cut in half"),
        pytest.param(_issuing_key, _without_a_middle_line, None, id="issuing key without a line"),
        pytest.param(_issuing_key, _garbage, None, id="issuing key not PEM"),
        pytest.param(_issuing_key, _empty, PASSPHRASE, id="empty file, with a passphrase"),
    ],
)
def test_a_damaged_key_file_is_named_damaged_not_a_wrong_passphrase(
    ca: CertificateAuthority,
    tmp_path: Path,
    file_of: FileOf,
    damage: Callable[[bytes], bytes],
    passphrase: bytes | None,
) -> None:
    # each was WrongPassphrase: "the key does not decrypt with this passphrase (wrong passphrase, or
    # not a key)", which sent the engineer after the passphrase
    path = file_of(ca, tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(InvalidInput) as raised:
        load_key(path.read_bytes(), passphrase, where=str(path))
    assert type(raised.value) is InvalidInput
    assert (
        raised.value.message == f"{path} is damaged: not a PEM private key (truncated, or not a key at all)"
    )


@pytest.mark.parametrize(
    ("file_of", "passphrase", "reason"),
    [
        pytest.param(_root_key, WRONG, "wrong passphrase (the key does not decrypt with it)", id="root key"),
        pytest.param(_backup, WRONG, "wrong passphrase (the key does not decrypt with it)", id="backup"),
        # these two were cryptography's words ("Password was given but private key is not encrypted.")
        pytest.param(
            _issuing_key,
            PASSPHRASE,
            "the key is not encrypted, yet a passphrase was given (is it the encrypted key?)",
            id="key in clear, a passphrase",
        ),
        pytest.param(
            _root_key, None, "the key is encrypted, and no passphrase was given", id="encrypted key, none"
        ),
    ],
)
def test_a_passphrase_that_does_not_fit_the_key_says_how(
    ca: CertificateAuthority, tmp_path: Path, file_of: FileOf, passphrase: bytes | None, reason: str
) -> None:
    path = file_of(ca, tmp_path)
    with pytest.raises(WrongPassphrase) as raised:
        load_key(path.read_bytes(), passphrase, where=str(path))
    assert raised.value.message == f"{path}: {reason}"


@pytest.mark.parametrize(
    ("file_of", "passphrase"), [(_root_key, PASSPHRASE), (_backup, PASSPHRASE), (_issuing_key, None)]
)
def test_a_whole_key_loads(
    ca: CertificateAuthority, tmp_path: Path, file_of: FileOf, passphrase: bytes | None
) -> None:
    path = file_of(ca, tmp_path)
    key = load_key(path.read_bytes(), passphrase, where=str(path))
    assert key.public_key() in (ca.root.public_key(), ca.issuing.public_key())
