"""Property-based fuzzing: random bytes and mutated valid datagrams never make a decoder raise,
every finding is a listed one (never UNEXPECTED), and both paths give identical rows."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.protocols.bacnet import BacnetFinding, decode, exact_columns, extract
from plantwarden.protocols.common import Operation, ParseStatus

from . import builders as b
from .test_decode import MALFORMED_CASES

AV, DEVICE = 2, 8
VALID: list[bytes] = [
    b.unicast(b.confirmed(1, 12, b.ctx_object(0, AV, 3) + b.ctx_unsigned(1, 85))),
    b.unicast(b.confirmed(1, 12, b.ctx_object(0, AV, 3) + b.ctx_unsigned(1, 87) + b.ctx_unsigned(2, 8))),
    b.unicast(
        b.complex_ack(
            1,
            12,
            b.ctx_object(0, AV, 3) + b.ctx_unsigned(1, 85) + b.opening(3) + b.app_real(1.5) + b.closing(3),
        )
    ),
    b.unicast(
        b.confirmed(
            2,
            15,
            b.ctx_object(0, AV, 3)
            + b.ctx_unsigned(1, 85)
            + b.opening(3)
            + b.app_real(20.0)
            + b.closing(3)
            + b.ctx_unsigned(4, 8),
        )
    ),
    b.unicast(
        b.confirmed(
            3,
            14,
            b.ctx_object(0, 0, 1)
            + b.opening(1)
            + b.ctx_unsigned(0, 85)
            + b.ctx_unsigned(0, 77)
            + b.closing(1),
        )
    ),
    b.unicast(
        b.complex_ack(
            3,
            14,
            b.ctx_object(0, 0, 1)
            + b.opening(1)
            + b.ctx_unsigned(2, 85)
            + b.opening(4)
            + b.app_real(2.0)
            + b.closing(4)
            + b.ctx_unsigned(2, 9)
            + b.opening(5)
            + b.app_enumerated(2)
            + b.app_enumerated(32)
            + b.closing(5)
            + b.closing(1),
        )
    ),
    b.broadcast(
        b.unconfirmed(
            0, b.app_object(DEVICE, 1234) + b.app_unsigned(1476) + b.app_enumerated(0) + b.app_unsigned(15)
        )
    ),
    b.broadcast(b.unconfirmed(8, b.ctx_unsigned(0, 1) + b.ctx_unsigned(1, 100))),
    b.broadcast(b.unconfirmed(8)),
    b.broadcast(b.unconfirmed(6, b.app_date(2026, 1, 1, 4) + b.app_time(0, 0, 0, 0))),
    b.unicast(b.error(1, 15, 2, 40)),
    b.unicast(b.reject(1, 4)),
    b.unicast(b.abort(1, 4, server=True)),
    b.unicast(b.segment_ack(1, 2, 3, server=True)),
    b.unicast(b.simple_ack(1, 15)),
    b.unicast(b.complex_ack(1, 14, b"\x0c\x00", segmented=True, more=True, sequence=0, window=2)),
    b.unicast(b.confirmed(1, 20, b.ctx_unsigned(0, 1) + b.ctx_characters(1, "pw"))),
    b.unicast(b.confirmed(1, 18, b.ctx_unsigned(0, 7) + b.ctx_unsigned(1, 1) + b.opening(2) + b.closing(2))),
    b.unicast(b.reject(1, 2), dnet=5, dadr=b"\x01", snet=7, sadr=b"\x02\x03", hop_count=9),
    b.forwarded(("10.0.0.9", 47808), b.unconfirmed(8)),
    b.bvll(0x0B, b.npdu(b"\x00\x05", network_message=0x01)),
    b.bvll(0x00, b"\x00\x00"),
    b.bvll(0x03, b.bip_address("10.0.0.1", 47808) + b"\xff" * 4),
    b.bvll(0x05, b"\x00\x3c"),
    *(datagram for datagram, _ in MALFORMED_CASES),
]


def check(datagrams: list[bytes]) -> None:
    messages = [decode(datagram) for datagram in datagrams]
    for message in messages:
        assert message.finding in BacnetFinding and message.finding != BacnetFinding.UNEXPECTED
        assert (message.status == ParseStatus.MALFORMED) == (message.finding != BacnetFinding.OK)
        assert (message.operation == Operation.MALFORMED) == (message.function == "")
        summary = message.summary()
        assert summary.quantity == len(message.targets) and len(summary.targets) <= 32
    batch = b.batch(datagrams)
    fast = extract(batch.buffer, batch.starts, batch.lengths, batch.from_server)
    exact = exact_columns(batch.buffer, batch.starts, batch.lengths, batch.from_server)
    assert fast.differences(exact) == []
    assert fast.summary.summaries() == [message.summary() for message in messages]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid datagram with a few bytes changed, inserted, removed, or cut short."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete" and data:
            del data[at]
        elif action == "cut":
            del data[at:]
    if draw(st.booleans()) and len(data) >= 4:  # keep the BVLC length right, to go deeper
        data[2:4] = len(data).to_bytes(2, "big")
    return bytes(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_random_bytes(datagrams: list[bytes]) -> None:
    check(datagrams)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=60).map(lambda tail: b"\x81\x0a" + (len(tail) + 4).to_bytes(2, "big") + tail))
)
def test_random_npdus_behind_a_sound_bvlc_header(datagrams: list[bytes]) -> None:
    check(datagrams)


@settings(max_examples=200, deadline=None)
@given(st.lists(mutated(), min_size=1, max_size=8))
def test_mutated_valid_datagrams(datagrams: list[bytes]) -> None:
    check(datagrams)


@st.composite
def common_layouts(draw: st.DrawFn) -> bytes:
    """The layouts the column extractor decodes itself, with random tag octets and contents:
    readProperty ACKs of one value, readProperty requests and I-Am."""
    head = b.ctx_object(0, draw(st.integers(0, 1023)), draw(st.integers(0, 4194303)))
    head += bytes([0x19, draw(st.integers(0, 255))])
    if draw(st.booleans()):
        head += bytes([draw(st.sampled_from([0x29, 0x2A, 0x39])), draw(st.integers(0, 255))])
    value = bytes([draw(st.integers(0, 255))]) + draw(st.binary(max_size=12))
    kind = draw(st.sampled_from(["ack", "request", "i_am"]))
    if kind == "ack":
        apdu = b.complex_ack(1, 12, head + b"\x3e" + value + b"\x3f")
    elif kind == "request":
        apdu = b.confirmed(1, 12, head + draw(st.binary(max_size=2)))
    else:
        octets = [draw(st.sampled_from([0x21, 0x22, 0x23, 0x24, 0x25, 0x91, 0x92])) for _ in range(3)]
        body = b.app_object(DEVICE, draw(st.integers(0, 4194303)))
        for octet in octets:
            body += bytes([octet]) + draw(st.binary(min_size=0, max_size=4))
        apdu = b.unconfirmed(0, body)
    return b.unicast(apdu)


@settings(max_examples=200, deadline=None)
@given(st.lists(common_layouts(), min_size=1, max_size=8))
def test_random_values_in_the_layouts_the_extractor_decodes(datagrams: list[bytes]) -> None:
    check(datagrams)


def test_the_valid_datagrams_are_valid() -> None:
    count = len(VALID) - len(MALFORMED_CASES)
    assert all(decode(datagram).finding == BacnetFinding.OK for datagram in VALID[:count])
    check(VALID)
