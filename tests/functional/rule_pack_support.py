"""Running the rule pack over captures: the sensor into a data directory, the inventory's roles as
the engine's role provider, then every rule over every stored record (test support for
test_rule_pack_captures.py)."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner
from sqlalchemy import select

from plantwarden.cli.main import cli
from plantwarden.core.clock import SystemClock
from plantwarden.core.records import schema
from plantwarden.core.records.plane import RecordQuery, query
from plantwarden.core.runtime import Runtime
from plantwarden.detection.rules.compile import Providers
from plantwarden.detection.rules.detection import Detection
from plantwarden.detection.rules.engine import RuleEngine
from plantwarden.detection.rules.fields import ROLE_CODES, UNKNOWN_ROLE
from plantwarden.detection.rules.loader import RuleSet
from plantwarden.inventory.models import StoredAsset
from tests.conftest import make_settings

PACK = Path(__file__).resolve().parents[2] / "src" / "plantwarden" / "detection" / "pack"
DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "pcaps"
EVERYTHING = (0, 2**62)
KINDS = ("protocol", "protocol_read_minutes", "flows")


@dataclass(frozen=True)
class Alert:
    """Detections merged as the alerts service merges repeats: one per rule and group."""

    rule: str
    techniques: tuple[str, ...]
    group: tuple[tuple[str, Any], ...]


def pack() -> RuleSet:
    """The pack's own rules: files named `_engine-*` are the engine's test rules, not the pack's."""
    loaded = RuleSet.load(PACK)
    own = tuple(r for r in loaded.rules if not Path(r.file).name.startswith("_engine-"))
    return dataclasses.replace(loaded, rules=own)


def run_sensor(data_dir: Path, capture: Path, site: str = "default") -> None:
    """`plantwarden sensor run` over one capture, with the inventory (the roles come from it)."""
    args = ["--data-dir", str(data_dir), "sensor", "run", "--pcap", str(capture), "--site", site]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


@contextmanager
def opened(data_dir: Path) -> Iterator[Runtime]:
    runtime = Runtime(make_settings(data_dir), SystemClock())
    try:
        yield runtime
    finally:
        runtime.close()


def roles_of(runtime: Runtime) -> dict[tuple[str, bytes], int]:
    """(site, 16-byte address) -> role code, from the stored inventory."""
    found: dict[tuple[str, bytes], int] = {}
    with runtime.store().transaction() as session:
        for asset in session.scalars(select(StoredAsset)):
            code = ROLE_CODES.get(asset.role or "unknown", UNKNOWN_ROLE)
            for entry in asset.ips:
                found[(asset.site, schema.address(str(ipaddress.ip_address(entry["address"]))))] = code
    return found


def role_provider(roles: dict[tuple[str, bytes], int]) -> Providers:
    def lookup(sites: Any, addresses: Any) -> Any:
        codes = [roles.get((str(s), bytes(a)), UNKNOWN_ROLE) for s, a in zip(sites, addresses, strict=True)]
        return np.asarray(codes, dtype=np.uint8)

    return Providers(roles=lookup)


def detections(
    runtime: Runtime, rules: RuleSet, roles: dict[tuple[str, bytes], int] | None = None
) -> list[Detection]:
    """Every rule over every stored record of the data directory, kind by kind, in time order; the
    roles are the inventory's after the run unless given (e.g. learned before an attack)."""
    engine = RuleEngine(rules.rules, role_provider(roles_of(runtime) if roles is None else roles))
    found: list[Detection] = []
    for kind in KINDS:
        batch = query(runtime.records(), RecordQuery(kind, *EVERYTHING))
        found += engine.check(batch.sorted_by_time())
    return found


def alerts(found: list[Detection]) -> set[Alert]:
    return {Alert(d.rule.id, d.rule.techniques, d.group) for d in found}


def alerts_of_capture(
    data_dir: Path,
    capture: Path,
    rules: RuleSet,
    site: str = "default",
    roles: dict[tuple[str, bytes], int] | None = None,
) -> set[Alert]:
    run_sensor(data_dir, capture, site)
    with opened(data_dir) as runtime:
        return alerts(detections(runtime, rules, roles))
