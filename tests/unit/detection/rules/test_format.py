"""Reading rule files: every field, modifier, value, condition and count checked, with positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwarden.alerts.models import Severity
from plantwarden.detection.rules.condition import And, ConditionError, Name, Not, Or, parse_condition
from plantwarden.detection.rules.format import RuleFileError, read_rule_file, read_rules
from tests.unit.detection.rules.rule_support import rule

GOOD = """\
id: pw-s7-plc-stop
title: S7 PLC stopped
severity: high
confidence: high
techniques: [T0881, T1110.001]
kind: protocol
detection:
  selection:
    protocol: s7comm
    function: 0x29
    dst_addr|cidr: 10.0.0.0/8
  outside_maintenance:
    maintenance: false
  condition: selection and outside_maintenance
severity_in_maintenance: low
dedup: [src_addr, dst_addr]
examples:
  positive:
    - {protocol: s7comm, function: 0x29, src_addr: 10.0.0.5, dst_addr: 10.0.0.10}
  negative:
    - {protocol: s7comm, function: 0x04}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        read_rules(text, "r.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_good_rule_reads_into_typed_values() -> None:
    (found,) = read_rules(GOOD, "r.yaml")
    assert found.id == "pw-s7-plc-stop" and found.severity is Severity.HIGH
    assert found.severity_in_maintenance is Severity.LOW
    assert found.techniques == ("T0881", "T1110.001")
    tests = {m.field.name: (m.test, m.values) for m in found.selections["selection"]}
    assert tests["protocol"] == ("eq", (2,)) and tests["function"] == ("eq", (0x29,))
    assert str(tests["dst_addr"][1][0]) == "10.0.0.0/8"
    assert [f.name for f in found.dedup] == ["src_addr", "dst_addr"]
    assert found.examples.positive[0][0]["function"] == 0x29
    assert found.condition == And(Name("selection"), Name("outside_maintenance"))


def test_a_list_of_rules_under_rules_reads_each_and_refuses_a_repeated_id() -> None:
    body = "\n".join("  " + line for line in GOOD.splitlines())
    text = "rules:\n" + body.replace("  id:", "- id:", 1) + "\n" + body.replace("  id:", "- id:", 1)
    assert any("rule id 'pw-s7-plc-stop' is written twice" in p for p in problems(text))
    assert len(read_rules(text.replace("pw-s7-plc-stop", "pw-two", 1), "r.yaml")) == 2


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    function: 0x29",
            "    functon: 0x29",
            "r.yaml:10:14: detection.selection.functon: unknown field",
        ),
        (
            "function: 0x29",
            "function|gte: [1, 2]",
            "r.yaml:10:19: detection.selection.function|gte: function|gte takes one number",
        ),
        ("protocol: s7comm", "protocol|gt: 1", "|gt compares numbers; protocol is protocol"),
        ("protocol: s7comm", "protocol: s7", "protocol is one of unknown, modbus, s7comm"),
        (
            "dst_addr|cidr: 10.0.0.0/8",
            "dst_addr|cidr: 10.0.0.5/8",
            "r.yaml:11:20: detection.selection.dst_addr|cidr: dst_addr: '10.0.0.5/8'",
        ),
        (
            "dst_addr|cidr",
            "dst_addr|startswith",
            "r.yaml:11:5: detection.selection.dst_addr|startswith: unknown modifier",
        ),
        ("function: 0x29", "function|cidr: 10.0.0.0/8", "|cidr is for addresses"),
        ("maintenance: false", "maintenance: no", "maintenance is true or false, not 'no'"),
        ("T0881", "T881", "r.yaml:5:14: techniques[0]: 'T881' is not an ATT&CK id"),
        ("kind: protocol", "kind: telemetry", "kind is one of protocol, protocol_read_minutes, flows"),
        ("severity: high", "severity: urgent", "severity is one of info, low, medium, high, critical"),
        ("id: pw-s7-plc-stop", "id: PW_stop", "r.yaml:1:5: id: an id is lower-case letters"),
        ("confidence: high", "confidence: sure", "confidence is one of low, medium, high"),
        (
            "dedup: [src_addr, dst_addr]",
            "dedup: [src_address]",
            "r.yaml:16:9: dedup[0]: unknown field 'src_address'",
        ),
        (
            "condition: selection and outside_maintenance",
            "condition: selection and",
            "at character 14: the condition ends",
        ),
        (
            "condition: selection and outside_maintenance",
            "condition: (selection",
            "at character 1: this parenthesis is never closed",
        ),
        (
            "condition: selection and outside_maintenance",
            "condition: selection or other",
            "condition names no selection ['other']",
        ),
        (
            "condition: selection and outside_maintenance",
            "condition: selection & other",
            "at character 11: unexpected character '&'",
        ),
        (
            "    - {protocol: s7comm, function: 0x04}",
            "    - {protocol: s7comm, function: 4.5}",
            "r.yaml:21:36: examples.negative[0].function: function is a whole number",
        ),
        (
            "    - {protocol: s7comm, function: 0x04}",
            "    - {protocol: s7comm, dst_addr: 10.0.0.0/8}",
            "dst_addr: '10.0.0.0/8' is not an IP address",
        ),
        ("  negative:\n    - {protocol: s7comm, function: 0x04}\n", "", "examples need a negative: list"),
        ("title: S7 PLC stopped\n", "", "r.yaml:1:1: a rule needs title:"),
        (
            "severity_in_maintenance: low",
            "severity_in_maintenance: low\nsevrity: high",
            "r.yaml:16:1: sevrity: unknown key 'sevrity'",
        ),
    ],
)
def test_each_problem_is_reported_with_file_line_column_and_reason(old: str, new: str, expected: str) -> None:
    assert old in GOOD
    found = problems(GOOD.replace(old, new, 1))
    assert any(expected in p for p in found), found


