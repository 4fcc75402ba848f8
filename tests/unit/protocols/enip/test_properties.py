"""Property tests: random and mutated frames never raise, give only listed findings (never
`UNEXPECTED`), and the column extractor always equals the exact decoder."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwarden.protocols import enip
from plantwarden.protocols.common import Operation
from plantwarden.protocols.enip import EnipFinding

from . import builders as b
from .builders import both_paths

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONNECTION_PATH = b.port(1, 0) + b.path(0x02, 1)
VALID_CIP = [
    b.request(0x0E, b.path(0x01, 1, 7)),
    b.request(0x03, b.path(0x8B, 1), struct.pack("<HHH", 2, 1, 2)),
    b.request(0x04, b.path(0x8B, 1), struct.pack("<HH", 1, 6) + b"\1\2\3\4"),
    b.request(0x4C, b.symbol("Program:Main") + b.symbol("Tag") + b.logical(2, 3), b"\1\0"),
    b.request(0x07, b.path(0x8E, 1)),
    b.multiple(b.request(0x0E, b.path(1, 1, 1)), b.request(0x10, b.path(0xAC, 1, 5), b"\1\0")),
    b.unconnected_send(b.request(0x01, b.path(0xAC, 1)), b.port(1, 0)),
    b.forward_open(0x80001111, CONNECTION_PATH),
    b.forward_open(0x80001111, CONNECTION_PATH, large=True),
    b.forward_close(CONNECTION_PATH),
    b.request(0x50, b.path(0x37, 1), b"\0" * 6),
]
VALID_REPLIES = [
    b.reply(0x0E, data=b"\1\0"),
    b.reply(0x10, 0x05, (0x0102,)),
    b.multiple(b.reply(0x0E, data=b"\1"), b.reply(0x10, 0x0E), is_reply=True),
    b.forward_open_reply(0x2222, 0x80001111),
    b.forward_open_reply(0, 0, status=1),
]
VALID_REQUESTS = [
    b.register_session(),
    b.encapsulation(0x63),
    b.encapsulation(0x04),
    b.encapsulation(0x00, b"\0\0"),
    *(b.send_rr_data(cip) for cip in VALID_CIP),
    *(b.send_unit_data(0x1234, 9, cip) for cip in VALID_CIP),
]
VALID_RESPONSES = [
    b.register_session(),
    b.list_identity_reply(b.identity_item()),
    b.list_services_reply(),
    b.encapsulation(0x6F, status=0x65),
    *(b.send_rr_data(cip) for cip in VALID_REPLIES),
    *(b.send_unit_data(0x2222, 9, cip) for cip in VALID_REPLIES),
]
COMMANDS = st.one_of(
    st.sampled_from([0x00, 0x04, 0x63, 0x64, 0x65, 0x66, 0x6F, 0x70, 0x72, 0x73, 0x01]),
    st.integers(0, 0xFFFF),
)


def check(segments: list[tuple[bytes, bool, int]]) -> None:
    """Both paths agree; every finding is listed and none is UNEXPECTED; the exact decoders give
    the same rows segment by segment."""
    columns = both_paths(segments)
    findings = columns.summary.finding.tolist()
    assert all(finding in EnipFinding.__members__.values() for finding in findings)
    assert EnipFinding.UNEXPECTED not in findings
    assert all(
        operation in Operation.__members__.values() for operation in columns.summary.operation.tolist()
    )
    for payload, sent, kind in segments:
        decoder = (enip.decode_payload, enip.decode_datagram, enip.decode_io_datagram)[kind]
        messages, rest = decoder(payload, sent)
        assert all(message.parse_status()[1] != EnipFinding.UNEXPECTED for message in messages)
        assert kind == 0 or rest == b""


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, bool]:
    """Valid PDUs of one direction laid end to end, then bytes overwritten, cut or inserted."""
    sent = draw(st.booleans())
    frames = VALID_RESPONSES if sent else VALID_REQUESTS
    payload = bytearray(b"".join(draw(st.lists(st.sampled_from(frames), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(payload)))
        action = draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "set" and at < len(payload):
            payload[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del payload[at : at + draw(st.integers(1, 8))]
        else:
            payload[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(payload), sent


@st.composite
def simple_cip(draw: st.DrawFn) -> bytes:
    """A CIP message that is often in the extractor's vectorised layout, often nearly."""
    service = draw(st.integers(0, 255))
    segments = [
        0x20,
        draw(st.sampled_from([1, 2, 6, 0x37, 0x6B, 0x8E, 0xA1, 0xAC])),
        0x24,
        draw(st.integers(0, 255)),
    ]
    if draw(st.booleans()):
        segments += [draw(st.sampled_from([0x30, 0x28, 0x31])), draw(st.integers(0, 255))]
    words = len(segments) // 2 + draw(st.sampled_from([0, 0, 0, 1, -1]))
    reply = bytes((service | 0x80, 0, draw(st.integers(0, 255)), draw(st.sampled_from([0, 0, 1, 9]))))
    request = bytes((service, max(words, 0), *segments))
    return draw(st.sampled_from([request, reply])) + draw(st.binary(max_size=8))


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    """A sound header (length matching) around a command and data that is often nearly right."""
    command = draw(COMMANDS)
    body = draw(
        st.one_of(
            st.binary(max_size=60),
            st.builds(
                lambda cip: b"\0\0\0\0\x0a\0\x02\0\0\0\0\0\xb2\0" + struct.pack("<H", len(cip)) + cip,
                st.one_of(st.binary(max_size=40), st.sampled_from(VALID_CIP + VALID_REPLIES), simple_cip()),
            ),
            st.builds(
                lambda cip, connection: (
                    b"\0\0\0\0\0\0\x02\0\xa1\0\x04\0"
                    + struct.pack("<IHHH", connection, 0xB1, len(cip) + 2, 7)
                    + cip
                ),
                simple_cip(),
                st.integers(0, 0xFFFFFFFF),
            ),
        )
    )
    header = struct.pack("<HHIIQI", command, len(body), 1, draw(st.sampled_from([0, 1, 0x65])), 0, 0)
    return header + body


