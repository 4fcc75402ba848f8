"""Passwords: the policy for new ones, and argon2id hashing that can never starve the machine.

Every hash computation (hashing and verifying) takes one of `MAX_CONCURRENT_HASHES` slots of a
process-wide semaphore, so that a brute-force run against the login can occupy at most two cores'
worth of argon2 (and 2 x 19 MiB of memory) however many requests arrive; the login throttle
(`throttle.py`) refuses throttled attempts before they ever reach this module.
"""

from __future__ import annotations

import functools
import gzip
import re
import secrets
import threading
from dataclasses import dataclass
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from plantwarden.accounts.errors import HashingBusy, WeakPassword

MIN_LENGTH = 12
MAX_LENGTH = 1024  # long enough for any passphrase, short enough that nobody hashes megabytes
MAX_CONCURRENT_HASHES = 2
COMMON_PASSWORDS_FILE = "common-passwords.txt.gz"


@dataclass(frozen=True)
class Argon2Parameters:
    """argon2id cost parameters. The defaults are OWASP's recommended minimum for argon2id
    (Password Storage Cheat Sheet): m = 19 MiB, t = 2, p = 1."""

    time_cost: int = 2
    memory_kib: int = 19456
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16


OWASP_PARAMETERS = Argon2Parameters()


# --- the policy -------------------------------------------------------------------------------


@functools.cache
def common_passwords() -> frozenset[str]:
    """The 10,000 most common passwords (lower case), shipped in `data/` (see its README)."""
    data = resources.files("plantwarden.accounts").joinpath("data", COMMON_PASSWORDS_FILE).read_bytes()
    return frozenset(line for line in gzip.decompress(data).decode("utf-8").splitlines() if line)


def check_password_policy(username: str, password: str) -> None:
    """Refuse a new password that is too short, too common or contains the user name."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(
            f"a password needs at least {MIN_LENGTH} characters (this one has {len(password)})"
        )
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_LENGTH} characters")
    folded = password.casefold()
    if folded in common_passwords() or folded.strip() in common_passwords():
        raise WeakPassword("this password is among the 10,000 most common passwords: choose another")
    name = username.strip().casefold()
    if name and (name in folded or _squeezed(name) in _squeezed(folded)):
        raise WeakPassword("a password must not contain the user name")


def _squeezed(text: str) -> str:
    """The text without separators, so that `al.ice` in a password still counts as `alice`."""
    return re.sub(r"[\s._-]+", "", text)


# --- hashing ----------------------------------------------------------------------------------

_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)
_stats_lock = threading.Lock()


@dataclass
class HashStats:
    """What the hashing slots have done in this process (for monitoring and tests)."""

    computations: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0


_stats = HashStats()


def hash_stats() -> HashStats:
    """A copy of the counters: computations so far, hashes now running, the most at once."""
    with _stats_lock:
        return HashStats(_stats.computations, _stats.in_flight, _stats.peak_in_flight)


def reset_peak() -> None:
    """Start measuring the most concurrent computations afresh."""
    with _stats_lock:
        _stats.peak_in_flight = _stats.in_flight


class _Slot:
    """One of the hashing slots, held while argon2 runs."""

    def __init__(self, wait_seconds: float) -> None:
        self._wait = wait_seconds

    def __enter__(self) -> None:
        if not _slots.acquire(timeout=self._wait):
            raise HashingBusy("the server is busy checking passwords: try again shortly")
        with _stats_lock:
            _stats.computations += 1
            _stats.in_flight += 1
            _stats.peak_in_flight = max(_stats.peak_in_flight, _stats.in_flight)

    def __exit__(self, *exc: object) -> None:
        with _stats_lock:
            _stats.in_flight -= 1
        _slots.release()


@functools.cache
def _hasher(params: Argon2Parameters) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=params.hash_len,
        salt_len=params.salt_len,
        encoding="utf-8",
        type=Type.ID,
    )


def hash_password(
    password: str, params: Argon2Parameters = OWASP_PARAMETERS, *, wait_seconds: float = 10.0
) -> str:
    """The argon2id hash (PHC string, with its salt and parameters) of `password`."""
    with _Slot(wait_seconds):
        return _hasher(params).hash(password)


def verify_password(password: str, password_hash: str, *, wait_seconds: float = 10.0) -> bool:
    """Whether `password` matches `password_hash` (parameters are read from the hash)."""
    with _Slot(wait_seconds):
        try:
            return _hasher(OWASP_PARAMETERS).verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def needs_rehash(password_hash: str, params: Argon2Parameters = OWASP_PARAMETERS) -> bool:
    """Whether a stored hash was made with other parameters than `params` (cheap: no hashing)."""
    try:
        return _hasher(params).check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@functools.cache
def dummy_hash(params: Argon2Parameters = OWASP_PARAMETERS) -> str:
    """A hash of a random password with `params`: verified against when the user is unknown, so
    that an unknown user name costs the same time as a wrong password."""
    return hash_password(secrets.token_urlsafe(32), params)
