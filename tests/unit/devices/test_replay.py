"""The replay window: new, duplicate (QoS 1 redelivery) and replayed messages, and its JSON form."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.core.errors import Conflict, InvalidInput
from plantwarden.devices.replay import WINDOW, Outcome, ReplayWindow

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def window_with(*counters: int, epoch: int = 5) -> ReplayWindow:
    window = ReplayWindow()
    for counter in counters:
        assert window.observe(epoch, counter, digest(f"m{counter}"), T0).outcome is Outcome.ACCEPT
    return window


def test_new_counters_are_accepted_in_and_out_of_order() -> None:
    window = window_with(1, 2, 10, 4)
    assert window.highest == 10 and sorted(window.seen) == [1, 2, 4, 10]
    assert window.accepted == 4 and window.duplicates == window.replays == 0


def test_a_redelivery_is_a_duplicate_by_dup_flag_or_within_the_redelivery_window() -> None:
    window = window_with(7)
    late = T0 + timedelta(minutes=30)
    assert window.observe(5, 7, digest("m7"), T0 + timedelta(seconds=90)).outcome is Outcome.DUPLICATE
    assert window.observe(5, 7, digest("m7"), late, redelivered=True).outcome is Outcome.DUPLICATE
    verdict = window.observe(5, 7, digest("m7"), late)
    assert verdict.outcome is Outcome.REPLAY and "without the DUP flag" in verdict.reason
    assert (window.accepted, window.duplicates, window.replays) == (1, 2, 1)


def test_the_dup_flag_does_not_make_an_old_message_harmless() -> None:
    """The broker sets DUP and is not trusted: a flagged copy hours later is a replay."""
    window = window_with(7)
    verdict = window.observe(5, 7, digest("m7"), T0 + timedelta(hours=2), redelivered=True)
    assert verdict.outcome is Outcome.REPLAY


def test_a_reused_counter_with_another_message_is_a_replay_even_flagged_redelivered() -> None:
    window = window_with(7)
    verdict = window.observe(5, 7, digest("other"), T0, redelivered=True)
    assert verdict.outcome is Outcome.REPLAY and "another message" in verdict.reason


def test_older_epoch_and_below_the_window_are_replays() -> None:
    window = window_with(0, WINDOW + 3)
    assert window.judge(4, WINDOW + 10, digest("x"), T0).outcome is Outcome.REPLAY
    assert window.judge(5, 3, digest("m3"), T0).outcome is Outcome.REPLAY, "below the window"
    assert window.judge(5, 4, digest("m4"), T0).outcome is Outcome.ACCEPT, "the lowest counter inside"
    assert 0 not in window.seen, "counters below the window are forgotten"


def test_a_newer_epoch_resets_the_window() -> None:
    window = window_with(100, 200)
    assert window.observe(6, 0, digest("n0"), T0).outcome is Outcome.ACCEPT
    assert (window.epoch, window.highest, list(window.seen)) == (6, 0, [0])
    assert window.judge(5, 201, digest("m201"), T0).outcome is Outcome.REPLAY


def test_accept_refuses_what_judge_does_not_accept_and_count_refuses_an_accept() -> None:
    window = window_with(3)
    with pytest.raises(Conflict, match="cannot be accepted"):
        window.accept(5, 3, digest("m3"), T0)
    with pytest.raises(InvalidInput):
        window.count(window.judge(5, 4, digest("m4"), T0))
    with pytest.raises(InvalidInput, match="time zone"):
        window.judge(5, 4, digest("m4"), datetime(2026, 11, 27, 8, 0))  # noqa: DTZ001


def test_a_big_jump_forgets_the_whole_window() -> None:
    window = window_with(1, 2, 3)
    window.observe(5, 2**40, digest("far"), T0)
    assert list(window.seen) == [2**40]


def test_json_round_trip_keeps_verdicts_and_counts() -> None:
    window = window_with(1, 2, 3)
    window.observe(5, 2, digest("m2"), T0)
    window.observe(5, 2, digest("bad"), T0)
    restored = ReplayWindow.from_json(json.loads(json.dumps(window.to_json())))
    assert restored.to_json() == window.to_json()
    assert restored.judge(5, 3, digest("m3"), T0 + timedelta(seconds=5)).outcome is Outcome.DUPLICATE
    assert restored.judge(5, 3, digest("m3"), T0 + timedelta(hours=1)).outcome is Outcome.REPLAY
    assert restored.judge(5, 4, digest("m4"), T0).outcome is Outcome.ACCEPT
    assert (restored.accepted, restored.duplicates, restored.replays) == (3, 1, 1)
    assert ReplayWindow.from_json(ReplayWindow().to_json()).judge(0, 0, digest("a"), T0).accepted


def test_damaged_json_is_refused_clearly() -> None:
    with pytest.raises(InvalidInput, match="damaged"):
        ReplayWindow.from_json({"epoch": 1, "highest": "x"})


events = st.lists(
    st.tuples(
        st.integers(0, 3),  # epoch
        st.integers(0, 3000),  # counter
        st.integers(0, 2),  # which of three messages under that number
        st.integers(0, 400),  # seconds after T0
        st.booleans(),  # DUP flag
    ),
    max_size=120,
)


@settings(max_examples=100, deadline=None)
@given(events=events, restore_at=st.integers(0, 120))
def test_no_epoch_and_counter_is_ever_accepted_twice(
    events: list[tuple[int, int, int, int, bool]], restore_at: int
) -> None:
    window = ReplayWindow()
    accepted: set[tuple[int, int]] = set()
    newest_epoch = -1
    for index, (epoch, counter, variant, seconds, flag) in enumerate(events):
        if index == restore_at:  # a platform restart in the middle changes nothing
            window = ReplayWindow.from_json(json.loads(json.dumps(window.to_json())))
        verdict = window.observe(
            epoch, counter, digest(f"{epoch}/{counter}/{variant}"), T0 + timedelta(seconds=seconds), flag
        )
        if verdict.accepted:
            assert (epoch, counter) not in accepted, f"accepted twice: {epoch}/{counter}"
            assert epoch >= newest_epoch, "never an epoch older than one already accepted"
            accepted.add((epoch, counter))
            newest_epoch = epoch
        elif verdict.outcome is Outcome.DUPLICATE:
            assert (epoch, counter) in accepted, "a duplicate is of a message that was accepted"
    assert (window.accepted, window.accepted + window.duplicates + window.replays) == (
        len(accepted),
        len(events),
    )


@settings(max_examples=50, deadline=None)
@given(counters=st.lists(st.integers(0, 2**64 - 1), unique=True, max_size=60).map(sorted))
def test_increasing_counters_are_all_accepted(counters: list[int]) -> None:
    window = ReplayWindow()
    assert all(window.observe(1, c, digest(str(c)), T0).accepted for c in counters)
