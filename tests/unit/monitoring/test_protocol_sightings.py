"""Identity answers of the industrial protocols as sightings: addresses, pairing, bad input."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from plantwarden.capture.batch import PacketBatch
from plantwarden.inventory import Binding, Sighting
from plantwarden.monitoring.protocol_sightings import STATED, ProtocolSightings
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.sensor import Sensor
from tests.unit.protocols.enip.builders import path, reply, request, send_rr_data

S = 1_000_000_000
CLIENT, SERVER = "10.0.0.5", "10.0.0.20"
IDENTITY = bytes.fromhex("01000e003600101460303f82510014") + b"1756-L61/B LOGIX5561" + b"\x03"
"""A Get_Attributes_All reply's data for the Identity object (vendor 1, serial 0x0051823f)."""


def run(frames: Sequence[Packet | bytes], identities: ProtocolSightings | None = None) -> list[Sighting]:
    """The identity sightings of one batch of `frames`, one a millisecond from second 1."""
    batch = PacketBatch.from_packets([(S + i * 1_000_000, bytes(f)) for i, f in enumerate(frames)])
    sensor = Sensor(protocols=tuple(PROTOCOLS.values()))
    modbus = sensor.process(batch)
    assert sensor.last_layers is not None
    identities = identities or ProtocolSightings("plant", "cell-1")
    return identities.process(batch, sensor.last_layers, modbus, sensor.last_protocols)


def tcp(payload: bytes, port: int, *, to_server: bool, seq: int = 1) -> Packet:
    src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
    sport, dport = (40000, port) if to_server else (port, 40000)
    flags = "PA"
    return (
        Ether(src="02:00:00:00:00:01")
        / IP(src=src, dst=dst)
        / TCP(sport=sport, dport=dport, flags=flags, seq=seq)
        / Raw(payload)
    )


def udp(payload: bytes, src: str = SERVER) -> Packet:
    return (
        Ether(src="02:00:00:00:00:02")
        / IP(src=src, dst="10.0.0.255")
        / UDP(sport=47808, dport=47808)
        / Raw(payload)
    )


def modbus_identity_response(objects: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(bytes([object_id, len(value)]) + value for object_id, value in objects)
    pdu = bytes([43, 14, 1, 0x81, 0, 0, len(objects)]) + body
    return (7).to_bytes(2, "big") + bytes(2) + (len(pdu) + 1).to_bytes(2, "big") + b"\x01" + pdu


def test_a_modbus_answer_names_its_server_by_ip_only() -> None:
    answer = modbus_identity_response([(0, b"Acme"), (1, b"AC-1"), (2, b"2.1"), (5, b"")])
    (found,) = run([tcp(answer, 502, to_server=False)])
    assert (found.source, found.ip, found.mac, found.binding) == ("modbus_43_14", SERVER, "", Binding.NONE)
    assert dict(found.attributes) == {"vendor": "Acme", "product_code": "AC-1", "firmware": "2.1"}
    assert found.confidence == STATED
    assert run([tcp(answer, 502, to_server=True)]) == []  # the same PDU from the client is no answer


def test_an_identity_object_reply_counts_only_after_a_request_to_the_identity_class() -> None:
    answer = tcp(send_rr_data(reply(0x01, data=IDENTITY)), 44818, to_server=False)
    asked_identity = tcp(send_rr_data(request(0x01, path(0x01, 1))), 44818, to_server=True)
    asked_other = tcp(send_rr_data(request(0x01, path(0x02, 1))), 44818, to_server=True)
    (found,) = run([asked_identity, answer])
    assert (found.source, found.ip) == ("cip_identity", SERVER)
    assert found.attributes["serial"] == "0x0051823f"
    assert found.attributes["firmware"] == "16.20"
    assert found.attributes["vendor"] == "Rockwell Automation/Allen-Bradley"
    assert run([asked_other, answer]) == []
    assert run([answer]) == []


def test_the_request_waits_across_batches_and_is_forgotten_past_the_limit() -> None:
    answer = tcp(send_rr_data(reply(0x01, data=IDENTITY)), 44818, to_server=False)
    asked = tcp(send_rr_data(request(0x01, path(0x01, 1))), 44818, to_server=True)
    identities = ProtocolSightings("plant", "cell-1")
    assert run([asked], identities) == []
    assert [found.source for found in run([answer], identities)] == ["cip_identity"]
    assert run([answer], identities) == []  # answered once
    forgetful = ProtocolSightings("plant", "cell-1", max_pending=0)
    assert run([asked, answer], forgetful) == []


I_AM = bytes.fromhex("c40200000a") + bytes.fromhex("220400") + bytes.fromhex("9103") + bytes.fromhex("210f")
"""I-Am parameters: device 10, max APDU 1024, no segmentation, vendor 15."""


def bvlc(function: int, body: bytes) -> bytes:
    return bytes([0x81, function]) + (4 + len(body)).to_bytes(2, "big") + body


def test_bacnet_i_am_forwarded_routed_and_direct() -> None:
    apdu = bytes([0x10, 0x00]) + I_AM
    direct = udp(bvlc(0x0B, bytes([1, 0]) + apdu))
    forwarded = udp(bvlc(0x04, bytes([10, 0, 9, 7, 0xBA, 0xC0]) + bytes([1, 0]) + apdu))
    routed = udp(bvlc(0x0B, bytes([1, 0x08, 0, 5, 1, 0x21]) + apdu))
    found = run([direct, forwarded, routed])
    assert [(item.source, item.ip) for item in found] == [
        ("bacnet_i_am", SERVER),
        ("bacnet_i_am", "10.0.9.7"),
    ]
    assert dict(found[0].attributes) == {"device_instance": "10", "vendor_id": "15"}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([502, 102, 44818, 47808]), st.booleans(), st.binary(min_size=1, max_size=120)
        ),
        min_size=1,
        max_size=6,
    )
)
def test_garbage_never_raises(frames: list[tuple[int, bool, bytes]]) -> None:
    packets = [
        udp(payload) if port == 47808 else tcp(payload, port, to_server=to_server, seq=1 + 200 * n)
        for n, (port, to_server, payload) in enumerate(frames)
    ]
    for found in run(packets):
        assert found.binding == Binding.NONE and found.ip and found.attributes
