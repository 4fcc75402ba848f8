"""The MITRE ATT&CK matrix Plantwarden maps its alerts to, pinned and shipped with the package.

`ics-attack-<MATRIX_VERSION>.json` holds every technique of ATT&CK for ICS at that version
(deprecated and revoked ones included, marked inactive) and its tactics; `enterprise-subset.json`
holds the few Enterprise techniques Plantwarden uses where the ICS matrix has none (brute force
against the console, valid accounts, disabling the sensor). Both are read once, offline.
See README.md in this folder for where they come from.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from plantwarden.core.errors import ConfigurationError

MATRIX_VERSION = "18.0"
ICS_FILE = f"ics-attack-{MATRIX_VERSION}.json"
ENTERPRISE_FILE = "enterprise-subset.json"
TECHNIQUE_ID = re.compile(r"T\d{4}(\.\d{3})?")
TECHNIQUE_URL = "https://attack.mitre.org/techniques/"


@dataclass(frozen=True, slots=True)
class Technique:
    """One ATT&CK technique: its id (T0855, T1110.001), name, tactic short names and domain."""

    id: str
    name: str
    tactics: tuple[str, ...]
    active: bool
    domain: str

    @property
    def url(self) -> str:
        """The technique's page on attack.mitre.org (sub-techniques under their parent)."""
        return TECHNIQUE_URL + self.id.replace(".", "/") + "/"


@dataclass(frozen=True, slots=True)
class Tactic:
    """One tactic of ATT&CK for ICS (TA0108 Initial Access, short name `initial-access`)."""

    id: str
    name: str
    shortname: str


def technique(technique_id: str) -> Technique | None:
    """The technique with this id in the pinned matrix or the Enterprise subset, or None."""
    return techniques().get(technique_id)


def is_active(technique_id: str) -> bool:
    """Whether this id names a technique that is neither deprecated nor revoked in the pinned data."""
    found = technique(technique_id)
    return found is not None and found.active


@functools.cache
def techniques() -> Mapping[str, Technique]:
    """Every pinned technique by id: ATT&CK for ICS first, then the Enterprise subset."""
    found: dict[str, Technique] = {}
    for document in (_load(ICS_FILE), _load(ENTERPRISE_FILE)):
        for entry in document["techniques"]:
            _add(found, _technique(entry, document["domain"]))
    return found


@functools.cache
def tactics() -> tuple[Tactic, ...]:
    """The tactics of ATT&CK for ICS in the matrix's column order."""
    return tuple(Tactic(t["id"], t["name"], t["shortname"]) for t in _load(ICS_FILE)["tactics"])


def _load(name: str) -> Any:
    text = resources.files("plantwarden.alerts.attack").joinpath(name).read_text("utf-8")
    document = json.loads(text)
    if name == ICS_FILE and document.get("version") != MATRIX_VERSION:
        raise ConfigurationError(
            f"{name} holds ATT&CK for ICS {document.get('version')}, the code expects {MATRIX_VERSION}"
        )
    return document


def _technique(entry: Mapping[str, Any], domain: str) -> Technique:
    technique_id = entry["id"]
    if not TECHNIQUE_ID.fullmatch(technique_id):
        raise ConfigurationError(f"the pinned ATT&CK data has a malformed technique id {technique_id!r}")
    return Technique(technique_id, entry["name"], tuple(entry["tactics"]), bool(entry["active"]), domain)


def _add(found: dict[str, Technique], new: Technique) -> None:
    if new.id in found:
        raise ConfigurationError(f"the pinned ATT&CK data lists technique {new.id} twice")
    found[new.id] = new
