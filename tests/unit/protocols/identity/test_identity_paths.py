"""Both paths of the identity decoders agree (fast `extract_identity`, exact frame by frame), on
mixed batches and on random and mutated frames of every kind; nothing escapes as an exception and
every finding is a listed one. Also the declarations: modules, findings, the identity schema.

`both_paths` is the helper the protocol tests use to decode frames on both paths at once.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.protocols.common import ParseStatus, Support
from plantwarden.protocols.identity import (
    MODULES,
    IdentityColumns,
    IdentityFinding,
    Kind,
    decode_identity,
    decode_identity_frames,
    extract_identity,
)
from plantwarden.protocols.identity.columns import IDENTITY_NAMES
from plantwarden.protocols.identity.extract import Message
from plantwarden.protocols.identity.fields import Identity

ARP_REQUEST = bytes.fromhex("0001080006040001001b1b0102030a000005000000000000" + "0a000001")
LLDP_SMALL = bytes.fromhex("020704001b1b010203040907706f72742d303031060200780a03706c630000")
DCP_SET_IP = bytes.fromhex("fefd040001000001000000120102000e0001c0a8000affffff00c0a80001")
DHCP_DISCOVER = (
    bytes.fromhex("010106000000123400000000" + "00" * 16 + "001b1b010203" + "00" * 10)
    + bytes(192)
    + bytes.fromhex("63825363" + "350101" + "0c05706c632d31" + "ff")
)
SAMPLES = {Kind.ARP: ARP_REQUEST, Kind.LLDP: LLDP_SMALL, Kind.DCP: DCP_SET_IP, Kind.DHCP: DHCP_DISCOVER}


def both_paths(kind: Kind, frames: Sequence[bytes], gap: int = 3) -> tuple[list[Message], IdentityColumns]:
    """The exact messages of `frames` (all of `kind`), after checking that the fast path gives the
    same columns with the frames laid in one buffer with `gap` bytes of noise between them."""
    return both_paths_mixed([(kind, frame) for frame in frames], gap)


def both_paths_mixed(
    frames: Sequence[tuple[Kind, bytes]], gap: int = 3
) -> tuple[list[Message], IdentityColumns]:
    chunks, starts, position = [], [], 0
    for _, frame in frames:
        chunks += [b"\xa5" * gap, frame]
        starts.append(position + gap)
        position += gap + len(frame)
    buffer = np.frombuffer(b"".join(chunks) + b"\xa5" * gap, dtype=np.uint8)
    starts_array = np.array(starts, dtype=np.int64)
    lengths = np.array([len(frame) for _, frame in frames], dtype=np.int64)
    kinds = np.array([kind for kind, _ in frames], dtype=np.uint8)
    fast = extract_identity(buffer, starts_array, lengths, kinds)
    exact = decode_identity_frames(buffer, starts_array, lengths, kinds)
    assert fast.differences(exact) == []
    messages = [decode_identity(kind, frame) for kind, frame in frames]
    assert fast.summary.summaries() == [message.summary() for message in messages]
    assert fast.identities() == [message.identity() for message in messages]
    for message in messages:
        summary = message.summary()
        assert summary.finding != IdentityFinding.UNEXPECTED
        assert (summary.status == ParseStatus.MALFORMED) == (summary.finding != IdentityFinding.OK)
    return messages, fast


def test_the_modules_are_declared() -> None:
    assert [module.name for module in MODULES] == ["arp", "dhcp", "lldp", "pn_dcp"]
    assert MODULES[0].support == Support.COMPLETE
    assert {module.support for module in MODULES[1:]} == {Support.PARTIAL}
    assert MODULES[0].ethertypes == (0x0806, 0x8035)
    assert MODULES[1].udp_ports == (67, 68)
    assert MODULES[2].ethertypes == (0x88CC,) and MODULES[3].ethertypes == (0x8892,)
    assert all(module.references for module in MODULES)


def test_the_findings_are_a_closed_list_with_unexpected_last() -> None:
    assert int(IdentityFinding.OK) == 0
    assert list(IdentityFinding)[-1] is IdentityFinding.UNEXPECTED
    assert [int(f) for f in IdentityFinding] == list(range(len(IdentityFinding)))


def test_the_schema_is_the_identity() -> None:
    assert Identity._fields == IDENTITY_NAMES


def test_a_mixed_batch_keeps_the_input_order() -> None:
    frames = [(Kind.DHCP, DHCP_DISCOVER), (Kind.ARP, ARP_REQUEST), (Kind.DCP, DCP_SET_IP)]
    frames += [(Kind.LLDP, LLDP_SMALL), (Kind.ARP, ARP_REQUEST[:5])]
    _, columns = both_paths_mixed(frames)
    assert columns.row.tolist() == [0, 1, 2, 3, 4]
    assert columns.kind.tolist() == [Kind.DHCP, Kind.ARP, Kind.DCP, Kind.LLDP, Kind.ARP]
    assert columns.summary.function.tolist() == ["discover", "request", "set", "advertise", ""]
    assert columns.name.tolist() == ["plc-1", "", "", "plc", ""]
    assert columns.sets_ip.tolist() == [False, False, True, False, False]
    assert columns.summary.finding.tolist()[-1] == IdentityFinding.TRUNCATED


def test_an_empty_batch_and_an_unknown_kind() -> None:
    empty = np.zeros(0, dtype=np.int64)
    columns = extract_identity(np.zeros(0, np.uint8), empty, empty, np.zeros(0, np.uint8))
    assert len(columns) == 0 and len(columns.summary) == 0
    with pytest.raises(ValueError, match=r"unknown kinds \[9\]"):
        extract_identity(
            np.zeros(4, np.uint8), np.zeros(1, np.int64), np.ones(1, np.int64), np.full(1, 9, np.uint8)
        )


kinds = st.sampled_from(list(Kind))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(kinds, st.binary(max_size=300)), min_size=1, max_size=8))
def test_random_bytes_agree_on_both_paths(frames: list[tuple[Kind, bytes]]) -> None:
    both_paths_mixed(frames)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Kind, bytes]:
    kind = draw(kinds)
    frame = bytearray(SAMPLES[kind])
    for _ in range(draw(st.integers(1, 6))):
        index = draw(st.integers(0, len(frame) - 1))
        frame[index] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(frame)))
    tail = draw(st.binary(max_size=40))
    return kind, bytes(frame[:cut]) + tail if draw(st.booleans()) else bytes(frame) + tail


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack(">H", kind << 9 | len(value)) + value


@st.composite
def lldp_frames(draw: st.DrawFn) -> tuple[Kind, bytes]:
    """LLDPDUs framed right (mandatory TLVs first, most of the time), with random TLVs after."""
    values = st.binary(max_size=40)
    chassis = tlv(1, bytes([draw(st.integers(1, 7))]) + draw(values))
    port = tlv(2, bytes([draw(st.integers(1, 7))]) + draw(values))
    ttl = tlv(
        3, draw(st.binary(min_size=2, max_size=2) if draw(st.integers(0, 4)) else st.binary(max_size=3))
    )
    head = chassis + port + ttl if draw(st.integers(0, 5)) else port + chassis + ttl
    kinds_after = st.sampled_from([0, 1, 3, 4, 5, 6, 7, 8, 9, 127])
    body = b"".join(tlv(draw(kinds_after), draw(values)) for _ in range(draw(st.integers(0, 6))))
    management = bytes([5, 1, 10, 0, 0, 1, 2, 0, 0, 0, 1, 0])
    profinet = b"\x00\x0e\xcf" + bytes([draw(st.integers(0, 9))]) + draw(values)
    extra = tlv(8, management) + tlv(127, profinet) if draw(st.booleans()) else b""
    return Kind.LLDP, head + extra + body + draw(st.sampled_from([b"", b"\x00\x00"]))


@st.composite
def dcp_frames(draw: st.DrawFn) -> tuple[Kind, bytes]:
    """DCP frames with a right header (most of the time) and random blocks of known kinds."""
    valid = [(0xFEFE, 5, 0), (0xFEFF, 5, 1), (0xFEFD, 3, 0), (0xFEFD, 3, 1), (0xFEFD, 4, 0), (0xFEFD, 4, 1)]
    valid += [(0xFEFD, 4, 5), (0xFEFC, 6, 0)]
    random = st.tuples(
        st.sampled_from([0xFEFC, 0xFEFD, 0xFEFE, 0xFEFF]), st.integers(0, 8), st.integers(0, 6)
    )
    frame_id, service, service_type = draw(st.sampled_from(valid) if draw(st.integers(0, 4)) else random)
    pairs = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (2, 6), (2, 7), (2, 8)]
    pairs += [(3, 61), (5, 1), (5, 2), (5, 3), (5, 4), (5, 5), (5, 6), (6, 1), (255, 255), (128, 1)]
    body = b""
    for _ in range(draw(st.integers(0, 5))):
        option, suboption = draw(st.sampled_from(pairs))
        value = draw(st.binary(max_size=32))
        body += struct.pack(">BBH", option, suboption, len(value)) + value + b"\x00" * (len(value) % 2)
    length = len(body) if draw(st.integers(0, 9)) else draw(st.integers(0, 0xFFFF))
    header = struct.pack(
        ">HBBIHH", frame_id, service, service_type, draw(st.integers(0, 2**32 - 1)), 1, length
    )
    return Kind.DCP, header + body + draw(st.binary(max_size=8))


@st.composite
def dhcp_frames(draw: st.DrawFn) -> tuple[Kind, bytes]:
    """BOOTP headers with the cookie and random options of the decoded codes (and others)."""
    header = bytearray(DHCP_DISCOVER[:240])
    header[0] = draw(st.sampled_from([1, 2, 2, 3]))
    codes = st.sampled_from([0, 1, 3, 6, 12, 43, 50, 51, 52, 53, 54, 55, 60, 61, 81, 99, 255])
    options = b""
    for _ in range(draw(st.integers(0, 8))):
        code = draw(codes)
        options += bytes([code]) if code in (0, 255) else bytes([code]) + _value(draw, code)
    if draw(st.booleans()):
        header[108:236] = (b"\x0c\x03abc\xff" + bytes(128))[:128]
        header[44:108] = (b"\x3c\x02xy" + bytes(64))[:64]
    return Kind.DHCP, bytes(header) + options + draw(st.sampled_from([b"\xff", b"", b"\x35"]))


def _value(draw: st.DrawFn, code: int) -> bytes:
    if code == 52:
        value = bytes([draw(st.integers(0, 4))])
    elif code == 81:
        value = bytes([draw(st.sampled_from([0, 1, 4, 5])), 0, 0]) + draw(st.binary(max_size=20))
    elif code == 53:
        value = bytes([draw(st.integers(0, 20))])
    else:
        value = draw(st.binary(max_size=20))
    return bytes([len(value)]) + value


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(lldp_frames(), dcp_frames(), dhcp_frames()), min_size=1, max_size=8))
def test_structured_frames_agree_on_both_paths(frames: list[tuple[Kind, bytes]]) -> None:
    messages, columns = both_paths_mixed(frames)
    assert len(columns) == len(frames)
    for message in messages:
        assert message.summary().finding in set(IdentityFinding)


@settings(max_examples=200, deadline=None)
@given(st.lists(mutated(), min_size=1, max_size=8))
def test_mutated_frames_agree_on_both_paths(frames: list[tuple[Kind, bytes]]) -> None:
    messages, _ = both_paths_mixed(frames)
    for message in messages:
        assert message.summary().finding in set(IdentityFinding)
