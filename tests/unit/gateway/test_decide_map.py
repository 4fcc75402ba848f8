"""Decisions against the register map's tables, unit ids, FIFO reads, source-address limits and
writes in flight at once (the review of issue 13)."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from plantwarden.gateway.decide import (
    FIFO,
    RATE_LIMITED,
    REGISTER_MAP,
    SERVER_DEVICE_BUSY,
    UNIT_ID,
    Decider,
    RateLimit,
    Verdict,
)
from plantwarden.gateway.frames import GATEWAY_PATH_UNAVAILABLE
from plantwarden.gateway.state import GatewayState
from plantwarden.policy.model import Subject
from plantwarden.protocols.modbus.exact import decode
from tests.unit.gateway.support import PLANT, adu, read_holding, state, write_register

OPERATOR = Subject("cert_role", "operator")
ENGINEER = Subject("cert_role", "engineer")
WALL = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def ask(
    d: Decider,
    current: GatewayState,
    subject: Subject,
    role: str,
    pdu: bytes,
    *,
    unit_id: int = 1,
    now: float = 0.0,
    source: str = "",
) -> Verdict:
    target = current.route(unit_id)
    assert target is not None
    return d.decide(subject, role, target, decode(adu(1, unit_id, pdu), False), WALL, now, source=source)


def write_coil(address: int, on: bool) -> bytes:
    return struct.pack(">BHH", 5, address, 0xFF00 if on else 0)


def write_coils(address: int, count: int) -> bytes:
    return struct.pack(">BHHBB", 15, address, count, 1, (1 << count) - 1)


def read(function_code: int, address: int, quantity: int) -> bytes:
    return struct.pack(">BHH", function_code, address, quantity)


def test_coils_and_holding_registers_are_separate_tables() -> None:
    current = state()  # engineer writes holding 0 (level_setpoint) and coil 10 (pump_run)
    d = Decider("plant-a", current.snapshot, current.envelope({}))
    coil_0 = ask(d, current, ENGINEER, "engineer", write_coil(0, True))
    assert (coil_0.allowed, coil_0.rule, coil_0.exception_code) == (False, REGISTER_MAP, 2)
    assert "no coil register at address 0" in coil_0.reason
    holding_10 = ask(d, current, ENGINEER, "engineer", write_register(10, 1))
    assert (holding_10.allowed, holding_10.rule, holding_10.exception_code) == (False, REGISTER_MAP, 2)
    assert ask(d, current, ENGINEER, "engineer", write_coil(10, True)).allowed
    assert not ask(d, current, ENGINEER, "engineer", write_coils(10, 2)).allowed  # coil 11: none
    assert ask(d, current, ENGINEER, "engineer", write_register(0, 800)).allowed


def test_a_write_needs_a_writer_of_that_table_not_of_the_same_address_in_another() -> None:
    text = PLANT.replace(
        "          - {address: 20, name: level",
        "          - {address: 10, name: mode, kind: holding, type: uint16, writers: [operator]}\n"
        "          - {address: 20, name: level",
    )
    current = state(text=text)
    d = Decider("plant-a", current.snapshot, current.envelope({}))
    verdict = ask(d, current, ENGINEER, "engineer", write_register(10, 1))  # engineer writes coil 10 only
    assert (verdict.allowed, verdict.rule, verdict.exception_code) == (False, REGISTER_MAP, 1)
    assert "not a writer of holding mode" in verdict.reason
    assert ask(d, current, ENGINEER, "engineer", write_coil(10, False)).allowed


def test_reads_stay_on_the_addresses_of_their_table() -> None:
    current = state()
    d = Decider("plant-a", current.snapshot, current.envelope({}))
    assert ask(d, current, OPERATOR, "operator", read(4, 20, 2)).allowed  # input level (float32)
    assert ask(d, current, OPERATOR, "operator", read(1, 10, 1)).allowed  # coil pump_run
    for pdu, hole in [
        (read(4, 20, 3), 22),
        (read(3, 20, 2), 20),  # 20 is an input register, not a holding one
        (read(2, 10, 1), 10),  # no discrete inputs at all
        (read_holding(0, 10), 1),  # the gap between level_setpoint and flow_limit
    ]:
        verdict = ask(d, current, OPERATOR, "operator", pdu)
        assert (verdict.allowed, verdict.rule, verdict.exception_code) == (False, REGISTER_MAP, 2), pdu
        assert f"at address {hole} " in verdict.reason
    read_off_map = bytes([23, 0, 30, 0, 1, 0, 0, 0, 1, 2, 3, 32])  # write 0 := 800, read 30
    assert ask(d, current, ENGINEER, "engineer", read_off_map).rule == REGISTER_MAP


def test_a_plc_without_a_unit_id_answers_1_and_255_only() -> None:
    current = state(text=PLANT.replace("        unit_id: 1\n", ""))
    d = Decider("plant-a", current.snapshot, current.envelope({}))
    assert ask(d, current, OPERATOR, "operator", read_holding(0, 1), unit_id=1).allowed
    assert ask(d, current, OPERATOR, "operator", read_holding(0, 1), unit_id=255).allowed
    for unit_id in (0, 2, 17):
        verdict = ask(d, current, OPERATOR, "operator", read_holding(0, 1), unit_id=unit_id)
        assert (verdict.allowed, verdict.rule) == (False, UNIT_ID)
        assert verdict.exception_code == GATEWAY_PATH_UNAVAILABLE


def test_read_fifo_is_refused_unless_allowed() -> None:
    current = state()
    fifo = bytes([24, 0, 0])
    refused = ask(
        Decider("plant-a", current.snapshot, current.envelope({})), current, OPERATOR, "operator", fifo
    )
    assert (refused.allowed, refused.rule, refused.exception_code) == (False, FIFO, 1)
    allowed = Decider("plant-a", current.snapshot, current.envelope({}), read_fifo=True)
    assert ask(allowed, current, OPERATOR, "operator", fifo).allowed


def test_each_source_address_is_rate_limited_whatever_its_role() -> None:
    current = state()
    d = Decider("plant-a", current.snapshot, current.envelope({}), source_rate_limit=RateLimit(10, 2))
    got = [
        ask(d, current, ENGINEER, "engineer", read_holding(0, 1), now=5.0, source="10.0.0.9")
        for _ in range(3)
    ]
    assert [v.allowed for v in got] == [True, True, False]
    assert (got[-1].rule, got[-1].exception_code) == (RATE_LIMITED, SERVER_DEVICE_BUSY)
    assert "10.0.0.9" in got[-1].reason
    assert ask(d, current, ENGINEER, "engineer", read_holding(0, 1), now=5.0, source="10.0.0.8").allowed
    hmi = Subject("address", "127.0.0.1")  # a plain client: its subject is its address
    assert [ask(d, current, hmi, "operator", read_holding(0, 1), now=5.0).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]


def test_concurrent_writes_are_each_checked_against_the_other() -> None:
    current = state()
    d = Decider("plant-a", current.snapshot, current.envelope({"plc-1": {"speed": 10.0}}))
    target = current.route(1)
    assert target is not None
    first = decode(adu(1, 1, write_register(5, 100)), False)
    assert d.decide(ENGINEER, "engineer", target, first, WALL, 0.0).allowed
    assert ask(d, current, ENGINEER, "engineer", write_register(5, 200), now=10.0).allowed  # in flight
    second = ask(d, current, ENGINEER, "engineer", write_register(5, 0), now=10.0)  # 200 -> 0 at once
    assert not second.allowed and "from 200 to 0" in second.reason