@SETTINGS
@given(st.lists(st.tuples(st.binary(max_size=80), st.booleans(), st.integers(0, 2)), max_size=6))
def test_random_bytes_never_break_either_path(segments: list[tuple[bytes, bool, int]]) -> None:
    check(segments)


@SETTINGS
@given(st.lists(mutated(), min_size=1, max_size=4), st.integers(0, 1))
def test_mutated_frames_never_break_either_path(frames: list[tuple[bytes, bool]], kind: int) -> None:
    check([(payload, sent, kind) for payload, sent in frames])


@SETTINGS
@given(st.lists(st.tuples(structured(), st.booleans()), min_size=1, max_size=4))
def test_structured_frames_never_break_either_path(frames: list[tuple[bytes, bool]]) -> None:
    check([(payload, sent, 0) for payload, sent in frames])


@SETTINGS
@given(st.binary(max_size=60), st.booleans())
def test_random_cip_inside_a_sound_frame_decodes_without_surprise(cip: bytes, sent: bool) -> None:
    pdu = b.send_rr_data(cip)
    messages, rest = enip.decode_payload(pdu, sent)
    assert rest == b"" and len(messages) == 1
    assert messages[0].parse_status()[1] != EnipFinding.UNEXPECTED
    check([(pdu, sent, 0)])


def test_the_valid_frames_are_valid() -> None:
    for frames, sent in ((VALID_REQUESTS, False), (VALID_RESPONSES, True)):
        for frame in frames:
            messages, rest = enip.decode_payload(frame, sent)
            assert rest == b"" and len(messages) == 1
            assert messages[0].parse_status()[1] == EnipFinding.OK, frame.hex()
