"""SZL answers that identify a PLC: module and component identification, the mode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plantwarden.protocols.s7comm import szl


def szl_data(szl_id: int, records: list[bytes], length: int) -> bytes:
    header = (
        szl_id.to_bytes(2, "big") + bytes(2) + length.to_bytes(2, "big") + len(records).to_bytes(2, "big")
    )
    return header + b"".join(records)


def module_record(index: int, order_number: str, module_type: int, ausbg: int, ausbe: int) -> bytes:
    return (
        index.to_bytes(2, "big")
        + order_number.encode().ljust(20, b" ")
        + b"".join(value.to_bytes(2, "big") for value in (module_type, ausbg, ausbe))
    )


def component_record(index: int, body: bytes) -> bytes:
    return index.to_bytes(2, "big") + body.ljust(32, b"\x00")


def test_module_identification() -> None:
    data = szl_data(
        0x0011,
        [
            module_record(0x0001, "6ES7 315-2EH14-0AB0", 0x00C0, 4, 1),
            module_record(0x0007, "", 0x00C0, 0x5603, 0x0206),
        ],
        28,
    )
    records = szl.module_identification(szl.decode_szl(data))
    assert [record.order_number for record in records] == ["6ES7 315-2EH14-0AB0", ""]
    assert records[0].module_type == 0x00C0
    assert [record.firmware for record in records] == ["", "V3.2.6"]


def test_component_identification() -> None:
    data = szl_data(
        0x001C,
        [
            component_record(0x0001, b"SNAP7-SERVER"),
            component_record(0x0005, b"S C-C2UR28922012"),
            component_record(0x0007, b"CPU 315-2 PN/DP"),
            component_record(0x0009, bytes([0x00, 0x2A, 0xF6, 0x00])),
        ],
        34,
    )
    found = szl.component_identification(szl.decode_szl(data))
    assert found.plc_name == "SNAP7-SERVER"
    assert found.serial_number == "S C-C2UR28922012"
    assert found.module_type_name == "CPU 315-2 PN/DP"
    assert found.manufacturer_id == szl.SIEMENS
    assert found.module_name == ""


def test_mode_transition() -> None:
    record = bytes([0x51, 0x44, 0xFF, 0x48]) + bytes(16)
    (transition,) = szl.mode_transition(szl.decode_szl(szl_data(0x0424, [record], 20)))
    assert (transition.requested_mode, transition.previous_mode) == (8, 4)
    assert transition.requested_name == "RUN"


def test_bad_lists_raise() -> None:
    with pytest.raises(szl.SzlError, match="header"):
        szl.decode_szl(b"\x00\x11")
    with pytest.raises(szl.SzlError, match="do not fit"):
        szl.decode_szl(szl_data(0x0011, [bytes(10)], 28))
    with pytest.raises(szl.SzlError, match="not list"):
        szl.module_identification(szl.decode_szl(szl_data(0x001C, [], 34)))
    with pytest.raises(szl.SzlError, match="records of 20 bytes"):
        szl.module_identification(szl.decode_szl(szl_data(0x0011, [bytes(20)], 20)))


@given(st.binary(max_size=200))
def test_garbage_decodes_or_raises_szl_error(data: bytes) -> None:
    try:
        answer = szl.decode_szl(data)
        reader = {
            0x11: szl.module_identification,
            0x1C: szl.component_identification,
            0x24: szl.mode_transition,
        }
        reader.get(answer.partial_list, szl.mode_transition)(answer)
    except szl.SzlError:
        pass
