"""Private keys of the CA on disk: ECDSA P-256, PKCS#8 PEM, written 0600 and never overwritten;
the root's key encrypted with a passphrase (BestAvailableEncryption), the issuing CA's in clear
(it signs unattended)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from plantwarden.core.errors import InvalidInput
from plantwarden.core.files import atomic_write
from plantwarden.core.files import fsync_directory as fsync_directory  # where devices.agent finds it
from plantwarden.pki.errors import WrongPassphrase

MIN_PASSPHRASE_CHARACTERS = 12
ENCRYPTED_KEY_LABEL = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key (the only curve the platform uses)."""
    return ec.generate_private_key(ec.SECP256R1())


def check_passphrase(passphrase: bytes) -> None:
    """Refuse a passphrase too short to protect the root key offline."""
    length = len(passphrase.decode("utf-8", errors="replace"))
    if length < MIN_PASSPHRASE_CHARACTERS:
        raise InvalidInput(
            f"the root CA passphrase has {length} characters; use at least {MIN_PASSPHRASE_CHARACTERS}"
        )


def key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None) -> bytes:
    """PKCS#8 PEM of `key`, encrypted when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def write_new_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to a file that must not exist yet (FileExistsError if it does), with `mode`
    from the start (no window in which a private key is readable by others); it appears whole
    or not at all, so that a process that lost a race to create it reads the winner's whole file."""
    atomic_write(path, data, mode=mode, exclusive=True)


def replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` atomically and durably (`core.files.atomic_write`), with `mode`."""
    atomic_write(path, data, mode=mode)


def load_key(data: bytes, passphrase: bytes | None, *, where: str) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key in `data` (PEM, from `where`, for messages). A wrong passphrase, a
    passphrase for a key in clear or none for an encrypted key is `WrongPassphrase`; a file that is
    not a PEM private key (truncated, or another kind of file) is `InvalidInput`, named damaged."""
    block = _encrypted_block(data) if passphrase is not None else data
    try:
        key = serialization.load_pem_private_key(block, password=passphrase)
    except TypeError:  # encrypted without a passphrase, or the other way round
        mismatch = (
            "the key is encrypted, and no passphrase was given"
            if passphrase is None
            else "the key is not encrypted, yet a passphrase was given (is it the encrypted key?)"
        )
        raise WrongPassphrase(f"{where}: {mismatch}") from None
    except ValueError as error:
        raise _unreadable(block, passphrase, where) from error
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput(f"{where}: not an ECDSA P-256 private key")
    return key


def _unreadable(block: bytes, passphrase: bytes | None, where: str) -> InvalidInput:
    """Why a key did not load. cryptography raises ValueError for a wrong passphrase and for a
    damaged file alike; asked without a passphrase, a whole encrypted key says it is encrypted
    (TypeError), so a ValueError then means the file is damaged."""
    if passphrase is not None:
        try:
            serialization.load_pem_private_key(block, password=None)
        except TypeError:
            return WrongPassphrase(f"{where}: wrong passphrase (the key does not decrypt with it)")
        except ValueError:
            pass
    return InvalidInput(f"{where} is damaged: not a PEM private key (truncated, or not a key at all)")


def _encrypted_block(data: bytes) -> bytes:
    """The encrypted key's PEM block of a bundle (a backup holds the root certificate too)."""
    start = data.find(ENCRYPTED_KEY_LABEL)
    if start < 0:
        return data
    end_label = b"-----END ENCRYPTED PRIVATE KEY-----"
    end = data.find(end_label, start)
    return data[start : end + len(end_label)] + b"\n" if end >= 0 else data[start:]
