"""Pairing requests with responses: answered, exceptions, timeouts, reuse, bounds, across batches."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwarden.protocols.modbus.pairing import Pairing, Pairs, PairStatus

S = 1_000_000_000


def feed(pairing: Pairing, rows: list[tuple[int, int, int, bool, int, int]]) -> Pairs:
    """Rows as (connection, time, transaction id, is response, function code, exception code)."""
    columns = [np.array(column) for column in zip(*rows, strict=True)]
    return pairing.feed(*columns)


def test_a_response_answers_its_request_with_the_latency_and_exception() -> None:
    pairing = Pairing(timeout_ns=5 * S)
    pairs = feed(
        pairing,
        [(1, 10, 7, False, 3, 0), (2, 11, 7, False, 4, 0), (2, 40, 7, True, 4, 2), (1, 50, 7, True, 3, 0)],
    )
    assert pairs.status.tolist() == [PairStatus.ANSWERED, PairStatus.ANSWERED]
    assert pairs.connection.tolist() == [2, 1] and pairs.latency_ns.tolist() == [29, 40]
    assert pairs.exception_code.tolist() == [2, 0] and pairs.request_row.tolist() == [1, 0]
    assert pairs.response_row.tolist() == [2, 3] and len(pairing) == 0


def test_state_carries_across_batches_and_expire_closes_the_unanswered() -> None:
    pairing = Pairing(timeout_ns=5 * S)
    assert len(feed(pairing, [(1, 0, 1, False, 3, 0), (1, 1 * S, 2, False, 3, 0)])) == 0
    answered = feed(pairing, [(1, 2 * S, 2, True, 3, 0)])
    assert answered.answered.tolist() == [True] and answered.transaction_id.tolist() == [2]
    assert len(pairing.expire(4 * S)) == 0
    expired = pairing.expire(5 * S)
    assert expired.status.tolist() == [PairStatus.TIMED_OUT] and expired.response_time.tolist() == [-1]
    assert len(pairing) == 0


def test_reuse_unsolicited_mismatch_and_bounds() -> None:
    pairing = Pairing(max_outstanding=2, max_connections=2)
    pairs = feed(
        pairing,
        [
            (1, 1, 5, False, 3, 0),
            (1, 2, 5, False, 3, 0),
            (1, 3, 9, True, 3, 0),
            (1, 4, 6, False, 1, 0),
            (1, 5, 7, False, 1, 0),
            (1, 6, 6, True, 2, 0),
            (2, 7, 1, False, 3, 0),
            (3, 8, 1, False, 3, 0),
        ],
    )
    assert pairs.status.tolist() == [
        PairStatus.REPLACED,
        PairStatus.UNSOLICITED,
        PairStatus.EVICTED,
        PairStatus.ANSWERED,
        PairStatus.EVICTED,
    ]
    assert pairs.function_mismatch.tolist() == [False, False, False, True, False]
    assert pairs.connection.tolist() == [1, 1, 1, 1, 1] and len(pairing) == 2


# The vectorised `feed` against the row-by-row walk it must equal (`_feed_exactly`).

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Row = tuple[int, int, int, bool, int, int]
Step = tuple[list[Row], np.ndarray | None] | int
"""Feed these rows (with these labels), or expire at this time."""


def vectorised(**bounds: int) -> Pairing:
    """A `Pairing` that takes the numpy path for every batch, however small."""
    pairing = Pairing(**bounds)
    pairing.exact_below = 0
    return pairing


def state(pairing: Pairing) -> list[tuple[int, list[tuple[int, tuple[int, ...]]]]]:
    """The waiting requests, in both dicts' order (it decides what is evicted and expired first)."""
    return [
        (connection, [(tid, tuple(request)) for tid, request in waiting.items()])
        for connection, waiting in pairing._waiting.items()
    ]


def assert_same(left: Pairs, right: Pairs) -> None:
    for field in fields(Pairs):
        mine, theirs = getattr(left, field.name), getattr(right, field.name)
        assert mine.dtype == theirs.dtype, field.name
        assert mine.tolist() == theirs.tolist(), field.name


