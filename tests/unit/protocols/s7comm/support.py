"""Both paths over the same segments, held to be identical."""

from __future__ import annotations

import numpy as np

from plantwarden.protocols.s7comm import S7Columns, S7Message, decode_payload, decode_segments, extract


def both(segments: list[bytes], from_server: list[bool] | None = None) -> tuple[S7Columns, list[int]]:
    """The fast path's columns and leftovers for `segments`, after checking that they are the
    exact path's, value for value."""
    server = np.array(from_server if from_server is not None else [False] * len(segments), dtype=np.bool_)
    lengths = np.array([len(segment) for segment in segments], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if segments else lengths
    buffer = np.frombuffer(b"".join(segments), dtype=np.uint8)
    fast = extract(buffer, starts, lengths, server)
    exact = decode_segments(buffer, starts, lengths, server)
    assert fast.columns.differences(exact.columns) == []
    assert fast.columns.summary.summaries() == exact.columns.summary.summaries()
    assert np.array_equal(fast.leftover, exact.leftover)
    return fast.columns, fast.leftover.tolist()


def one(payload: bytes, from_server: bool = False) -> S7Message:
    """The one message of `payload`, after checking both paths agree on it."""
    messages, rest = decode_payload(payload, from_server)
    assert len(messages) == 1 and rest == b""
    columns, leftover = both([payload], [from_server])
    assert len(columns) == 1 and leftover == [0]
    assert columns.summary.summaries() == [messages[0].summary()]
    return messages[0]
