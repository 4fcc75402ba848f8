"""The accounts key: encrypts second-factor secrets at rest (AES-256-GCM).

The key lives outside the store, in `<data_dir>/secrets/accounts.key` (file 0600, directory
0700), so that a copy of the database (or a backup archive) alone does not reveal any TOTP
secret. Losing the key means every user must enroll the second factor again
(`plantwarden user reset-mfa`).

Ciphertexts are `version (1 byte) || nonce (12 bytes) || AES-GCM ciphertext and tag`; callers
bind a ciphertext to its owner with `associated_data` (the user's id), so that one user's
encrypted secret copied onto another's row does not decrypt.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from plantwarden.core.errors import ConfigurationError
from plantwarden.core.files import atomic_write, private_directory

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = b"\x01"
SECRETS_DIR = "secrets"
KEY_FILE = "accounts.key"


class AccountSecrets:
    """AES-GCM with the accounts key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigurationError(f"the accounts key must be {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "AccountSecrets(<key hidden>)"

    @classmethod
    def generate(cls) -> AccountSecrets:
        """Secrets with a fresh random key that is kept nowhere (for tests and throw-away runs)."""
        return cls(AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    @classmethod
    def key_path(cls, data_dir: Path) -> Path:
        return data_dir / SECRETS_DIR / KEY_FILE

    @classmethod
    def load_or_create(cls, data_dir: Path) -> AccountSecrets:
        """Read `<data_dir>/secrets/accounts.key`, creating it (and its directory) when absent.

        A key file that others than its owner may read or write is refused: fix its mode with
        `chmod 600`. A new key file appears whole (0600, synced) or not at all, so that a process
        that loses the race to create it reads the winner's key, never a part of it.
        """
        path = cls.key_path(data_dir)
        private_directory(path.parent)
        path.parent.chmod(0o700)  # the secrets directory is private even where it was made otherwise
        key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        try:
            atomic_write(path, key, mode=0o600, exclusive=True)
        except FileExistsError:
            return cls._read(path)
        return cls(key)

    @classmethod
    def _read(cls, path: Path) -> AccountSecrets:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigurationError(
                f"the accounts key {path} is accessible to others (mode {mode:04o}): run `chmod 600 {path}`"
            )
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise ConfigurationError(f"the accounts key {path} is damaged: expected {KEY_BYTES} bytes")
        return cls(key)

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> bytes:
        """Encrypt with a fresh random nonce."""
        nonce = os.urandom(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def decrypt(self, ciphertext: bytes, associated_data: bytes = b"") -> bytes:
        """Decrypt what `encrypt` made with the same key and associated data."""
        if len(ciphertext) < 1 + NONCE_BYTES + 16 or ciphertext[:1] != VERSION:
            raise ConfigurationError("an encrypted account secret is malformed")
        nonce = ciphertext[1 : 1 + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, ciphertext[1 + NONCE_BYTES :], associated_data)
        except InvalidTag:
            raise ConfigurationError(
                "an encrypted account secret does not decrypt with the accounts key "
                "(a different key, or a damaged value): reset the user's second factor"
            ) from None
