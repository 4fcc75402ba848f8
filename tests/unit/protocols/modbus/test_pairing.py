"""Pairing requests with responses: answered, exceptions, timeouts, reuse, bounds, across batches."""

from __future__ import annotations

import numpy as np

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
