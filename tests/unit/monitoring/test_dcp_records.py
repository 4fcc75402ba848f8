"""PROFINET DCP requests as protocol records: frames built by scapy's pnio_dcp layer (an
independent encoder; frames it cannot build are written from IEC 61158-6-10's block layout) go
through the sensor, and each request gives one record with the service id, the option and
suboption it is about, the MACs as link-local addresses and the Set response's BlockError."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from scapy.contrib.pnio import ProfinetIO
from scapy.contrib.pnio_dcp import DCPControlBlock, ProfinetDCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from plantwarden.capture.batch import PacketBatch
from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.schema import (
    NO_ANSWER_EXPECTED,
    NO_ANSWER_SEEN,
    Operation,
    Protocol,
    address_text,
    mac_address,
    mac_addresses,
)
from plantwarden.monitoring.sensor import Sensor, SensorOptions
from tests.functional.test_sensor_protocol_records import Kept

S, MS = 1_000_000_000, 1_000_000
CONTROLLER, DEVICE, DCP_GROUP = "00:0c:29:ba:09:ea", "08:00:06:93:cf:32", "01:0e:cf:00:00:00"
XID = 0x01000001


def frame(src: str, dst: str, frame_id: int, dcp: Packet | bytes) -> bytes:
    return bytes(Ether(src=src, dst=dst) / ProfinetIO(frameID=frame_id) / dcp)


def set_ip(xid: int = XID) -> bytes:
    fields: dict[str, Any] = {
        "option": 1,
        "sub_option": 2,
        "dcp_block_length": 14,
        "block_qualifier": 1,
        "ip": "192.168.0.77",
        "netmask": "255.255.255.0",
        "gateway": "192.168.0.1",
        "dcp_data_length": 18,
    }
    return frame(CONTROLLER, DEVICE, 0xFEFD, ProfinetDCP(service_id=4, service_type=0, xid=xid, **fields))


def set_response(option: int, suboption: int, error: int, xid: int = XID) -> bytes:
    block = DCPControlBlock(response=option, response_sub_option=suboption, block_error=error)
    dcp = ProfinetDCP(
        service_id=4, service_type=1, xid=xid, dcp_data_length=len(bytes(block)), dcp_blocks=[block]
    )
    return frame(DEVICE, CONTROLLER, 0xFEFD, dcp)


def spec_request(service_id: int, body: bytes, dst: str = DEVICE, frame_id: int = 0xFEFD) -> bytes:
    """FrameID, ServiceID, ServiceType 0, Xid, reserved, DCPDataLength, then the blocks."""
    header = struct.pack(">HBBIHH", frame_id, service_id, 0, XID, 0, len(body))
    return bytes(Ether(src=CONTROLLER, dst=dst, type=0x8892)) + header + body


def block(option: int, suboption: int, value: bytes) -> bytes:
    return struct.pack(">BBH", option, suboption, len(value)) + value + (b"\x00" if len(value) % 2 else b"")


def records(batches: Sequence[Sequence[bytes]], identity: bool = True) -> dict[str, np.ndarray[Any, Any]]:
    """The protocol records of `batches` of frames, 10 ms apart from second 1."""
    kept, clock = Kept(), 0
    sensor = Sensor(SensorOptions(site="plant", segment="cell-1"), kept, identity=identity)
    for frames in batches:
        packets = []
        for data in frames:
            packets.append((S + clock * 10 * MS, data))
            clock += 1
        sensor.process(PacketBatch.from_packets(packets))
    sensor.finish()
    return kept.protocol()


def test_a_set_ip_request_answered_is_one_record_with_every_field() -> None:
    found = records([[set_ip(), set_response(1, 2, 0)]])
    assert len(found["ts"]) == 1
    row = {name: values[0] for name, values in found.items()}
    assert (address_text(row["src_addr"]), address_text(row["dst_addr"])) == (
        "fe80::20c:29ff:feba:9ea",
        "fe80::a00:6ff:fe93:cf32",
    )
    assert (row["src_port"], row["dst_port"], row["transport"]) == (0, 0, 0)
    assert (row["protocol"], row["operation"], row["function"]) == (Protocol.PROFINET_DCP, Operation.WRITE, 4)
    assert (row["unit"], row["address"], row["quantity"]) == (-1, 0x0102, 1)
    assert (row["status"], row["response_ns"], row["ts"]) == (0, 10 * MS, S)
    assert np.isnan(row["value"]) and (row["site"], row["segment"]) == ("plant", "cell-1")


def test_a_refused_set_carries_the_block_error_across_batches() -> None:
    found = records([[set_ip()], [set_response(1, 2, 6)]])
    assert found["status"].tolist() == [6] and found["response_ns"].tolist() == [10 * MS]


def test_an_unanswered_factory_reset_is_control() -> None:
    found = records([[spec_request(4, block(5, 6, b"\x00\x02"))]])
    assert found["operation"].tolist() == [Operation.CONTROL]
    assert (found["address"].tolist(), found["status"].tolist()) == ([0x0506], [NO_ANSWER_SEEN])


def test_a_set_names_the_block_it_is_about_not_the_transaction() -> None:
    body = block(5, 1, b"\x00\x00") + block(2, 2, b"\x00\x01plc-7") + block(5, 2, b"\x00\x00")
    found = records([[spec_request(4, body)]])
    assert (found["address"].tolist(), found["quantity"].tolist()) == ([0x0202], [3])
    assert found["operation"].tolist() == [Operation.WRITE]


def test_a_get_is_identify_and_an_identify_expects_no_single_answer() -> None:
    get = spec_request(3, bytes([2, 2, 1, 2]))
    identify = spec_request(5, block(0xFF, 0xFF, b""), dst=DCP_GROUP, frame_id=0xFEFE)
    found = records([[get, identify]])  # the identify recorded at once, the get when it times out
    order = np.argsort(found["ts"])
    found = {name: values[order] for name, values in found.items()}
    assert found["function"].tolist() == [3, 5]
    assert found["operation"].tolist() == [Operation.IDENTIFY] * 2
    assert found["address"].tolist() == [0x0202, 0xFFFF]
    assert found["status"].tolist() == [NO_ANSWER_SEEN, NO_ANSWER_EXPECTED]
    assert address_text(found["dst_addr"][1]) == "fe80::30e:cfff:fe00:0"


def test_hello_and_responses_alone_are_not_records_and_a_broken_frame_is() -> None:
    hello = spec_request(6, block(2, 2, b"\x00\x00io-dev-3"), dst=DCP_GROUP, frame_id=0xFEFC)
    broken = bytes(Ether(src=CONTROLLER, dst=DEVICE, type=0x8892)) + b"\xfe\xfd\x04"
    found = records([[hello, set_response(1, 2, 0), broken]])
    assert found["operation"].tolist() == [Operation.MALFORMED]
    assert (found["function"].tolist(), found["status"].tolist()) == ([-1], [NO_ANSWER_EXPECTED])


def test_without_identity_decoding_there_are_no_dcp_records() -> None:
    assert len(records([[set_ip(), set_response(1, 2, 0)]], identity=False)["ts"]) == 0


@pytest.mark.parametrize(
    ("mac", "link_local"),
    [
        ("00:0c:29:ba:09:ea", "fe80::20c:29ff:feba:9ea"),
        ("34:56:78:9a:bc:de", "fe80::3656:78ff:fe9a:bcde"),
        ("02:00:00:00:00:01", "fe80::ff:fe00:1"),  # locally administered: the bit flips back to 0
        ("ff:ff:ff:ff:ff:ff", "fe80::fdff:ffff:feff:ffff"),
    ],
)
def test_a_mac_maps_to_its_modified_eui64_link_local_address(mac: str, link_local: str) -> None:
    assert mac_address(mac) == ipaddress.IPv6Address(link_local).packed
    value = np.array([int(mac.replace(":", ""), 16)], dtype=np.uint64)
    assert bytes(mac_addresses(value)[0]).ljust(16, b"\0") == ipaddress.IPv6Address(link_local).packed


def test_a_mac_address_that_is_not_one_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a MAC address"):
        mac_address("00:0c:29:ba:09")
