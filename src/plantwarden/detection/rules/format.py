"""Reading rule files: YAML (one rule, or a list under `rules:`) into `Rule` values, with the file,
line and column of every problem (docs/detection.md describes the format).

The YAML is read by `zones.plant.source.read_source`, which keeps every value's position and
refuses aliases, duplicate keys and YAML 1.1 surprises. Everything is checked: the fields against
the record kind's columns and derived fields, each modifier against the field's type, the
condition's names against the selections, techniques against the ATT&CK id forms.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path as FilePath
from typing import Any

from plantwarden.alerts.attack import MATRIX_VERSION, is_active
from plantwarden.alerts.models import Severity
from plantwarden.core.errors import InvalidInput
from plantwarden.core.parsing import NotUtf8Text, utf8_text
from plantwarden.detection.rules.condition import ConditionError, names, parse_condition
from plantwarden.detection.rules.examples_format import read_examples
from plantwarden.detection.rules.fields import FIELDS, RULE_KINDS
from plantwarden.detection.rules.model import Rule
from plantwarden.detection.rules.selections import RuleReader, read_count, read_selections
from plantwarden.zones.plant.source import Path, Problem, Source, SourceError, read_source

ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
TECHNIQUE = re.compile(r"^(T0\d{3}|T1\d{3}(\.\d{3})?)$")
CONFIDENCES = ("low", "medium", "high")
SEVERITIES = {s.name.lower(): s for s in Severity}
KEYS = frozenset(
    {
        "id",
        "title",
        "description",
        "severity",
        "confidence",
        "techniques",
        "kind",
        "detection",
        "severity_in_maintenance",
        "dedup",
        "examples",
        "references",
        "author",
        "notes",
    }
)
MAX_RULE_BYTES = 1024 * 1024


class RuleFileError(InvalidInput):
    """A rule file that cannot be used, with every problem found (file:line:column: reason)."""

    code = "invalid_rule_file"

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = tuple(problems)


def read_rule_file(path: FilePath) -> list[Rule]:
    """The rules of one file; `RuleFileError` naming every problem."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RuleFileError([Problem(str(path), 1, 1, f"cannot be read: {error.strerror}")]) from None
    if len(data) > MAX_RULE_BYTES:
        raise RuleFileError([Problem(str(path), 1, 1, "a rule file is at most 1 MiB")])
    try:
        text = utf8_text(data)
    except NotUtf8Text as error:
        raise RuleFileError([Problem(str(path), error.line, error.column, str(error))]) from None
    return read_rules(text, str(path))


def read_rules(text: str, file: str) -> list[Rule]:
    """The rules written in `text` (named `file` in problems)."""
    try:
        source = read_source(text, file, "a rule (id:, title:, ...) or rules: and a list of them")
    except SourceError as error:
        raise RuleFileError([error.problem]) from None
    data = source.data
    if set(data) == {"rules"}:
        if not isinstance(data["rules"], list) or not data["rules"]:
            raise RuleFileError([source.problem(("rules",), "rules: must be a list of rules")])
        entries: list[tuple[Path, Any]] = [(("rules", i), r) for i, r in enumerate(data["rules"])]
    else:
        entries = [((), data)]
    problems: list[Problem] = []
    rules = [rule for path, entry in entries if (rule := _rule(source, path, entry, problems))]
    seen: dict[str, Path] = {}
    for (path, _), rule in zip(entries, rules, strict=False):
        if rule.id in seen:
            problems.append(source.problem((*path, "id"), f"rule id {rule.id!r} is written twice"))
        seen[rule.id] = path
    if problems:
        raise RuleFileError(problems)
    return rules


def _rule(source: Source, path: Path, data: Any, problems: list[Problem]) -> Rule | None:
    if not isinstance(data, dict):
        problems.append(source.problem(path, "a rule must be a mapping (id:, title:, detection: ...)"))
        return None
    reader = RuleReader(source, path, problems)
    for key in sorted(set(data) - KEYS):
        reader.report((key,), f"unknown key {key!r} (known: {', '.join(sorted(KEYS))})", key=True)
    before = len(problems)
    parts = _header(reader, data)
    kind = RULE_KINDS.get(str(data.get("kind", "protocol")))
    if kind is None:
        reader.report(("kind",), f"kind is one of {', '.join(RULE_KINDS)}")
        return None
    fields = FIELDS[kind.name]
    detection = reader.mapping(data, "detection")
    selections = read_selections(reader, detection, fields)
    condition = _condition(reader, detection, set(selections))
    count = read_count(reader, detection, fields)
    dedup = reader.field_list(data, ("dedup",), fields)
    examples = read_examples(reader, data.get("examples"), fields, count is not None)
    if len(problems) > before or condition is None:
        return None
    return Rule(
        kind=kind,
        selections=selections,
        condition=condition,
        count=count,
        dedup=tuple(dedup) if "dedup" in data else (count.by if count else ()),
        examples=examples,
        file=source.file,
        line=source.position(path)[0],
        **parts,
    )


def _header(reader: RuleReader, data: dict[str, Any]) -> dict[str, Any]:
    rule_id = reader.text(data, "id", required=True)
    if rule_id and not ID.fullmatch(rule_id):
        reader.report(("id",), "an id is lower-case letters, digits and single hyphens (pw-s7-plc-stop)")
    techniques = reader.text_list(data, "techniques")
    for index, technique in enumerate(techniques):
        if not TECHNIQUE.fullmatch(technique):
            reader.report(("techniques", index), f"{technique!r} is not an ATT&CK id (T0881, T1110.001)")
        elif not is_active(technique):
            reader.report(
                ("techniques", index),
                f"{technique} is not an active technique of ATT&CK for ICS {MATRIX_VERSION}"
                " (nor an Enterprise technique the product uses)",
            )
    confidence = reader.text(data, "confidence") or "medium"
    if confidence not in CONFIDENCES:
        reader.report(("confidence",), f"confidence is one of {', '.join(CONFIDENCES)}")
    lowered = reader.text(data, "severity_in_maintenance")
    return {
        "id": rule_id,
        "title": reader.text(data, "title", required=True),
        "description": reader.text(data, "description"),
        "severity": _severity(reader, "severity", reader.text(data, "severity", required=True))
        or Severity.MEDIUM,
        "confidence": confidence,
        "techniques": tuple(techniques),
        "severity_in_maintenance": _severity(reader, "severity_in_maintenance", lowered) if lowered else None,
    }


def _severity(reader: RuleReader, key: str, text: str) -> Severity | None:
    if text not in SEVERITIES:
        if text:
            reader.report((key,), f"{key} is one of {', '.join(SEVERITIES)}, not {text!r}")
        return None
    return SEVERITIES[text]


def _condition(reader: RuleReader, detection: dict[str, Any], selections: set[str]) -> Any:
    text = detection.get("condition")
    if not isinstance(text, str) or not text.strip():
        reader.report(("detection", "condition"), "detection needs a condition (e.g. condition: selection)")
        return None
    try:
        expression = parse_condition(text)
    except ConditionError as error:
        reader.report(
            ("detection", "condition"), f"condition {text!r}, at character {error.offset + 1}: {error}"
        )
        return None
    unknown = sorted(names(expression) - selections)
    if unknown:
        known = ", ".join(sorted(selections)) or "none"
        reader.report(
            ("detection", "condition"), f"condition names no selection {unknown} (selections: {known})"
        )
        return None
    return expression
