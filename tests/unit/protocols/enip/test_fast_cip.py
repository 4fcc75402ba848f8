"""The extractor's CIP rows (`enip.cip_rows`): Multiple Service Packet replies read header by
header across a batch, and requests summarised once per distinct request (`REQUESTS`), are equal
to the exact decoder on spec-built, mutated and repeated frames; they do not fall back to it."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plantwarden.protocols import enip
from plantwarden.protocols.common import Operation, ParseStatus
from plantwarden.protocols.enip import EnipFinding, cip_rows

from . import builders as b
from .builders import both_paths
from .test_properties import SETTINGS, VALID_CIP, VALID_REPLIES, check, simple_cip

EXTRACT = sys.modules["plantwarden.protocols.enip.extract"]


def wrapped(cip: bytes, connected: bool) -> bytes:
    """`cip` in the common layout: SendUnitData (connected) or SendRRData."""
    return b.send_unit_data(0x2222, 7, cip) if connected else b.send_rr_data(cip)


def no_exact_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a row that goes to the exact decoder fail the test."""

    def refuse(pdu: bytes, from_server: bool, offset: int = 0) -> enip.EnipMessage:
        raise AssertionError(f"row sent to the exact decoder: {pdu.hex()}")

    monkeypatch.setattr(EXTRACT, "decode", refuse)


@st.composite
def embedded_reply(draw: st.DrawFn) -> bytes:
    """A reply as a Multiple Service Packet embeds it: sound, too short for its header or status
    words, or one the exact decoder must read (nested Multiple Service Packet, Forward_Open)."""
    sound = st.builds(
        b.reply,
        st.integers(0, 127),
        st.integers(0, 255),
        st.lists(st.integers(0, 0xFFFF), max_size=2).map(tuple),
        st.binary(max_size=12),
    )
    return draw(st.one_of(sound, sound, st.binary(max_size=5), st.sampled_from(VALID_REPLIES)))


@st.composite
def multiple_reply(draw: st.DrawFn) -> bytes:
    """A Multiple Service Packet reply, its count, offsets or embedded headers often broken."""
    message = bytearray(b.multiple(*draw(st.lists(embedded_reply(), max_size=8)), is_reply=True))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["set", "cut", "status words"]))
        if action == "set" and len(message) > 4:
            message[draw(st.integers(4, len(message) - 1))] = draw(st.integers(0, 255))
        elif action == "cut":
            del message[draw(st.integers(4, len(message))) :]
        else:
            message[3] = draw(st.integers(0, 3))
    return bytes(message)


@SETTINGS
@given(st.lists(st.tuples(multiple_reply(), st.booleans()), min_size=1, max_size=4))
def test_multiple_service_replies_equal_the_exact_decoder(replies: list[tuple[bytes, bool]]) -> None:
    check([(wrapped(message, connected), True, 0) for message, connected in replies])


@SETTINGS
@given(
    st.lists(
        st.one_of(st.sampled_from(VALID_CIP), simple_cip(), st.binary(min_size=1, max_size=30)),
        min_size=1,
        max_size=3,
    ),
    st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=8),
)
def test_repeated_requests_equal_the_exact_decoder(pool: list[bytes], picks: list[tuple[int, bool]]) -> None:
    """Requests drawn again and again from a small pool, as a plant polls: each summary the
    exact decoder's, whether first met, met again in the batch or kept from an earlier one."""
    frames = [(wrapped(pool[pick % len(pool)], connected), False, 0) for pick, connected in picks]
    check(frames)
    check(frames)


def test_multiple_service_replies_and_requests_take_no_exact_decoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    no_exact_decoder(monkeypatch)
    replies = [
        b.multiple(b.reply(0x4C, data=b"\xc4\0\1\0\0\0"), b.reply(0x10, 0x05, (0x0102,)), is_reply=True),
        b.multiple(b.reply(0x0E, data=b"\1\0"), b"\xce\0", b"", is_reply=True),
        b.multiple(is_reply=True) + b"\0\0",
        b.reply(0x0A, data=struct.pack("<HHH", 2, 6, 200) + b.reply(0x0E)),
        b.reply(0x0A),
    ]
    requests = [*VALID_CIP, VALID_CIP[0]]
    frames = [(wrapped(message, True), True, 0) for message in replies]
    frames += [(wrapped(message, False), False, 0) for message in requests]
    columns = both_paths(frames)
    summary = columns.summary
    assert summary.function[:5].tolist() == ["multiple_service_packet"] * 5
    assert summary.quantity[:5].tolist() == [2, 3, 0, 0, 0]
    assert [Operation(value) for value in summary.operation[:5].tolist()] == [
        Operation.WRITE,
        Operation.READ,
        Operation.OTHER,
        Operation.OTHER,
        Operation.OTHER,
    ]
    assert summary.finding[:5].tolist() == [0, EnipFinding.CIP_TOO_SHORT, 0, EnipFinding.BAD_EMBEDDED, 0]
    assert summary.status[1] == ParseStatus.MALFORMED
    assert columns.cip_service[:5].tolist() == [0x8A] * 5


def test_an_embedded_forward_open_reply_goes_to_the_exact_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    no_exact_decoder(monkeypatch)
    nested = b.multiple(b.reply(0x0E), b.forward_open_reply(0x2222, 0x80001111), is_reply=True)
    with pytest.raises(AssertionError, match="exact decoder"):
        enip.extract(*arrays(wrapped(nested, True), True))


def arrays(pdu: bytes, sent: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    buffer = np.frombuffer(pdu, dtype=np.uint8)
    return buffer, np.array([0]), np.array([len(pdu)]), np.array([sent])


def test_the_request_summaries_kept_are_bounded_and_no_reply_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cip_rows, "REQUESTS", {})
    monkeypatch.setattr(cip_rows, "MAX_REQUESTS", 3)
    requests = [b.request(0x4C, b.symbol(f"Tag{index}"), b"\1\0") for index in range(7)]
    both_paths([(wrapped(message, True), False, 0) for message in requests])
    assert 0 < len(cip_rows.REQUESTS) <= 3
    assert set(cip_rows.REQUESTS) <= set(requests)
    cip_rows.REQUESTS.clear()
    long_write = b.request(0x4D, b.symbol("Tag"), b"\xc4\0\1\0" + bytes(cip_rows.MAX_REQUEST_KEPT))
    both_paths([(wrapped(long_write, True), False, 0)] * 2)
    assert cip_rows.REQUESTS == {}
    cip_rows.REQUESTS.clear()
    both_paths([(wrapped(message, True), True, 0) for message in VALID_REPLIES])
    assert cip_rows.REQUESTS == {}


def test_a_datagram_whose_length_overruns_it_is_not_read_as_a_common_row() -> None:
    pdu = bytearray(b.send_rr_data(b.reply(0x0E, data=b"\1\0" * 8)))
    struct.pack_into("<H", pdu, 2, len(pdu) - 24 + 10)  # ten bytes more than the datagram holds
    columns = both_paths([(bytes(pdu), True, 1)])
    assert columns.summary.finding.tolist() == [EnipFinding.LENGTH_BEYOND_DATA]