def test_yaml_problems_keep_their_position() -> None:
    assert problems(GOOD.replace("  selection:", "  selection:\n    protocol: modbus", 1))[0].startswith(
        "r.yaml:10:5: key 'protocol' is written twice (first on line 9)"
    )
    assert (
        "anchors and aliases"
        in problems(GOOD.replace("techniques: [T0881, T1110.001]", "techniques: &t [T0881]\nnotes: *t", 1))[0]
    )
    assert problems("id: [\n")[0].startswith("r.yaml:2:1: not valid YAML")


def test_a_rule_file_that_is_not_utf8_is_refused_at_its_first_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes(b"id: pw-count\ntitle: Z\xc3\xa4hler \xfcber\n")  # \xfc: 'ü' in Latin-1
    with pytest.raises(RuleFileError) as caught:
        read_rule_file(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:2:15: not UTF-8 text (line 2, byte 0xfc at offset 28)"
    ]


def test_an_empty_rule_file_or_one_without_a_mapping_says_what_a_rule_file_holds() -> None:
    wanted = "a rule (id:, title:, ...) or rules: and a list of them"
    assert problems("") == [f"r.yaml:1:1: the file is empty: expected {wanted}"]
    assert problems("- id: x\n") == [f"r.yaml:1:1: the top of the file must be a mapping ({wanted})"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("  count: {window: 0s, min: 3}", "window is a duration such as 30s, 5m or 1h, not '0s'"),
        ("  count: {window: 10d, min: 3}", "not '10d'"),
        ("  count: {window: 200h, min: 3}", "a count window is at most a week"),
        ("  count: {window: 60s, min: 0}", "count needs min: a whole number of 1 or more"),
        ("  count: {window: 60s, min: 3, by: [port]}", "unknown field 'port'"),
        ("  count: {window: 60s, min: 3, distinct: dst}", "detection.count.distinct: unknown field 'dst'"),
        ("  count: {window: 60s, min: 3, every: 5}", "unknown key 'every' in count"),
    ],
)
def test_count_problems(body: str, expected: str) -> None:
    text = GOOD.replace("  condition: selection and outside_maintenance", "  condition: selection\n" + body)
    assert any(expected in p for p in problems(text))


def test_a_count_reads_with_its_window_and_the_dedup_defaults_to_the_group() -> None:
    found = rule(
        "detection:\n  s: {protocol: modbus}\n  condition: s\n"
        "  count: {window: 5m, by: [src_addr], distinct: unit, min: 4}\n"
    )
    assert found.count is not None and found.count.window_ns == 300 * 10**9
    assert [f.name for f in found.count.by] == ["src_addr"] and found.count.distinct is not None
    assert [f.name for f in found.dedup] == ["src_addr"]


def test_fields_follow_the_kind() -> None:
    flows = "kind: flows\ndetection:\n  s: {packets|gte: 1000}\n  condition: s\n"
    examples = "examples:\n  positive: [{packets: 2000}]\n  negative: [{packets: 5}]\n"
    assert rule(flows, examples=examples).kind.name == "flows"
    with pytest.raises(RuleFileError, match="unknown field 'operation'"):
        rule("kind: flows\ndetection:\n  s: {operation: write}\n  condition: s\n", examples=examples)
    with pytest.raises(RuleFileError, match="unknown field 'malformed'"):
        rule("kind: flows\ndetection:\n  s: {malformed: true}\n  condition: s\n", examples=examples)


def test_the_condition_parser_knows_precedence_and_refuses_what_is_not_an_expression() -> None:
    a, b, c = Name("a"), Name("b"), Name("c")
    assert parse_condition("a or b and not c") == Or(a, And(b, Not(c)))
    assert parse_condition("(a or b) and c") == And(Or(a, b), c)
    assert parse_condition("not not a") == Not(Not(a))
    for text, offset in (("a b", 2), ("and a", 0), ("a or", 4), ("a )", 2), ("__import__('os')", 11)):
        with pytest.raises(ConditionError) as caught:
            parse_condition(text)
        assert caught.value.offset == offset, text
    with pytest.raises(ConditionError, match="too long"):
        parse_condition(" or ".join(["a"] * 150))


@pytest.mark.parametrize(
    ("technique", "reason"), [("T0999", "not an active technique"), ("T0808", "not an active")]
)
def test_a_technique_outside_the_pinned_matrix_is_refused_with_its_line(technique: str, reason: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        rule("detection:\n  s: {protocol: modbus}\n  condition: s\n", header=f"techniques: [{technique}]\n")
    assert any(reason in p.message and p.line == 4 for p in caught.value.problems), caught.value.problems


def test_a_huge_condition_is_refused_at_once() -> None:
    with pytest.raises(ConditionError, match="too long"):
        parse_condition("a " * 500_000)
    with pytest.raises(ConditionError, match="more than 200 words"):
        parse_condition(" or ".join(["a"] * 150))
