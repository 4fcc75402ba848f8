from __future__ import annotations

import threading

import pytest

from plantwarden.accounts import passwords
from plantwarden.accounts.errors import WeakPassword
from plantwarden.accounts.passwords import Argon2Parameters

FAST = Argon2Parameters(time_cost=1, memory_kib=1024)


def test_the_shipped_list_holds_the_10000_most_common_passwords() -> None:
    common = passwords.common_passwords()
    assert len(common) == 10_000
    assert {"123456", "password", "qwerty", "dragon"} <= common


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 12 characters"),
        ("elevenchars", "at least 12 characters"),
        ("123qweasdzxc", "most common passwords"),  # 12 characters and on the list
        ("QWERTY123456", "most common passwords"),  # compared case-insensitively
        ("my name is Alice and so?", "user name"),
        ("x-a.l.i.c.e-and-more-words", "user name"),
        ("a" * 1025, "at most 1024"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, reason: str) -> None:
    with pytest.raises(WeakPassword, match=reason):
        passwords.check_password_policy("alice", password)


def test_a_good_password_passes() -> None:
    passwords.check_password_policy("alice", "correct horse battery staple")
    passwords.check_password_policy("alice", "x" * 12)


def test_weak_password_is_invalid_input() -> None:
    from plantwarden.core.errors import InvalidInput

    assert issubclass(WeakPassword, InvalidInput)


def test_the_default_parameters_are_owasps_argon2id() -> None:
    defaults = Argon2Parameters()
    assert (defaults.memory_kib, defaults.time_cost, defaults.parallelism) == (19456, 2, 1)
    encoded = passwords.hash_password("correct horse battery staple")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify_password("correct horse battery staple", encoded)
    assert not passwords.needs_rehash(encoded)


def test_hash_and_verify() -> None:
    encoded = passwords.hash_password("correct horse battery staple", FAST)
    assert encoded.startswith("$argon2id$")
    assert passwords.verify_password("correct horse battery staple", encoded)
    assert not passwords.verify_password("correct horse battery stapler", encoded)
    assert not passwords.verify_password("anything", "not a hash")
    assert passwords.hash_password("same", FAST) != passwords.hash_password("same", FAST)  # salted


def test_changed_parameters_ask_for_a_rehash() -> None:
    encoded = passwords.hash_password("correct horse battery staple", FAST)
    assert passwords.needs_rehash(encoded, Argon2Parameters())
    assert not passwords.needs_rehash(encoded, FAST)


def test_at_most_two_hashes_are_computed_at_a_time() -> None:
    slow = Argon2Parameters(time_cost=4, memory_kib=8192)
    threads_count = 6
    barrier = threading.Barrier(threads_count)
    before = passwords.hash_stats().computations
    passwords.reset_peak()

    def work() -> None:
        barrier.wait()
        for _ in range(2):
            encoded = passwords.hash_password("correct horse battery staple", slow)
            assert passwords.verify_password("correct horse battery staple", encoded)

    threads = [threading.Thread(target=work) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stats = passwords.hash_stats()
    assert stats.computations - before == threads_count * 4
    assert stats.peak_in_flight == passwords.MAX_CONCURRENT_HASHES == 2
    assert stats.in_flight == 0


def test_a_hash_waits_for_a_slot_and_gives_up_when_all_stay_busy() -> None:
    from plantwarden.accounts.errors import HashingBusy

    held = [passwords._slots.acquire(timeout=5) for _ in range(passwords.MAX_CONCURRENT_HASHES)]
    assert all(held)
    try:
        with pytest.raises(HashingBusy, match="busy"):
            passwords.hash_password("correct horse battery staple", FAST, wait_seconds=0.05)
    finally:
        for _ in held:
            passwords._slots.release()
    assert passwords.verify_password("x" * 12, passwords.hash_password("x" * 12, FAST))
