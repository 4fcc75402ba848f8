"""Decisions on real decoded requests: roles, registers, values, rates, malformed, fail closed."""

from __future__ import annotations

from datetime import UTC, datetime

from plantwarden.gateway.decide import (
    ENVELOPE,
    FAIL_CLOSED,
    MALFORMED,
    SERVER_DEVICE_BUSY,
    Decider,
    RateLimit,
    Verdict,
)
from plantwarden.gateway.state import GatewayState
from plantwarden.policy.model import Subject
from plantwarden.policy.overlay import DenyOverlay
from plantwarden.protocols.modbus.exact import decode
from tests.unit.gateway.support import PLANT, adu, read_holding, state, write_register, write_registers

OPERATOR = Subject("cert_role", "operator")
ENGINEER = Subject("cert_role", "engineer")
HMI = Subject("address", "127.0.0.1")
WALL = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def decider(current: GatewayState, **options: object) -> Decider:
    return Decider("plant-a", current.snapshot, current.envelope({}), **options)  # type: ignore[arg-type]


def ask(
    d: Decider, current: GatewayState, subject: Subject, role: str, pdu: bytes, now: float = 0.0
) -> Verdict:
    target = current.route(1)
    assert target is not None
    return d.decide(subject, role, target, decode(adu(1, 1, pdu), False), WALL, now)


def test_an_operator_reads_and_an_engineer_writes_within_the_register_map() -> None:
    current = state()
    d = decider(current)
    assert ask(d, current, OPERATOR, "operator", read_holding(2, 4)).allowed
    refused = ask(d, current, OPERATOR, "operator", write_register(0, 800))
    assert not refused.allowed and refused.exception_code == 1
    assert refused.rule == "default-deny" and "operator" in refused.reason
    assert ask(d, current, ENGINEER, "engineer", write_register(0, 800)).allowed
    assert ask(d, current, ENGINEER, "engineer", write_registers(4, [5, 1200])).allowed
    outside = ask(d, current, ENGINEER, "engineer", write_register(6, 1))  # no register there lists engineer
    assert not outside.allowed and outside.rule == "default-deny"
    beyond = ask(d, current, ENGINEER, "engineer", write_register(0, 990))
    assert not beyond.allowed and beyond.rule == f"{ENVELOPE}:plc-1/level_setpoint"
    assert beyond.exception_code == 1


def test_a_bound_address_acts_in_its_role_and_an_unbound_one_in_none() -> None:
    current = state()
    d = decider(current)
    assert ask(d, current, HMI, "operator", read_holding(0, 1)).allowed
    assert not ask(d, current, HMI, "operator", write_register(0, 800)).allowed
    assert not ask(d, current, Subject("address", "127.0.0.2"), "", read_holding(0, 1)).allowed
    assert not ask(d, current, Subject("cert_role", "stranger"), "stranger", read_holding(0, 1)).allowed


def test_function_23_needs_both_the_write_and_the_read() -> None:
    current = state()
    d = decider(current)
    pdu = bytes([23, 0, 2, 0, 2, 0, 0, 0, 1, 2, 3, 32])  # read holding 2-3, write 0 := 800
    assert ask(d, current, ENGINEER, "engineer", pdu).allowed
    assert not ask(d, current, OPERATOR, "operator", pdu).allowed
    too_high = bytes([23, 0, 2, 0, 2, 0, 0, 0, 1, 2, 3, 0xE0])  # 0 := 992
    assert ask(d, current, ENGINEER, "engineer", too_high).rule.startswith(ENVELOPE)


