from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from plantwarden.accounts import totp

# RFC 6238, Appendix B: the seeds are ASCII "1234567890" repeated to the hash's length.
SEED_SHA1 = b"12345678901234567890"
SEED_SHA256 = b"12345678901234567890123456789012"
SEED_SHA512 = b"1234567890123456789012345678901234567890123456789012345678901234"
RFC_6238_VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("unix", "sha1", "sha256", "sha512"), RFC_6238_VECTORS)
def test_rfc_6238_test_vectors(unix: int, sha1: str, sha256: str, sha512: str) -> None:
    assert totp.code_at(SEED_SHA1, unix, digits=8) == sha1
    assert totp.code_at(SEED_SHA256, unix, digits=8, algorithm="sha256") == sha256
    assert totp.code_at(SEED_SHA512, unix, digits=8, algorithm="sha512") == sha512
    # The same instant as a datetime, and the 6-digit codes authenticator apps show.
    assert totp.code_at(SEED_SHA1, datetime.fromtimestamp(unix, UTC), digits=8) == sha1
    assert totp.code_at(SEED_SHA1, unix) == sha1[-6:]


def test_rfc_4226_hotp_vectors() -> None:
    expected = [
        "755224",
        "287082",
        "359152",
        "969429",
        "338314",
        "254676",
        "287922",
        "162583",
        "399871",
        "520489",
    ]
    assert [totp.hotp(SEED_SHA1, counter) for counter in range(10)] == expected


def test_a_code_is_accepted_one_step_either_side() -> None:
    now = datetime(2026, 11, 26, 8, 0, 10, tzinfo=UTC)
    step = totp.time_step(now)
    for offset in (-1, 0, 1):
        code = totp.code_at(SEED_SHA1, now + timedelta(seconds=30 * offset))
        assert totp.verify(SEED_SHA1, code, now, None) == step + offset
    for offset in (-2, 2):
        code = totp.code_at(SEED_SHA1, now + timedelta(seconds=30 * offset))
        assert totp.verify(SEED_SHA1, code, now, None) is None


def test_a_code_is_never_accepted_twice_nor_an_older_one() -> None:
    now = datetime(2026, 11, 26, 8, 0, 10, tzinfo=UTC)
    code = totp.code_at(SEED_SHA1, now)
    used = totp.verify(SEED_SHA1, code, now, None)
    assert used is not None
    assert totp.verify(SEED_SHA1, code, now, used) is None  # the same code again
    assert totp.verify(SEED_SHA1, code, now + timedelta(seconds=25), used) is None  # still in its window
    previous = totp.code_at(SEED_SHA1, now - timedelta(seconds=30))
    assert totp.verify(SEED_SHA1, previous, now, used) is None  # an earlier step
    following = totp.code_at(SEED_SHA1, now + timedelta(seconds=30))
    assert totp.verify(SEED_SHA1, following, now + timedelta(seconds=30), used) == used + 1


FULL_WIDTH_DIGITS = "\uff11\uff12\uff13\uff14\uff15\uff16"


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", FULL_WIDTH_DIGITS])
def test_malformed_codes_are_refused(code: str) -> None:
    assert totp.verify(SEED_SHA1, code, 59, None) is None


def test_spaces_in_a_code_are_ignored() -> None:
    code = totp.code_at(SEED_SHA1, 59)
    assert totp.verify(SEED_SHA1, f" {code[:3]} {code[3:]} ", 59, None) == 1


def test_secrets_are_random_160_bits_and_survive_base32() -> None:
    first, second = totp.generate_secret(), totp.generate_secret()
    assert len(first) == 20 and first != second
    text = totp.secret_to_base32(first)
    assert "=" not in text and text.isupper()
    assert totp.secret_from_base32(text.lower()) == first


def test_provisioning_uri() -> None:
    uri = totp.provisioning_uri(SEED_SHA1, "alice")
    parsed = urlparse(uri)
    assert (parsed.scheme, parsed.netloc, parsed.path) == ("otpauth", "totp", "/Plantwarden:alice")
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    assert query == {
        "secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        "issuer": "Plantwarden",
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }


def test_recovery_codes() -> None:
    codes = totp.generate_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        assert len(code) == 19 and code.count("-") == 3
        assert totp.looks_like_recovery_code(code)
        assert totp.looks_like_recovery_code(code.upper().replace("-", " "))
        assert totp.hash_recovery_code(code) == totp.hash_recovery_code(code.upper().replace("-", ""))
    assert not totp.looks_like_recovery_code("123456")
