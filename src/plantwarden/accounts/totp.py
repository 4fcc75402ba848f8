"""The second factor: TOTP (RFC 6238 over RFC 4226's HOTP) and single-use recovery codes.

Authenticator apps use SHA-1, 30-second steps and 6 digits; those are the defaults. A code is
accepted one step either side of now (clock drift), and never for a step at or before the last
step the user already used, so a code cannot be replayed within its window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from datetime import datetime
from typing import Literal
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of the current one
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends for HMAC-SHA-1

RECOVERY_CODE_COUNT = 10
# 16 base32 characters = 80 random bits: far beyond brute force, so a fast hash (SHA-256) of the
# code is safe to store, and checking a code never needs the slow password hash.
RECOVERY_CODE_GROUPS = 4
RECOVERY_CODE_GROUP_LENGTH = 4
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"

Algorithm = Literal["sha1", "sha256", "sha512"]


def generate_secret() -> bytes:
    """A new random TOTP secret (20 bytes)."""
    return secrets.token_bytes(SECRET_BYTES)


def secret_to_base32(secret: bytes) -> str:
    """The secret as authenticator apps take it: base32, upper case, without padding."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def secret_from_base32(text: str) -> bytes:
    """The secret from its base32 form (case, spaces and padding do not matter)."""
    cleaned = "".join(text.split()).upper().rstrip("=")
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def time_step(time: datetime | float, step_seconds: int = STEP_SECONDS) -> int:
    """The RFC 6238 time step T = floor((unix time - T0) / X) with T0 = 0."""
    seconds = time.timestamp() if isinstance(time, datetime) else float(time)
    return int(seconds // step_seconds)


def hotp(secret: bytes, counter: int, digits: int = DIGITS, algorithm: Algorithm = "sha1") -> str:
    """RFC 4226 HOTP: HMAC of the 8-byte counter, dynamically truncated, as `digits` digits."""
    mac = hmac.new(secret, struct.pack(">Q", counter), getattr(hashlib, algorithm)).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def code_at(
    secret: bytes,
    time: datetime | float,
    *,
    digits: int = DIGITS,
    algorithm: Algorithm = "sha1",
    step_seconds: int = STEP_SECONDS,
) -> str:
    """The TOTP code at `time` (a datetime, or Unix seconds)."""
    return hotp(secret, time_step(time, step_seconds), digits, algorithm)


def verify(
    secret: bytes, code: str, now: datetime | float, last_step: int | None, *, window: int = WINDOW
) -> int | None:
    """The step `code` belongs to if it is valid within +-`window` steps of `now` and later than
    `last_step` (the step last used: a code is never accepted twice); otherwise None."""
    candidate = "".join(code.split())
    if len(candidate) != DIGITS or not candidate.isascii() or not candidate.isdigit():
        return None
    current = time_step(now)
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        # Compare every step (no early exit), so timing does not tell which one matched.
        if hmac.compare_digest(hotp(secret, step), candidate) and (last_step is None or step > last_step):
            matched = step
    return matched


def provisioning_uri(secret: bytes, username: str, issuer: str = "Plantwarden") -> str:
    """The `otpauth://` URI an authenticator app reads (usually from a QR code)."""
    label = quote(f"{issuer}:{username}", safe=":@")
    query = urlencode(
        {
            "secret": secret_to_base32(secret),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


# --- recovery codes ---------------------------------------------------------------------------


def generate_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """New recovery codes like `k3vq-7z2m-pd4a-w6xe` (80 random bits each)."""
    codes = set[str]()
    while len(codes) < count:
        chars = "".join(
            secrets.choice(_RECOVERY_ALPHABET)
            for _ in range(RECOVERY_CODE_GROUPS * RECOVERY_CODE_GROUP_LENGTH)
        )
        groups = [
            chars[i : i + RECOVERY_CODE_GROUP_LENGTH]
            for i in range(0, len(chars), RECOVERY_CODE_GROUP_LENGTH)
        ]
        codes.add("-".join(groups))
    return sorted(codes)


def normalize_recovery_code(code: str) -> str:
    """The code as it is hashed: lower case, without spaces or hyphens."""
    return "".join(ch for ch in code.lower() if ch not in " -\t")


def looks_like_recovery_code(code: str) -> bool:
    """Whether `code` has the shape of a recovery code (rather than a 6-digit TOTP code)."""
    normalized = normalize_recovery_code(code)
    return len(normalized) == RECOVERY_CODE_GROUPS * RECOVERY_CODE_GROUP_LENGTH and all(
        ch in _RECOVERY_ALPHABET for ch in normalized
    )


def hash_recovery_code(code: str) -> str:
    """SHA-256 (hex) of the normalized code, as stored."""
    return hashlib.sha256(normalize_recovery_code(code).encode("ascii", "replace")).hexdigest()
