"""Modbus messages as the sim sends them, read back by tshark field by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwarden.core.errors import InvalidInput
from plantwarden.sim import modbus_messages as modbus
from plantwarden.sim.pcap import PcapWriter
from plantwarden.sim.wire import IpHost, Link, TcpConnection, TcpEnd, ip_bytes, mac_bytes
from tests.tshark_support import fields

IMAGE = {
    "holding": {0: 500, 1: 65535},
    "input": {100: 7, 101: 8},
    "coil": {200: 1, 201: 0, 202: 1},
    "discrete": {300: 0},
}
IDENTITY = [(0, "Plantwarden Sim"), (1, "PW-TANK"), (2, "1.4.2")]


def exchanges() -> list[tuple[modbus.Request, bytes]]:
    requests = [
        modbus.read(modbus.READ_HOLDING_REGISTERS, 0, 2),
        modbus.read(modbus.READ_COILS, 200, 3),
        modbus.read(modbus.READ_INPUT_REGISTERS, 100, 3),  # 102 is not held: exception 2
        modbus.write_single(modbus.WRITE_SINGLE_COIL, 201, 1),
        modbus.write_single(modbus.WRITE_SINGLE_REGISTER, 1, 1234),
        modbus.write_multiple(modbus.WRITE_MULTIPLE_COILS, 200, [0, 1, 1]),
        modbus.write_multiple(modbus.WRITE_MULTIPLE_REGISTERS, 0, [1, 2]),
        modbus.diagnostics(modbus.RETURN_QUERY_DATA, b"\xab\xcd"),
        modbus.read_device_identification(1),
    ]
    return [(request, modbus.response_pdu(request, IMAGE, IDENTITY)) for request in requests]


def test_tshark_reads_every_field_the_sim_writes(tmp_path: Path) -> None:
    client = TcpEnd(IpHost(ip_bytes("127.10.1.10")), 50000, 1)
    server = TcpEnd(IpHost(ip_bytes("127.10.2.11")), 502, 1, timestamps=False)
    tcp = TcpConnection(client, server, Link(mac_bytes("02:00:00:00:00:01"), mac_bytes("02:00:00:00:00:02")))
    path = tmp_path / "modbus.pcap"
    with PcapWriter(path.open("wb"), owns_stream=True) as writer:
        for segment in tcp.handshake(1.0, 0.001):
            writer.write(segment.time, segment.frame)
        for number, (request, answer) in enumerate(exchanges(), start=1):
            for from_client, pdu in ((True, modbus.request_pdu(request)), (False, answer)):
                segment = tcp.send(1.0 + number / 10, from_client, modbus.adu(number, 1, pdu))
                writer.write(segment.time, segment.frame)
    names = [
        "mbtcp.trans_id",
        "modbus.func_code",
        "modbus.reference_num",
        "modbus.word_cnt",
        "modbus.bit_cnt",
    ]
    names += ["modbus.regval_uint16", "modbus.exception_code", "modbus.mei", "modbus.object_str_value"]
    names.append("modbus.data")
    rows = [row for row in fields(path, names) if row[0]]
    assert len(rows) == 18
    assert rows[0][1:5] == ["3", "0", "2", ""] and rows[1][5] == "500,65535"
    assert rows[2][1:5] == ["1", "200", "", "3"]
    assert rows[5][6] == "2"  # illegal data address for the read past what the PLC holds
    assert rows[6][9] == rows[7][9] == "ff00"  # a coil written on, and the echo
    assert rows[8][9] == rows[9][9] == "04d2"  # 1234, and the echo
    assert rows[10][4] == rows[11][4] == "3" and rows[10][9] == "06"  # bits 0, 1, 1
    assert rows[12][5] == "1,2" and rows[13][3] == "2"
    assert rows[16][7] == rows[17][7] == "14"
    assert rows[17][8] == "Plantwarden Sim,PW-TANK,1.4.2"


def test_answers_decode_to_the_image_values() -> None:
    request = modbus.read(modbus.READ_COILS, 200, 3)
    assert modbus.decode_response(request, modbus.response_pdu(request, IMAGE)).values == (1, 0, 1)
    request = modbus.read(modbus.READ_HOLDING_REGISTERS, 0, 2)
    assert modbus.decode_response(request, modbus.response_pdu(request, IMAGE)).values == (500, 65535)
    request = modbus.read(modbus.READ_DISCRETE_INPUTS, 299, 2)
    assert modbus.decode_response(request, modbus.response_pdu(request, IMAGE)).exception_code == 2


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: modbus.read(modbus.READ_HOLDING_REGISTERS, 0, 126), "outside 1-125"),
        (lambda: modbus.read(modbus.READ_COILS, 65535, 2), "runs past 65535"),
        (lambda: modbus.read(modbus.WRITE_SINGLE_COIL, 0, 1), "not a read"),
        (lambda: modbus.write_single(modbus.WRITE_SINGLE_COIL, 0, 2), "does not fit"),
        (lambda: modbus.write_multiple(modbus.WRITE_MULTIPLE_REGISTERS, 0, [70000]), "do not fit"),
        (lambda: modbus.read_device_identification(5), "not 1-4"),
    ],
)
def test_requests_outside_the_specification_are_refused(build: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        build()  # type: ignore[operator]


def test_a_frame_with_a_bad_header_is_refused() -> None:
    with pytest.raises(InvalidInput, match="bad MBAP header"):
        modbus.split_adu(b"\x00\x01\x00\x01\x00\x06\x01\x03\x00\x00\x00\x01")
    assert modbus.split_adu(modbus.adu(7, 1, b"\x03\x00\x00\x00\x01")) == (7, 1, b"\x03\x00\x00\x00\x01")
