"""The extractor's windows: read in place, the buffer's last bytes followed by zeros."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.protocols.modbus.walk import WINDOW, Windows, padded, windows


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.lists(st.integers(0, 63), max_size=20))
def test_windows_read_in_place_equal_those_of_a_padded_copy(data: bytes, positions: list[int]) -> None:
    buffer = np.frombuffer(data, dtype=np.uint8)
    at = np.array([p for p in positions if p < len(data)], dtype=np.int64)
    expected = windows(padded(buffer))[at]
    assert Windows(buffer)[at].tobytes() == expected.tobytes()


def test_a_window_at_the_last_byte_reads_zeros_after_it() -> None:
    buffer = np.arange(1, 21, dtype=np.uint8)
    view = Windows(buffer)
    (last,) = view[np.array([19], dtype=np.int64)].view(np.uint8).reshape(-1, WINDOW)
    assert last.tolist() == [20] + [0] * (WINDOW - 1)
    (first,) = view[np.array([0], dtype=np.int64)].view(np.uint8).reshape(-1, WINDOW)
    assert first.tolist() == list(range(1, WINDOW + 1))
