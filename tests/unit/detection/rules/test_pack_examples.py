"""Every rule file of the built-in pack loads, and every rule's examples give their verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwarden.detection.rules.examples import run_examples
from plantwarden.detection.rules.format import read_rule_file
from plantwarden.detection.rules.loader import PACK, RuleSet, rule_files

FILES = rule_files(PACK)
ENGINE_RULES = rule_files(Path(__file__).parent / "data")
"""The engine's own test rules (kept out of the shipped pack: one fires on any write by an unknown host)."""


def test_the_pack_has_rule_files_and_no_id_twice() -> None:
    found = RuleSet.load(PACK)
    assert FILES and not found.refused, "\n".join(str(p) for p in found.refused)
    assert len({r.id for r in found.rules}) == len(found.rules)


@pytest.mark.parametrize("path", FILES + ENGINE_RULES, ids=[p.name for p in FILES + ENGINE_RULES])
def test_each_rule_fires_on_its_positive_examples_and_not_on_its_negative_ones(path: Path) -> None:
    rules = read_rule_file(path)
    assert rules
    for rule in rules:
        assert rule.examples.positive and rule.examples.negative, rule.id
        failed = [str(result) for result in run_examples(rule) if not result.passed]
        assert not failed, "\n".join(failed)