def columns(rows: list[Row]) -> list[np.ndarray]:
    dtypes = (np.int64, np.int64, np.int32, np.bool_, np.uint8, np.uint8)
    if not rows:
        return [np.zeros(0, dtype=dtype) for dtype in dtypes]
    return [
        np.array(column, dtype=dtype) for column, dtype in zip(zip(*rows, strict=True), dtypes, strict=True)
    ]


def feed_both(fast: Pairing, walk: Pairing, rows: list[Row], labels: np.ndarray | None = None) -> Pairs:
    """Feed `rows` to both, check they closed the same and keep the same; the exchanges."""
    connection, time, tid, response, code, exception = columns(rows)
    pairs = fast.feed(connection, time, tid, response, code, exception, labels)
    assert_same(pairs, walk._feed_exactly(connection, time, tid, response, code, exception, labels))
    assert state(fast) == state(walk) and len(fast) == len(walk)
    return pairs


def plant(rows: int, seed: int) -> list[Row]:
    """30 connections polling: a request, then its response 1-5 ms later; 0.1 % unanswered."""
    rng = np.random.default_rng(seed)
    connections = 30
    per = rows // (2 * connections) + 2
    shape = (connections, per)
    latency = rng.integers(1_000_000, 5_000_000, shape)
    requested = rng.integers(0, 100_000_000, (connections, 1)) + np.cumsum(
        latency + rng.integers(20_000_000, 100_000_000, shape), axis=1
    )
    tid = (rng.integers(0, 1 << 16, (connections, 1)) + np.arange(per)) % (1 << 16)
    code = rng.choice([1, 2, 3, 3, 3, 4, 4, 6, 16], shape)
    exception = np.where(rng.random(shape) < 0.01, 2, 0)
    answered = rng.random(shape) >= 0.001
    conn = np.broadcast_to(np.arange(connections)[:, None] * 7 + 1000, shape)
    zeros = np.zeros(shape, dtype=np.int64)
    table = np.concatenate(
        [
            np.stack([conn, requested, tid, zeros, code, zeros], -1).reshape(-1, 6),
            np.stack([conn, requested + latency, tid, zeros + 1, code, exception], -1)[answered],
        ]
    )
    table = table[np.argsort(table[:, 1], kind="stable")][:rows]
    return [(c, time, t, bool(response), f, e) for c, time, t, response, f, e in table.tolist()]


def chunks(rows: list[Row], size: int) -> list[list[Row]]:
    return [rows[at : at + size] for at in range(0, len(rows), size)]


def test_the_vectorised_path_equals_the_walk_on_the_scenarios_above() -> None:
    scenarios = [
        [[(1, 10, 7, False, 3, 0), (2, 11, 7, False, 4, 0), (2, 40, 7, True, 4, 2), (1, 50, 7, True, 3, 0)]],
        [[(1, 0, 1, False, 3, 0), (1, 1 * S, 2, False, 3, 0)], [(1, 2 * S, 2, True, 3, 0)]],
    ]
    for batches in scenarios:
        fast, walk = vectorised(timeout_ns=5 * S), Pairing(timeout_ns=5 * S)
        for rows in batches:
            feed_both(fast, walk, rows)
        assert_same(fast.expire(5 * S), walk.expire(5 * S))
        assert state(fast) == state(walk) == []


