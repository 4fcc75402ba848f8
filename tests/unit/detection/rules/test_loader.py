"""Rule directories: broken files refused with their position while the others load; reloads."""

from __future__ import annotations

import os
from pathlib import Path

from plantwarden.detection.rules.loader import RuleSet

RULE = """\
id: {rule_id}
title: Modbus write
severity: medium
detection:
  s: {{protocol: modbus, operation: write}}
  condition: s
examples:
  positive: [{{protocol: modbus, operation: write}}]
  negative: [{{protocol: modbus, operation: read}}]
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_broken_file_is_refused_with_its_position_while_the_others_load(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", RULE.format(rule_id="pw-a"))
    write(tmp_path / "sub" / "b.yml", RULE.format(rule_id="pw-b"))
    write(
        tmp_path / "c.yaml", RULE.format(rule_id="pw-c").replace("operation: write}", "operaton: write}", 1)
    )
    write(tmp_path / "d.yaml", RULE.format(rule_id="pw-a"))
    write(tmp_path / "notes.txt", "not a rule")
    found = RuleSet.load(tmp_path)
    assert sorted(r.id for r in found.rules) == ["pw-a", "pw-b"]
    problems = [str(p) for p in found.refused]
    assert problems[0].startswith(
        f"{tmp_path / 'c.yaml'}:5:35: detection.s.operaton: unknown field 'operaton'"
    )
    assert (
        problems[-1]
        == f"{tmp_path / 'd.yaml'}:1:1: rule id 'pw-a' is already used in {tmp_path / 'a.yaml'}:1"
    )


def test_reload_if_changed_sees_new_changed_and_removed_files_only(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", RULE.format(rule_id="pw-a"))
    first = RuleSet.load(tmp_path)
    assert first.reload_if_changed() is None
    write(tmp_path / "b.yaml", RULE.format(rule_id="pw-b"))
    second = first.reload_if_changed()
    assert second is not None and sorted(r.id for r in second.rules) == ["pw-a", "pw-b"]
    assert second.reload_if_changed() is None
    path = tmp_path / "a.yaml"
    write(path, RULE.format(rule_id="pw-a").replace("medium", "high"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    third = second.reload_if_changed()
    assert third is not None and third.by_id()["pw-a"].severity.name == "HIGH"
    (tmp_path / "b.yaml").unlink()
    fourth = third.reload_if_changed()
    assert fourth is not None and [r.id for r in fourth.rules] == ["pw-a"]
