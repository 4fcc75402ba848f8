"""What the Modbus tests share: running both paths on payloads and holding them equal."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from plantwarden.protocols.modbus import Extracted, ModbusFinding, decode_segments, extract


def batch(payloads: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The buffer, starts and lengths of `payloads` laid end to end."""
    lengths = np.array([len(payload) for payload in payloads], dtype=np.int32)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    buffer = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    return buffer, starts[: len(payloads)], lengths


def both_paths(payloads: Sequence[bytes], from_server: Sequence[bool]) -> Extracted:
    """`extract`'s result, after checking it equals `decode_segments`' row for row."""
    buffer, starts, lengths = batch(payloads)
    server = np.array(from_server, dtype=bool)
    fast = extract(buffer, starts, lengths, server)
    exact = decode_segments(buffer, starts, lengths, server)
    assert fast.columns.differences(exact.columns) == []
    assert fast.leftover.tolist() == exact.leftover.tolist()
    assert ModbusFinding.UNEXPECTED not in fast.columns.finding.tolist()
    return fast


def adu(
    transaction_id: int, unit_id: int, pdu: bytes, protocol_id: int = 0, length: int | None = None
) -> bytes:
    """An MBAP header and `pdu`; `length` overrides the MBAP length (for malformed frames)."""
    size = len(pdu) + 1 if length is None else length
    return (
        transaction_id.to_bytes(2, "big")
        + protocol_id.to_bytes(2, "big")
        + size.to_bytes(2, "big")
        + bytes((unit_id,))
        + pdu
    )
