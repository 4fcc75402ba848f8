"""Both paths over payloads: the exact decoder's messages, held equal to the column extractor's rows."""

from __future__ import annotations

import numpy as np

from plantwarden.protocols.dnp3 import Dnp3Columns, Dnp3Message, decode_payload, decode_segments, extract


def columns_of(payloads: list[bytes], from_server: list[bool]) -> tuple[Dnp3Columns, Dnp3Columns]:
    """(extract's columns, decode_segments' columns) for `payloads` as one batch."""
    buffer = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    lengths = np.array([len(payload) for payload in payloads], dtype=np.int64)
    starts = (np.cumsum(lengths) - lengths).astype(np.int64)
    servers = np.array(from_server, dtype=np.bool_)
    return extract(buffer, starts, lengths, servers), decode_segments(buffer, starts, lengths, servers)


def both(payload: bytes, from_server: bool = False) -> tuple[list[Dnp3Message], bytes]:
    """The exact path's messages and leftover for `payload`, after checking that the column
    extractor gives the very same rows."""
    messages, leftover = decode_payload(payload, from_server)
    fast, exact = columns_of([payload], [from_server])
    assert fast.differences(exact) == []
    assert fast.summary.summaries() == [message.summary() for message in messages]
    assert fast.leftover.tolist() == [len(leftover)]
    return messages, leftover
