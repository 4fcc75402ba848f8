"""The pinned ATT&CK data: it loads, it is well formed, and every technique the code uses is in it."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from plantwarden.alerts import attack
from plantwarden.alerts.attack import matrix
from plantwarden.alerts.errors import InvalidAlert
from plantwarden.alerts.models import Severity
from plantwarden.alerts.services import AlertDraft, raise_alert
from plantwarden.core import migrate
from plantwarden.core.context import Context
from plantwarden.core.db import Store

SOURCE = Path(attack.__file__).resolve().parents[2]  # src/plantwarden
ICS_ID = re.compile(r"T0\d{3}")
ENTERPRISE_ID = re.compile(r"T1\d{3}(\.\d{3})?")
TECHNIQUE = matrix.TECHNIQUE_ID
DEPRECATED_IN_18 = (
    "T0808", "T0810", "T0818", "T0824", "T0825", "T0833",
    "T0841", "T0844", "T0850", "T0854", "T0870", "T0875",
)  # fmt: skip


def document(name: str) -> Any:
    return json.loads(resources.files("plantwarden.alerts.attack").joinpath(name).read_text("utf-8"))


def test_the_pinned_file_is_ics_attack_18_with_its_provenance() -> None:
    ics = document(matrix.ICS_FILE)
    assert attack.MATRIX_VERSION == "18.0" == ics["version"]
    assert ics["domain"] == "ics-attack"
    assert ics["source"].endswith("/ics-attack/ics-attack-18.0.json")
    assert "permission of The MITRE Corporation" in ics["terms"]
    assert len(ics["techniques"]) == ics["collection_attack_patterns"] == 95


def test_counts_of_techniques_and_tactics() -> None:
    ics = [t for t in attack.techniques().values() if t.domain == "ics-attack"]
    assert len(ics) == 95
    assert sum(t.active for t in ics) == 83
    assert [t.id for t in attack.tactics()][:2] == ["TA0108", "TA0104"]
    assert len({t.shortname for t in attack.tactics()}) == 12


def test_ids_are_unique_sorted_and_well_formed() -> None:
    for name, pattern in ((matrix.ICS_FILE, ICS_ID), (matrix.ENTERPRISE_FILE, ENTERPRISE_ID)):
        ids = [t["id"] for t in document(name)["techniques"]]
        assert ids == sorted(set(ids)), name
        assert [i for i in ids if not pattern.fullmatch(i)] == [], name


def test_every_ics_technique_names_known_tactics() -> None:
    shortnames = {t.shortname for t in attack.tactics()}
    for found in attack.techniques().values():
        assert found.name.strip() == found.name != ""
        if found.domain == "ics-attack":
            assert found.tactics and set(found.tactics) <= shortnames, found.id


@pytest.mark.parametrize(
    ("technique_id", "name", "tactics"),
    [
        ("T0881", "Service Stop", ("inhibit-response-function",)),
        ("T0843", "Program Download", ("lateral-movement",)),
        ("T0816", "Device Restart/Shutdown", ("inhibit-response-function",)),
        ("T0855", "Unauthorized Command Message", ("impair-process-control",)),
        ("T0858", "Change Operating Mode", ("execution", "evasion")),
        ("T0859", "Valid Accounts", ("persistence", "lateral-movement")),
        ("T0894", "System Binary Proxy Execution", ("evasion",)),
        ("T1110", "Brute Force", ("credential-access",)),
        ("T1110.001", "Password Guessing", ("credential-access",)),
        (
            "T1078",
            "Valid Accounts",
            ("defense-evasion", "persistence", "privilege-escalation", "initial-access"),
        ),
        ("T1562.001", "Disable or Modify Tools", ("defense-evasion",)),
    ],
)
def test_known_techniques_are_present_and_active(
    technique_id: str, name: str, tactics: tuple[str, ...]
) -> None:
    found = attack.technique(technique_id)
    assert found is not None
    assert (found.name, found.tactics, found.active) == (name, tactics, True)
    assert attack.is_active(technique_id)


def test_deprecated_techniques_are_kept_but_inactive() -> None:
    inactive = sorted(t.id for t in attack.techniques().values() if not t.active)
    assert inactive == list(DEPRECATED_IN_18)
    named = attack.technique("T0833")
    assert named is not None and named.name == "Modify Control Logic"
    assert not attack.is_active("T0833")


@pytest.mark.parametrize("technique_id", ["T0999", "T1110.999", "t0855", "T0855 ", "", "TA0108"])
def test_unknown_or_malformed_ids_are_neither_found_nor_active(technique_id: str) -> None:
    assert attack.technique(technique_id) is None
    assert not attack.is_active(technique_id)


def test_urls_point_at_attack_mitre_org() -> None:
    service_stop, guessing = attack.technique("T0881"), attack.technique("T1110.001")
    assert service_stop is not None and guessing is not None
    assert service_stop.url == "https://attack.mitre.org/techniques/T0881/"
    assert guessing.url == "https://attack.mitre.org/techniques/T1110/001/"


def test_the_data_is_loaded_once() -> None:
    assert attack.techniques() is attack.techniques()
    assert attack.tactics() is attack.tactics()


def _python_ids(path: Path) -> Iterator[str]:
    # String values that are exactly an id: technique tuples and rule fields, not ids quoted in prose.
    for node in ast.walk(ast.parse(path.read_text("utf-8"), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and TECHNIQUE.fullmatch(node.value):
            yield node.value


def _yaml_ids(value: Any) -> Iterator[str]:
    if isinstance(value, str) and TECHNIQUE.fullmatch(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _yaml_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _yaml_ids(item)


def used_technique_ids() -> dict[str, set[str]]:
    """Every technique id the code and the rule files use, with the files using it."""
    used: dict[str, set[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        for found in _python_ids(path):
            used.setdefault(found, set()).add(str(path.relative_to(SOURCE)))
    for path in sorted([*SOURCE.rglob("*.yaml"), *SOURCE.rglob("*.yml")]):
        for found in _yaml_ids(yaml.safe_load(path.read_text("utf-8"))):
            used.setdefault(found, set()).add(str(path.relative_to(SOURCE)))
    return used


def test_every_technique_the_code_and_rules_use_is_active() -> None:
    used = used_technique_ids()
    assert "detection/pack/writes.yaml" in {p for paths in used.values() for p in paths}
    inactive = {found: sorted(paths) for found, paths in used.items() if not attack.is_active(found)}
    assert inactive == {}


def test_the_scan_reads_id_values_not_ids_quoted_in_prose(tmp_path: Path) -> None:
    code = tmp_path / "rule.py"
    code.write_text('"""Maps to T0833 (see T0855)."""\nTECHNIQUES = ("T0833", "T1110.001")\n', "utf-8")
    assert sorted(_python_ids(code)) == ["T0833", "T1110.001"]
    rules = yaml.safe_load("# T0855 in a comment\nrules:\n  - techniques: [T0833]\n    title: not T0843\n")
    assert list(_yaml_ids(rules)) == ["T0833"]
    assert not attack.is_active("T0833")


def test_an_alert_with_an_unknown_or_deprecated_technique_is_refused(store: Store, ctx: Context) -> None:
    migrate.ensure_ready(store)
    for bad in ("T0999", "T0808"):  # unknown; deprecated in the pinned matrix
        draft = AlertDraft(
            site="plant-a",
            title="t",
            severity=Severity.LOW,
            detector="d",
            rule_id="r",
            rule_name="r",
            techniques=("T0855", bad),
        )
        with pytest.raises(InvalidAlert, match=bad), store.transaction() as session:
            raise_alert(session, ctx, draft)
