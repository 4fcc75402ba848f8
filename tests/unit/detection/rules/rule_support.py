"""Helpers for the rule engine's tests: rules from YAML text, batches from record mappings."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import PROTOCOL_RECORDS, RecordKind
from plantwarden.detection.rules.examples import example_batch
from plantwarden.detection.rules.fields import FIELDS
from plantwarden.detection.rules.format import read_rules
from plantwarden.detection.rules.model import Rule
from plantwarden.detection.rules.values import example_value

EXAMPLES = """
examples:
  positive: [{protocol: modbus}]
  negative: [{protocol: s7comm}]
"""


def rule(body: str, *, examples: str = EXAMPLES, header: str = "") -> Rule:
    """A rule from its detection (and other keys), with filler id, title, severity and examples."""
    text = (
        "id: pw-test\ntitle: test rule\nseverity: high\n"
        + textwrap.dedent(header)
        + textwrap.dedent(body)
        + textwrap.dedent(examples)
    )
    return read_rules(text, "test.yaml")[0]


def batch(records: Sequence[Mapping[str, Any]], kind: RecordKind = PROTOCOL_RECORDS) -> RecordBatch:
    """A batch of records written as in examples (names, IP text, hex), defaults elsewhere."""
    fields = FIELDS[kind.name]
    typed = [{k: example_value(fields[k], v) for k, v in r.items() if k in kind.names} for r in records]
    found, _ = example_batch(kind, typed)
    return found


def second(n: float) -> int:
    return int(n * 1_000_000_000)