def test_reuse_and_bounds_walk_only_the_connections_that_evict() -> None:
    fast, walk = (
        vectorised(max_outstanding=2, max_connections=3),
        Pairing(max_outstanding=2, max_connections=3),
    )
    rows = [
        (1, 1, 5, False, 3, 0),
        (1, 2, 5, False, 3, 0),
        (2, 2, 5, False, 3, 0),
        (1, 3, 9, True, 3, 0),
        (1, 4, 6, False, 1, 0),
        (2, 4, 5, True, 3, 0),
        (1, 5, 7, False, 1, 0),
        (1, 6, 6, True, 2, 0),
        (3, 7, 1, False, 3, 0),
        (3, 8, 1, True, 3, 0),
    ]
    walked: set[int] = set()
    one = fast._one

    def spy(
        connection: int, time: int, tid: int, response: bool, code: int, exception: int, row: int
    ) -> None:
        walked.add(connection)
        one(connection, time, tid, response, code, exception, row)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast, "_one", spy)
        pairs = feed_both(fast, walk, rows, np.arange(100, 110))
    assert pairs.status.tolist() == [
        PairStatus.REPLACED,
        PairStatus.UNSOLICITED,
        PairStatus.ANSWERED,
        PairStatus.EVICTED,
        PairStatus.ANSWERED,
        PairStatus.ANSWERED,
    ]
    assert pairs.connection.tolist() == [1, 1, 2, 1, 1, 3]
    assert pairs.request_row.tolist() == [100, -1, 102, 101, 104, 108]
    assert walked == {1}


def test_the_common_case_walks_no_row_and_equals_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    fast, walk = Pairing(timeout_ns=S), Pairing(timeout_ns=S)
    batches = chunks(plant(24_000, seed=1), 3000)
    monkeypatch.setattr(fast, "_one", None)  # the numpy path must not need it
    for rows in batches:
        pairs = feed_both(fast, walk, rows)
        assert pairs.answered.mean() > 0.99
        now = rows[-1][1]
        assert_same(fast.expire(now), walk.expire(now))
        assert state(fast) == state(walk)
    assert len(fast) > 0


def test_a_walked_connection_that_reopens_keeps_its_place_among_the_vectorised() -> None:
    fast, walk = vectorised(timeout_ns=1, max_outstanding=1), Pairing(timeout_ns=1, max_outstanding=1)
    feed_both(fast, walk, [(1, 1, 0, False, 1, 0), (1, 1, 1, False, 1, 0), (2, 0, 0, False, 1, 0)])
    assert [connection for connection, _ in state(fast)] == [2, 1]
    assert_same(fast.expire(5), walk.expire(5))


CONNECTIONS = st.sampled_from([[1, 2, 3], [1, 2], [5, 6, 7, 8], [0, 1, 1 << 40]])
TIDS = st.sampled_from([[0, 1, 2], [7], [0, 1, 2, 3, 4, 5], [1, 1 << 20]])


@st.composite
def batches(draw: st.DrawFn) -> tuple[dict[str, int], list[Step]]:
    """Bounds, then feeds (rows, maybe labels) and expiries (a time), in the order to apply them."""
    bounds = {
        "timeout_ns": draw(st.integers(1, 40)),
        "max_outstanding": draw(st.sampled_from([1, 1, 2, 3, 64])),
        "max_connections": draw(st.sampled_from([1, 2, 3, 100_000, 100_000])),
    }
    connections, tids = draw(CONNECTIONS), draw(TIDS)
    row = st.tuples(
        st.sampled_from(connections),
        st.integers(0, 30),
        st.sampled_from(tids),
        st.booleans(),
        st.sampled_from([1, 3, 4]),
        st.sampled_from([0, 0, 2]),
    )
    steps: list[Step] = []
    clock = 0
    for _ in range(draw(st.integers(1, 6))):
        drawn = draw(st.lists(row, max_size=20))
        rows = [(c, clock + time, tid, response, code, exc) for c, time, tid, response, code, exc in drawn]
        labels = None
        if draw(st.booleans()):
            labels = np.array(draw(st.permutations(range(len(rows)))), dtype=np.int64) * 3 + 1000
        steps.append((rows, labels))
        clock += draw(st.integers(0, 20))
        if draw(st.booleans()):
            steps.append(clock + draw(st.integers(-10, 10)))
    return bounds, steps


@SETTINGS
@given(batches())
def test_the_vectorised_feed_equals_the_row_by_row_walk(case: tuple[dict[str, int], list[Step]]) -> None:
    bounds, steps = case
    fast, walk = vectorised(**bounds), Pairing(**bounds)
    for step in steps:
        if isinstance(step, int):
            assert_same(fast.expire(step), walk.expire(step))
            assert state(fast) == state(walk)
        else:
            feed_both(fast, walk, *step)
