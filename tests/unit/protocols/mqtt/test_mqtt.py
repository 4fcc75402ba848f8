"""The MQTT decoders on packets from scapy's encoder (MQTT 3.1, 3.1.1) and from MQTT 5 builders
written from the standard (`builders`), on both paths."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.protocols.common import Operation, ParseStatus
from plantwarden.protocols.mqtt import (
    MODULE,
    MqttFinding,
    MqttMessage,
    decode_payload,
    decode_segments,
    extract,
)
from tests.unit.protocols.mqtt import builders as b


def both(segments: list[bytes], from_server: list[bool] | None = None) -> list[list[MqttMessage]]:
    """Each segment's packets (exact path), after checking that the fast path gives the same."""
    server = np.array(from_server if from_server is not None else [False] * len(segments), dtype=np.bool_)
    lengths = np.array([len(s) for s in segments], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    buffer = np.frombuffer(b"".join(segments), dtype=np.uint8)
    fast, exact = extract(buffer, starts, lengths, server), decode_segments(buffer, starts, lengths, server)
    assert fast.differences(exact) == []
    found = [decode_payload(s, bool(f))[0] for s, f in zip(segments, server.tolist(), strict=True)]
    assert fast.summary.summaries() == [m.summary() for ms in found for m in ms]
    return found


def one(data: bytes, from_server: bool = False) -> MqttMessage:
    [[message]] = both([data], [from_server])
    return message


def test_the_module_declares_itself() -> None:
    assert MODULE.name == "mqtt" and MODULE.tcp_ports == (1883,)


def test_connect_with_credentials_keeps_the_username_and_only_the_password_length() -> None:
    message = one(b.connect(b"plc-7", 4, username=b"operator", password=b"s3cret!", keep_alive=30))
    assert (message.protocol_name, message.protocol_level, message.client_id) == ("MQTT", 4, "plc-7")
    assert (message.has_username, message.username, message.has_password, message.password_length) == (
        True,
        "operator",
        True,
        7,
    )
    assert message.credentials_in_clear and message.keep_alive == 30 and message.clean_session
    assert "s3cret!" not in repr(message)
    summary = message.summary()
    assert (summary.function_code, summary.function, summary.operation, summary.status) == (
        1,
        "connect",
        Operation.OTHER,
        ParseStatus.OK,
    )


def test_connect_without_credentials_and_mqtt_3_1_with_a_will() -> None:
    anonymous = one(b.connect(b"sensor", 4))
    assert not anonymous.credentials_in_clear and anonymous.username == "" and anonymous.password_length == -1
    old = one(b.connect(b"old", 3, will=(b"plant/status", b"offline")))
    assert (old.protocol_name, old.protocol_level, old.will_flag, old.will_topic) == (
        "MQIsdp",
        3,
        True,
        "plant/status",
    )


def test_a_connect_record_carries_its_connect_flags_as_address() -> None:
    from plantwarden.sim.mqtt import connect as simulator_connect

    flags = {
        "user and password": one(b.connect(b"c", 4, username=b"operator", password=b"pw")),
        "user only": one(b.connect(b"c", 4, username=b"operator")),
        "anonymous": one(b.connect(b"c", 4)),
        "will": one(b.connect(b"c", 3, will=(b"plant/status", b"offline"))),
        "MQTT 5 password only": one(b.connect5(b"c", password=b"token")),
        "simulator telemetry": one(simulator_connect("tank-1")),
    }
    found = {
        name: (m.connect_flags, m.summary().address, m.credentials_in_clear) for name, m in flags.items()
    }
    assert found == {
        "user and password": (0xC2, 0xC2, True),
        "user only": (0x82, 0x82, True),
        "anonymous": (0x02, 0x02, False),
        "will": (0x06, 0x06, False),
        "MQTT 5 password only": (0x42, 0x42, True),
        "simulator telemetry": (0x02, 0x02, False),
    }
    for message in flags.values():
        assert (message.summary().address >= 0x40) == message.credentials_in_clear


def test_only_a_connect_has_an_address() -> None:
    client = b.publish(b"plant/t", qos=1, packet_id=7) + b.subscribe(1, [(b"a", 0)]) + b.simple(12)
    broker = b.connack(0) + b.connack5() + b.simple(13)
    found = both([client, broker], [False, True])
    assert [m.summary().address for ms in found for m in ms] == [-1] * 6


def test_connack_return_codes() -> None:
    accepted, refused = one(b.connack(0, 1), True), one(b.connack(5), True)
    assert (accepted.return_code, accepted.session_present, accepted.summary().result) == (0, True, 0)
    assert (refused.return_code, refused.summary().result, refused.summary().is_response) == (5, 5, True)


def test_publish_topic_qos_and_packet_id() -> None:
    message = one(b.publish(b"plant/line1/setpoint", b"42", qos=1, packet_id=77, retain=1))
    assert (message.topics, message.qos, message.packet_id, message.retain) == (
        ("plant/line1/setpoint",),
        1,
        77,
        True,
    )
    summary = message.summary()
    assert (summary.operation, summary.targets, summary.quantity) == (
        Operation.WRITE,
        ("plant/line1/setpoint",),
        1,
    )
    delivered = one(b.publish(b"plant/line1/temp"), True)
    assert (
        delivered.qos == 0 and delivered.packet_id == -1 and delivered.summary().operation == Operation.OTHER
    )


def test_acknowledgements() -> None:
    for kind, name in [(4, "puback"), (5, "pubrec"), (6, "pubrel"), (7, "pubcomp")]:
        message = one(b.ack(kind, 300 + kind))
        assert (message.packet_id, message.summary().function, message.finding) == (
            300 + kind,
            name,
            MqttFinding.OK,
        )


def test_subscribe_and_unsubscribe() -> None:
    message = one(b.subscribe(9, [(b"plant/+/temp", 1), (b"alarms/#", 2)]))
    assert (message.packet_id, message.topics, message.requested_qos) == (
        9,
        ("plant/+/temp", "alarms/#"),
        (1, 2),
    )
    summary = message.summary()
    assert (summary.operation, summary.quantity, summary.targets) == (
        Operation.READ,
        2,
        ("plant/+/temp", "alarms/#"),
    )
    suback = one(b.suback(9, [1, 0x80]), True)
    assert (suback.packet_id, suback.summary().result) == (9, 0x80)
    assert one(b.suback(9, [0, 2]), True).summary().result == 0
    unsubscribe = one(b.unsubscribe(10, [b"alarms/#"]))
    assert (unsubscribe.topics, unsubscribe.summary().operation) == (("alarms/#",), Operation.OTHER)
    assert one(b.unsuback(10), True).packet_id == 10


def test_ping_and_disconnect() -> None:
    names = [one(b.simple(kind)).summary().function for kind in (12, 13, 14)]
    assert names == ["pingreq", "pingresp", "disconnect"]


def test_mqtt_5_packets() -> None:
    connect = one(b.connect5(b"edge-1", b"svc", b"pw"))
    assert (connect.protocol_level, connect.client_id, connect.username, connect.password_length) == (
        5,
        "edge-1",
        "svc",
        2,
    )
    assert one(b.connack5(0x87), True).return_code == 0x87
    publish = one(b.publish5(b"cmd/valve", 2, 12))
    assert (publish.topics, publish.qos, publish.packet_id) == (("cmd/valve",), 2, 12)
    assert one(b.puback5(12, 0x10), True).return_code == 0x10
    subscribe = one(b.subscribe5(4, [(b"a/b", 0x01), (b"c", 0x22)]))
    assert (subscribe.topics, subscribe.requested_qos) == (("a/b", "c"), (1, 2))
    with_properties = one(b.subscribe5(5, [(b"x/y", 0)], b"\x0b\x07", b.USER_PROPERTY))
    assert with_properties.topics == ("x/y",) and with_properties.finding == MqttFinding.OK
    assert one(b.suback5(4, [1, 0x97]), True).summary().result == 0x97
    assert one(b.unsubscribe5(6, [b"a/b", b"c"])).topics == ("a/b", "c")
    assert one(b.unsuback5(6, [0, 0x11]), True).summary().result == 0
    assert one(b.disconnect5(0x8E)).return_code == 0x8E


def test_several_packets_in_a_segment_and_one_split_over_segments() -> None:
    big = b.publish(b"plant/blob", bytes(300), qos=1, packet_id=2)
    stream = b.connect(b"c") + b.subscribe(1, [(b"a", 0)]) + big + b.simple(12)
    [messages] = both([stream])
    assert [m.packet_type for m in messages] == [1, 8, 3, 12]
    assert messages[2].remaining_length == len(big) - 3
    inside_length = len(b.connect(b"c")) + len(b.subscribe(1, [(b"a", 0)])) + 2  # big's 2-byte length
    for cut in (1, 2, len(b.connect(b"c")) + 3, inside_length, len(stream) - 1):
        first, rest = decode_payload(stream[:cut], False)
        second, left = decode_payload(rest + stream[cut:], False)
        assert [m.packet_type for m in first + second] == [1, 8, 3, 12] and left == b""
    both([stream[:40], stream[40:], stream[:2]])


def test_malformed_packets() -> None:
    def finding(data: bytes, from_server: bool = False) -> MqttFinding:
        return one(data, from_server).finding

    lost = one(b"\x30\xff\xff\xff\xff\x01" + bytes(10))
    assert (lost.finding, lost.summary().operation, lost.status) == (
        MqttFinding.BAD_REMAINING_LENGTH,
        Operation.MALFORMED,
        ParseStatus.MALFORMED,
    )
    assert finding(b"\x00\x00") == MqttFinding.RESERVED_TYPE
    assert finding(b"\x80\x05\x00\x01\x00\x01a") == MqttFinding.BAD_FLAGS
    assert finding(b"\x36\x05\x00\x01a\x00\x01") == MqttFinding.BAD_QOS
    assert finding(b"\x30\x03\x00\x05a") == MqttFinding.TRUNCATED
    assert (
        finding(b.packet(1, 0, b.utf8(b"MQTT") + bytes([9, 2, 0, 0]) + b.utf8(b"c")))
        == MqttFinding.BAD_PROTOCOL
    )
    assert (
        finding(b.packet(1, 0, b.utf8(b"MQTT") + bytes([4, 3, 0, 0]) + b.utf8(b"c")))
        == MqttFinding.BAD_CONNECT_FLAGS
    )
    assert finding(
        b.packet(1, 0, b.utf8(b"MQTT") + bytes([4, 0x42, 0, 0]) + b.utf8(b"c") + b.utf8(b"p"))
    ) == (MqttFinding.BAD_CONNECT_FLAGS)
    assert finding(b.packet(1, 0, b.utf8(b"MQTT") + bytes([4, 0x1E, 0, 0]))) == MqttFinding.BAD_QOS
    assert finding(b.publish(b"a/+/b")) == MqttFinding.BAD_TOPIC
    assert finding(b.publish(b"\xff\xfe")) == MqttFinding.BAD_TOPIC
    assert finding(b.packet(8, 2, b"\x00\x01")) == MqttFinding.NO_TOPICS
    assert finding(b.packet(8, 2, b"\x00\x01" + b.utf8(b"a") + b"\x03")) == MqttFinding.BAD_QOS
    assert finding(b.connack() + b"", True) == MqttFinding.OK
    assert finding(b.packet(12, 0, b"\x00"), True) == MqttFinding.TRAILING_BYTES
    assert finding(b.packet(4, 0, b"\x00")) == MqttFinding.TRUNCATED


VALID = [
    b.connect(b"c1", 4, b"u", b"p"),
    b.connect(b"c2", 3, will=(b"w", b"x")),
    b.connack(0),
    b.publish(b"t/1", b"v", 1, 5),
    b.publish(b"t", b"", 0),
    b.ack(4, 1),
    b.ack(6, 2),
    b.subscribe(3, [(b"a/#", 1)]),
    b.suback(3, [1]),
    b.unsubscribe(4, [b"a/#"]),
    b.unsuback(4),
    b.simple(12),
    b.simple(14),
    b.connect5(b"c5", b"u"),
    b.publish5(b"t5", 1, 9),
    b.subscribe5(7, [(b"q", 2)]),
    b.suback5(7, [2]),
    b.disconnect5(0),
]


def _check(segments: list[bytes], from_server: list[bool]) -> None:
    for messages in both(segments, from_server):
        for message in messages:
            assert message.finding != MqttFinding.UNEXPECTED
            assert message.finding in set(MqttFinding)
            assert (message.status == ParseStatus.MALFORMED) == (message.finding != MqttFinding.OK)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=6), st.data())
def test_random_bytes_never_escape(segments: list[bytes], data: st.DataObject) -> None:
    _check(segments, data.draw(st.lists(st.booleans(), min_size=len(segments), max_size=len(segments))))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(VALID), min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 256)), max_size=4),
    st.integers(0, 200),
    st.booleans(),
)
def test_mutated_packets_never_escape(
    packets: list[bytes], mutations: list[tuple[int, int]], cut: int, from_server: bool
) -> None:
    data = bytearray(b"".join(packets))
    for position, value in mutations:  # a byte replaced, or deleted (256)
        if position < len(data) and value < 256:
            data[position] = value
        elif position < len(data):
            del data[position]
    cut = min(cut, len(data))
    _check([bytes(data[:cut]), bytes(data[cut:]), bytes(data)], [from_server] * 3)
