"""The OPC UA decoders on messages built from the specification (`builders`), on both paths."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.protocols.common import Operation, ParseStatus
from plantwarden.protocols.opcua import (
    MODULE,
    OpcuaFinding,
    OpcuaMessage,
    decode_payload,
    decode_segments,
    extract,
)
from tests.unit.protocols.opcua import builders as b


def both(segments: list[bytes], from_server: list[bool] | None = None) -> list[list[OpcuaMessage]]:
    """Each segment's messages (exact path), after checking that the fast path gives the same."""
    server = np.array(from_server if from_server is not None else [False] * len(segments), dtype=np.bool_)
    lengths = np.array([len(s) for s in segments], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    buffer = np.frombuffer(b"".join(segments), dtype=np.uint8)
    fast, exact = extract(buffer, starts, lengths, server), decode_segments(buffer, starts, lengths, server)
    assert fast.differences(exact) == []
    found = [decode_payload(s, bool(f))[0] for s, f in zip(segments, server.tolist(), strict=True)]
    assert fast.summary.summaries() == [m.summary() for ms in found for m in ms]
    return found


def one(data: bytes, from_server: bool = False) -> OpcuaMessage:
    [[message]] = both([data], [from_server])
    return message


def test_the_module_declares_itself() -> None:
    assert MODULE.name == "opcua" and MODULE.tcp_ports == (4840,)


def test_hello_and_acknowledge() -> None:
    hel = one(b.hello("opc.tcp://plc:4840", 0, (8192, 4096, 1000, 5)))
    assert (hel.message_type, chr(hel.chunk_type), hel.message_size) == (1, "F", 32 + 18)
    assert (hel.receive_buffer_size, hel.send_buffer_size, hel.max_message_size, hel.max_chunk_count) == (
        8192,
        4096,
        1000,
        5,
    )
    assert hel.endpoint_url == "opc.tcp://plc:4840" and hel.status == ParseStatus.OK
    summary = hel.summary()
    assert (summary.function, summary.operation, summary.targets, summary.quantity) == (
        "hello",
        Operation.OTHER,
        ("opc.tcp://plc:4840",),
        1,
    )
    ack = one(b.acknowledge(0, (65536, 65536, 16777216, 5000)), True)
    assert (ack.message_type, ack.receive_buffer_size, ack.max_chunk_count) == (2, 65536, 5000)
    assert ack.summary().function == "acknowledge" and ack.summary().is_response


def test_error_and_reverse_hello() -> None:
    err = one(b.error(0x80020000, "internal"), True)
    assert (err.error_code, err.reason) == (0x80020000, "internal")
    assert err.summary().result == 0x8002
    rhe = one(b.reverse_hello("urn:server", "opc.tcp://server:4840"), True)
    assert (rhe.server_uri, rhe.endpoint_url, rhe.summary().function) == (
        "urn:server",
        "opc.tcp://server:4840",
        "reverse_hello",
    )


def test_an_unencrypted_open_secure_channel_shows_its_mode_and_request_type() -> None:
    request = one(b.open_request(channel=0, mode=1, request_type=0, sequence=51, request=1))
    assert (request.security_policy, request.security_mode, request.request_type) == (b.NONE_POLICY, 1, 0)
    assert (request.sequence_number, request.request_id, request.service_id) == (51, 1, 446)
    assert request.summary().function == "open_secure_channel_request"
    renew = one(b.open_request(channel=9, mode=3, request_type=1))
    assert (renew.secure_channel_id, renew.security_mode, renew.request_type) == (9, 3, 1)
    response = one(b.open_response(channel=7, result=0x80340000), True)
    assert (response.secure_channel_id, response.service_id, response.service_result) == (7, 449, 0x80340000)
    assert response.summary().result == 0x8034 and response.status == ParseStatus.OK


def test_an_encrypted_open_secure_channel_shows_its_policy_only() -> None:
    message = one(b.encrypted_open(channel=0, policy=b.BASIC256))
    assert message.security_policy == b.BASIC256
    assert (message.security_mode, message.request_type, message.service_id) == (-1, -1, -1)
    assert message.status == ParseStatus.PARTIAL and message.finding == OpcuaFinding.OK
    assert message.summary().function == "open_secure_channel"


def test_services_are_named_and_classed() -> None:
    expected = {
        631: ("read_request", Operation.READ),
        673: ("write_request", Operation.WRITE),
        712: ("call_request", Operation.CONTROL),
        527: ("browse_request", Operation.OTHER),
        428: ("get_endpoints_request", Operation.IDENTIFY),
        422: ("find_servers_request", Operation.IDENTIFY),
        461: ("create_session_request", Operation.OTHER),
        467: ("activate_session_request", Operation.OTHER),
        554: ("translate_browse_paths_to_node_ids_request", Operation.OTHER),
        826: ("publish_request", Operation.OTHER),
    }
    for service, (name, operation) in expected.items():
        message = one(b.service_request(service, channel=7, token=3, sequence=40, request=41))
        assert (message.secure_channel_id, message.token_id, message.sequence_number, message.request_id) == (
            7,
            3,
            40,
            41,
        )
        summary = message.summary()
        assert (summary.function_code, summary.function, summary.operation) == (service, name, operation)
        assert summary.result == -1 and summary.status == ParseStatus.OK


def test_a_response_carries_its_service_result() -> None:
    good, bad = one(b.service_response(634), True), one(b.service_response(676, 0x803B0000), True)
    assert (good.service_result, good.summary().result) == (0, 0)
    assert (bad.service_result, bad.summary().result, bad.summary().function) == (
        0x803B0000,
        0x803B,
        "write_response",
    )
    fault = one(b.service_response(397, 0x80280000), True)
    assert (fault.summary().function, fault.summary().result) == ("service_fault", 0x8028)


def test_the_numeric_node_id_form_reads_too() -> None:
    body = bytes([0x02]) + struct.pack("<HI", 0, 631) + b.request_header()
    message = one(b.symmetric("MSG", 1, 1, 5, 5, body))
    assert message.service_id == 631 and message.summary().operation == Operation.READ


def test_an_encrypted_or_continued_body_is_partial() -> None:
    ciphertext = bytes((i * 91 + 7) % 256 for i in range(120))
    message = one(b.symmetric("MSG", 5, 2, 0, 0, b"\x11" + ciphertext))
    assert (message.secure_channel_id, message.token_id, message.body_readable) == (5, 2, False)
    assert (message.sequence_number, message.service_id, message.status) == (-1, -1, ParseStatus.PARTIAL)
    assert message.summary().function == "message" and message.summary().finding == 0
    other_namespace = one(b.symmetric("MSG", 5, 2, 0, 0, b"\x01\x02\x77\x02" + ciphertext))
    assert other_namespace.status == ParseStatus.PARTIAL


def test_chunks_and_abort() -> None:
    first = one(b.symmetric("MSG", 1, 1, 10, 3, b.numeric_node(673) + b.request_header() + bytes(64), "C"))
    assert (chr(first.chunk_type), first.service_id) == ("C", 673)
    abort = one(b.symmetric("MSG", 1, 1, 11, 3, b.uint32(0x80AC0000) + b.string("too large"), "A"))
    assert (abort.error_code, abort.summary().result, abort.status) == (0x80AC0000, 0x80AC, ParseStatus.OK)


def test_close_secure_channel() -> None:
    message = one(b.symmetric("CLO", 4, 1, 9, 9, b.numeric_node(452) + b.request_header()))
    assert (message.message_type, message.service_id, message.summary().function) == (
        7,
        452,
        "close_secure_channel_request",
    )


def test_several_messages_in_a_segment_and_one_split_over_segments() -> None:
    read, write = b.service_request(631, sequence=3, request=3), b.service_request(673, sequence=4, request=4)
    [messages] = both([b.hello() + read + write])
    assert [m.service_id for m in messages] == [-1, 631, 673]
    assert [m.offset for m in messages] == [0, len(b.hello()), len(b.hello()) + len(read)]
    whole = read + write
    found, rest = decode_payload(whole[:30], False)
    assert found == [] and rest == whole[:30]
    found, rest = decode_payload(rest + whole[30:], False)
    assert [m.service_id for m in found] == [631, 673] and rest == b""
    found, rest = decode_payload(whole[:5], False)
    assert (found, rest) == ([], whole[:5])
    both([whole[:30], whole[30:50], whole[:5]])


def test_malformed_messages() -> None:
    def finding(data: bytes) -> OpcuaFinding:
        return one(data).finding

    lost = one(b"XYZF" + b.uint32(12) + bytes(20))
    assert (lost.finding, lost.summary().operation, lost.message_size) == (
        OpcuaFinding.UNKNOWN_MESSAGE_TYPE,
        Operation.MALFORMED,
        -1,
    )
    [messages] = both([b"HELF" + b.uint32(4) + b.hello()])
    assert [m.finding for m in messages] == [OpcuaFinding.BAD_MESSAGE_SIZE]
    assert finding(b.message("HEL", bytes(20) + b.string("x"), "C")) == OpcuaFinding.BAD_CHUNK_TYPE
    assert finding(b.message("MSG", bytes(24), "X")) == OpcuaFinding.BAD_CHUNK_TYPE
    assert finding(b.message("HEL", bytes(12))) == OpcuaFinding.TRUNCATED
    assert finding(b.message("HEL", bytes(20) + struct.pack("<i", -2))) == OpcuaFinding.BAD_STRING
    assert finding(b.acknowledge() + b"") == OpcuaFinding.OK
    assert finding(b.message("ACK", bytes(21))) == OpcuaFinding.TRAILING_BYTES
    assert finding(b.message("MSG", bytes(10))) == OpcuaFinding.TRUNCATED
    assert finding(b.open_request(mode=0)) == OpcuaFinding.BAD_SECURITY_MODE
    assert finding(b.open_request(request_type=2)) == OpcuaFinding.BAD_REQUEST_TYPE
    assert finding(b.service_request(446)) == OpcuaFinding.WRONG_SERVICE
    assert (
        finding(b.symmetric("CLO", 1, 1, 1, 1, b.numeric_node(631) + b.request_header()))
        == OpcuaFinding.WRONG_SERVICE
    )
    truncated = b.symmetric("MSG", 1, 1, 1, 1, b.numeric_node(634) + bytes(6))
    assert finding(truncated) == OpcuaFinding.TRUNCATED
    short = one(b"MSGF" + b.uint32(4) + b.service_request(631)[8:] + bytes(20))  # the rest is one row
    assert (short.finding, short.message_size, short.service_id) == (OpcuaFinding.BAD_MESSAGE_SIZE, 4, -1)
    unknown = b.string(b.NONE_POLICY) + b.bytestring(None) * 2 + b.uint32(1) * 2 + b.numeric_node(193)
    stray = one(b.message("OPN", b.uint32(0) + unknown))
    assert (stray.finding, stray.service_id, stray.summary().function) == (
        OpcuaFinding.WRONG_SERVICE,
        -1,
        "open_secure_channel",
    )
    for malformed in (lost, one(b.open_request(mode=7))):
        assert malformed.status == ParseStatus.MALFORMED


VALID = [
    b.hello(),
    b.acknowledge(),
    b.error(0x80010000),
    b.reverse_hello("urn:a", "opc.tcp://a"),
    b.open_request(),
    b.open_response(),
    b.encrypted_open(),
    b.service_request(631),
    b.service_request(673),
    b.service_response(634),
    b.service_response(397, 0x80000000),
    b.symmetric("MSG", 1, 1, 1, 1, b.uint32(0x80AC0000) + b.string("x"), "A"),
    b.symmetric("CLO", 1, 1, 1, 1, b.numeric_node(452) + b.request_header()),
]


def _check(segments: list[bytes], from_server: list[bool]) -> None:
    for messages in both(segments, from_server):
        for message in messages:
            assert message.finding != OpcuaFinding.UNEXPECTED
            assert message.finding in set(OpcuaFinding)
            assert (message.status == ParseStatus.MALFORMED) == (message.finding != OpcuaFinding.OK)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80), min_size=1, max_size=6), st.data())
def test_random_bytes_never_escape(segments: list[bytes], data: st.DataObject) -> None:
    _check(segments, data.draw(st.lists(st.booleans(), min_size=len(segments), max_size=len(segments))))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(VALID), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 256)), max_size=4),
    st.integers(0, 400),
    st.booleans(),
)
def test_mutated_messages_never_escape(
    messages: list[bytes], mutations: list[tuple[int, int]], cut: int, from_server: bool
) -> None:
    data = bytearray(b"".join(messages))
    for position, value in mutations:  # a byte replaced, or deleted (256)
        if position < len(data) and value < 256:
            data[position] = value
        elif position < len(data):
            del data[position]
    cut = min(cut, len(data))
    _check([bytes(data[:cut]), bytes(data[cut:]), bytes(data)], [from_server] * 3)
