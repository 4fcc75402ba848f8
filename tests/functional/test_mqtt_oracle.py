"""The oracle: the sensor's MQTT packets against tshark's, frame by frame and packet by packet.

The shared datasets hold no MQTT capture, and the tests may not talk to a broker: the capture is
written here, with scapy, from packets of independent encoders (scapy's MQTT layer for MQTT 3.1
and 3.1.1, builders from the MQTT 5.0 standard in `tests.unit.protocols.mqtt.builders`) in
three TCP connections to port 1883 (a handshake, then segments holding several packets, and
packets split over segments, one right after its first byte). tshark then dissects the file.
(tshark 4.0.17 takes a 2-byte segment whose remaining length goes on in the next segment for
a malformed packet and loses the stream: the unit tests cut packets there, not this oracle.)

Per packet: type, remaining length, QoS, packet id, topics, a subscription's requested QoS,
CONNECT's protocol name and level, client id, username and password flags, username and
password length, and CONNACK's and MQTT 5 reason codes must agree; neither side may see a
packet the other does not.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import wrpcap

from plantwarden.protocols.mqtt import MqttFinding, MqttMessage, decode_payload, decode_segments, extract
from tests.payload_support import decoded, payloads
from tests.tshark_support import CHECKSUMS, tshark
from tests.unit.protocols.mqtt import builders as b

PORT = 1883
TCP_PROTOCOL = 6


def _mqtt_3_1_1() -> list[tuple[bool, bytes]]:
    big = b.publish(b"plant/line1/trend", bytes(range(256)) * 2, qos=0)
    return [
        (False, b.connect(b"hmi-1", 4, username=b"operator", password=b"s3cret", keep_alive=45)),
        (True, b.connack(0)),
        (
            False,
            b.subscribe(1, [(b"plant/+/temp", 1), (b"alarms/#", 2)])
            + b.publish(b"plant/valve/cmd", b"open", 1, 2),
        ),
        (True, b.suback(1, [1, 0x80]) + b.ack(4, 2) + big[:3]),
        (True, big[3:200]),
        (True, big[200:] + b.publish(b"plant/line1/temp", b"21.5", 1, 9)),
        (False, b.ack(4, 9) + b.publish(b"plant/pump/speed", b"1200", 2, 3)),
        (True, b.ack(5, 3)),
        (False, b.ack(6, 3)),
        (True, b.ack(7, 3)),
        (False, b.unsubscribe(4, [b"alarms/#", b"plant/+/temp"])),
        (True, b.unsuback(4)),
        (False, b.simple(12)),
        (True, b.simple(13)),
        (False, b.simple(14)),
    ]


def _mqtt_3_1() -> list[tuple[bool, bytes]]:
    split = b.publish(b"legacy/topic", bytes(200), qos=1, packet_id=5)
    return [
        (False, b.connect(b"legacy", 3, will=(b"legacy/status", b"gone"))),
        (True, b.connack(0)),
        (False, split[:1]),
        (False, split[1:] + b.simple(12)),
        (True, b.ack(4, 5) + b.simple(13)),
        (False, b.connect(b"legacy", 3, username=b"admin")),
        (True, b.connack(5)),
    ]


def _mqtt_5() -> list[tuple[bool, bytes]]:
    return [
        (False, b.connect5(b"edge-5", b"svc", b"pw5")),
        (True, b.connack5(0)),
        (False, b.subscribe5(7, [(b"cmd/#", 0x01), (b"cfg/+", 0x02)], b.USER_PROPERTY)),
        (True, b.suback5(7, [1, 0x87])),
        (False, b.publish5(b"cmd/valve", 1, 8) + b.publish5(b"cmd/pump", 0, 0)),
        (True, b.puback5(8, 0x10)),
        (False, b.unsubscribe5(9, [b"cfg/+"])),
        (True, b.unsuback5(9, [0x11])),
        (False, b.disconnect5(0x04)),
    ]


def _connection(client_port: int, segments: list[tuple[bool, bytes]]) -> Iterator[Packet]:
    client, server = ("10.0.0.2", client_port), ("10.0.0.1", PORT)
    sequence = {False: 1000 + client_port, True: 50_000}

    def frame(from_server: bool, flags: str, data: bytes = b"") -> Packet:
        (source, sport), (destination, dport) = (server, client) if from_server else (client, server)
        tcp = TCP(
            sport=sport, dport=dport, flags=flags, seq=sequence[from_server], ack=sequence[not from_server]
        )
        packet = Ether() / IP(src=source, dst=destination) / tcp / data
        sequence[from_server] += len(data) + (1 if "S" in flags else 0)
        return packet

    yield frame(False, "S")
    yield frame(True, "SA")
    yield frame(False, "A")
    for from_server, data in segments:
        yield frame(from_server, "PA", data)


def write_capture(path: Path, connections: list[list[tuple[bool, bytes]]] | None = None) -> Path:
    """The three connections (MQTT 3.1.1, 3.1, 5), or `connections`, from client ports 40001..."""
    chosen = connections if connections is not None else [_mqtt_3_1_1(), _mqtt_3_1(), _mqtt_5()]
    packets = [packet for i, segments in enumerate(chosen) for packet in _connection(40001 + i, segments)]
    for index, packet in enumerate(packets):
        packet.time = 1_700_000_000 + index / 1000
    wrpcap(str(path), packets)
    return path


def _all(tree: Any, found: dict[str, list[str]]) -> None:
    """Every value of each field in `tree` (tshark's JSON), depth first."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if isinstance(value, str):
                found.setdefault(key, []).append(value)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                found.setdefault(key, []).extend(value)
            else:
                _all(value, found)
    elif isinstance(tree, list):
        for item in tree:
            _all(item, found)


def tshark_packets(capture: Path) -> dict[tuple[int, int], dict[str, list[str]]]:
    command = [tshark(), "-n", "-r", str(capture), *CHECKSUMS, "-Y", "mqtt", "-T", "json"]
    command += ["--no-duplicate-keys", "-J", "frame mqtt"]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    found: dict[tuple[int, int], dict[str, list[str]]] = {}
    for packet in json.loads(result.stdout or "[]"):
        layers = packet["_source"]["layers"]
        frame = int(layers["frame"]["frame.number"])
        pdus = layers.get("mqtt", [])
        for index, pdu in enumerate(pdus if isinstance(pdus, list) else [pdus]):
            fields: dict[str, list[str]] = {}
            _all(pdu, fields)
            found[frame, index] = fields
    return found


def ours_and_theirs(message: MqttMessage, theirs: dict[str, list[str]]) -> dict[str, tuple[object, object]]:
    """Each compared field: (ours, tshark's); tshark's None (or []) where it has no value."""

    def number(name: str) -> int | None:
        values = theirs.get(name)
        return int(values[0], 0) if values else None

    def flag(name: str) -> bool | None:
        values = theirs.get(name)
        return values[0] in ("1", "True") if values else None

    kind = message.packet_type
    pairs: dict[str, tuple[object, object]] = {
        "type": (kind, number("mqtt.msgtype")),
        "length": (message.remaining_length, number("mqtt.len")),
        "packet_id": (message.packet_id, number("mqtt.msgid") if "mqtt.msgid" in theirs else -1),
        "topics": (list(message.topics), theirs.get("mqtt.topic", [])),
    }
    if kind == 3:
        pairs["qos"] = (message.qos, number("mqtt.qos"))
    if kind == 8:
        qos = theirs.get("mqtt.sub.qos", theirs.get("mqtt.subscription_options_qos", []))
        pairs["requested_qos"] = (list(message.requested_qos), [int(q, 0) for q in qos])
    if kind == 1:
        pairs["protocol"] = (message.protocol_name, (theirs.get("mqtt.protoname") or ["(none)"])[0])
        pairs["level"] = (message.protocol_level, number("mqtt.ver"))
        pairs["client_id"] = (message.client_id, (theirs.get("mqtt.clientid") or [""])[0])
        pairs["keep_alive"] = (message.keep_alive, number("mqtt.kalive"))
        pairs["username_flag"] = (message.has_username, flag("mqtt.conflag.uname"))
        pairs["password_flag"] = (message.has_password, flag("mqtt.conflag.passwd"))
        pairs["connect_flags"] = (message.summary().address, number("mqtt.conflags"))
        pairs["credentials"] = (
            message.summary().address >= 0x40,
            bool(flag("mqtt.conflag.uname") or flag("mqtt.conflag.passwd")),
        )
        pairs["username"] = (message.username, (theirs.get("mqtt.username") or [""])[0])
        pairs["password_length"] = (message.password_length, number("mqtt.passwd_len") or -1)
    if kind == 2:
        code = number("mqtt.conack.val")
        pairs["return_code"] = (
            message.return_code,
            code if code is not None else number("mqtt.connack.reason_code"),
        )
    if kind in (4, 5, 6, 7, 14) and message.return_code >= 0:
        names = {4: "puback", 5: "pubrec", 6: "pubrel", 7: "pubcomp", 14: "disconnect"}
        pairs["reason_code"] = (message.return_code, number(f"mqtt.{names[kind]}.reason_code"))
    if kind in (9, 11) and message.return_code >= 0:
        codes = theirs.get("mqtt.suback.qos", []) + theirs.get(
            f"mqtt.{'suback' if kind == 9 else 'unsuback'}.reason_code", []
        )
        failure = next((int(code, 0) for code in codes if int(code, 0) >= 0x80), 0)
        pairs["result"] = (message.return_code, failure)
    return pairs


def test_the_sensor_agrees_with_tshark_on_scapy_built_traffic(tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "mqtt.pcap")
    theirs = tshark_packets(capture)
    ours = decoded(capture, TCP_PROTOCOL, (PORT,), decode_payload)
    assert sorted(set(theirs) - set(ours)) == [], "packets only tshark sees"
    assert sorted(set(ours) - set(theirs)) == [], "packets only the sensor sees"
    differences = []
    for key, (_, message) in sorted(ours.items()):
        assert message.finding == MqttFinding.OK, (key, message)
        for name, (mine, their) in ours_and_theirs(message, theirs[key]).items():
            if mine != their:
                differences.append((*key, name, mine, their))
    assert differences == []
    assert len(ours) == 36
    assert {message.packet_type for _, message in ours.values()} == set(range(1, 15))
    connects = [message.summary().address for _, message in ours.values() if message.packet_type == 1]
    assert sorted(connects) == [0x06, 0x82, 0xC2, 0xC2]  # credentials in three of the four


def test_both_paths_agree_on_scapy_built_traffic(tmp_path: Path) -> None:
    """On the segments as they come (mid-packet ones too), and as the sensor gives them (each
    after the bytes its stream left over)."""
    found = list(payloads(write_capture(tmp_path / "mqtt.pcap"), TCP_PROTOCOL, (PORT,)))
    leftovers: dict[tuple[bytes, int, bytes, int], bytes] = {}
    stitched = []
    for payload in found:
        data = leftovers.pop(payload.stream, b"") + payload.data
        stitched.append(data)
        leftovers[payload.stream] = decode_payload(data, payload.from_server)[1]
    server = np.array([p.from_server for p in found], dtype=np.bool_)
    for segments, rows, left in [([p.data for p in found], None, None), (stitched, 36, 3 + 200 + 1)]:
        lengths = np.array([len(data) for data in segments], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        buffer = np.frombuffer(b"".join(segments), dtype=np.uint8)
        fast, exact = (
            extract(buffer, starts, lengths, server),
            decode_segments(buffer, starts, lengths, server),
        )
        assert fast.differences(exact) == []
        assert not np.any(fast.summary.finding == MqttFinding.UNEXPECTED)
        if rows is not None:
            assert (len(fast), int(fast.leftover.sum())) == (rows, left)  # the two split packets


def test_a_plain_connect_with_credentials_raises_the_cleartext_credentials_alert(tmp_path: Path) -> None:
    """Through the sensor and the pack: the three CONNECTs with a username (one client, one
    broker) make one alert; connections whose CONNECT is anonymous (a will, or the simulator's
    telemetry CONNECT) make none."""
    from plantwarden.sim import mqtt as simulator
    from tests.functional.rule_pack_support import alerts_of_capture, pack

    def found(
        name: str, connections: list[list[tuple[bool, bytes]]] | None
    ) -> list[tuple[str, tuple[str, ...]]]:
        capture = write_capture(tmp_path / f"{name}.pcap", connections)
        alerts = alerts_of_capture(tmp_path / name, capture, pack())
        return [(a.rule, a.techniques) for a in alerts if a.rule.startswith("pw-mqtt-")]

    assert found("oracle", None) == [("pw-mqtt-cleartext-credentials", ("T0842",))]
    telemetry = [(False, simulator.connect("tank-1")), (True, b.connack(0)), (False, b.simple(14))]
    assert found("anonymous", [_mqtt_3_1()[:5], telemetry]) == []