def test_malformed_requests_and_a_missing_snapshot_are_refused() -> None:
    current = state()
    d = decider(current)
    unknown = ask(d, current, ENGINEER, "engineer", bytes([0x5A, 1, 2]))
    assert (unknown.allowed, unknown.rule, unknown.exception_code) == (False, MALFORMED, 1)
    bad_count = ask(d, current, ENGINEER, "engineer", bytes([16, 0, 0, 0, 2, 3, 0, 0, 0]))
    assert (bad_count.allowed, bad_count.rule, bad_count.exception_code) == (False, MALFORMED, 3)
    closed = Decider("plant-a", None, current.envelope({}))
    verdict = ask(closed, current, ENGINEER, "engineer", read_holding(0, 1))
    assert (verdict.allowed, verdict.rule, verdict.exception_code) == (False, FAIL_CLOSED, 1)


def test_rate_limits_per_subject_and_the_quarantine_overlay() -> None:
    current = state()
    overlay = DenyOverlay()
    d = decider(current, overlay=overlay, rate_limits={"operator": RateLimit(per_second=10, burst=3)})
    verdicts = [ask(d, current, OPERATOR, "operator", read_holding(0, 1), now=100.0) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[-1].exception_code == SERVER_DEVICE_BUSY
    assert ask(d, current, OPERATOR, "operator", read_holding(0, 1), now=100.2).allowed  # refilled
    assert ask(d, current, ENGINEER, "engineer", read_holding(0, 1), now=100.0).allowed  # no limit
    overlay.quarantine_subject(ENGINEER, "stolen laptop")
    quarantined = ask(d, current, ENGINEER, "engineer", read_holding(0, 1))
    assert quarantined.rule == "deny:quarantine:subject" and "stolen laptop" in quarantined.reason


def test_a_plcs_rate_limits_in_plant_yaml_hold_per_role_and_client() -> None:
    text = PLANT.replace(
        "        gateway_only: true\n", "        gateway_only: true\n        rate_limits: {operator: 2}\n"
    )
    current = state(text=text)
    d = decider(current)
    verdicts = [ask(d, current, OPERATOR, "operator", read_holding(0, 1), now=50.0) for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, True, False]  # a burst of twice the rate
    assert verdicts[-1].exception_code == SERVER_DEVICE_BUSY
    assert "2 requests a second that plc-1 takes from role operator" in verdicts[-1].reason
    assert ask(d, current, OPERATOR, "operator", read_holding(0, 1), now=50.5).allowed  # one more token
    assert ask(d, current, HMI, "operator", read_holding(0, 1), now=50.0).allowed  # another client
    assert all(ask(d, current, ENGINEER, "engineer", read_holding(0, 1), now=50.0).allowed for _ in range(9))


def test_every_request_counts_against_its_source_address_malformed_ones_first() -> None:
    current = state()
    d = decider(current, source_rate_limit=RateLimit(per_second=1, burst=2))
    malformed = read_holding(0, 0)  # a read of no register
    verdicts = [ask(d, current, HMI, "operator", malformed, now=7.0) for _ in range(3)]
    assert [v.rule for v in verdicts] == [MALFORMED, MALFORMED, "gateway:rate-limit"]
    assert verdicts[-1].exception_code == SERVER_DEVICE_BUSY


def test_denial_alerts_are_rate_limited_per_rule_subject_and_plc() -> None:
    from plantwarden.core.context import Context
    from plantwarden.gateway.alerts import Denial, DenialAlerts

    alerts = DenialAlerts(None, Context(source="test"), interval=60.0)

    def denial(rule: str, subject: str) -> Denial:
        return Denial("plant-a", "cell-1", "plc-1", subject, "", "127.0.0.1", rule, "no", 6, 0, 0)

    assert alerts.note(denial("default-deny", "cert_role operator"), 0.0)
    assert not alerts.note(denial("default-deny", "cert_role operator"), 30.0)
    assert alerts.note(denial("gateway:envelope:plc-1/x", "cert_role operator"), 30.0)  # another rule
    assert alerts.note(denial("default-deny", "address 127.0.0.2"), 30.0)  # another subject
    assert alerts.note(denial("default-deny", "cert_role operator"), 61.0)  # a minute later
    assert alerts.flush(now=200.0) == 0  # no store: nothing raised, and the quiet keys forgotten
    assert alerts._last == {}
