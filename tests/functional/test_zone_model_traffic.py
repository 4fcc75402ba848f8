"""The Riverside model against the simulated plant's own traffic: the corrected model yields no
violation; removing any one conduit or channel brings back exactly the traffic it carried, as
violations; the attacks break it. The expectation is computed here, from the model and the
stored records with `ipaddress`, independently of the detection code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from plantwarden.cli.main import cli
from plantwarden.core.clock import SystemClock
from plantwarden.core.runtime import Runtime
from plantwarden.detection.zone_check import check_stored
from plantwarden.sim.traffic.generator import generate
from plantwarden.zones.plant.load import load_plant
from plantwarden.zones.plant.model import SiteModel
from tests.conftest import make_settings
from tests.functional.zone_traffic_support import (
    EVERYTHING,
    allowed,
    crossing,
    mutations,
    observed,
    violating_pairs,
)

RIVERSIDE = Path(__file__).resolve().parents[2] / "examples" / "riverside" / "plant.yaml"
SITE = load_plant(RIVERSIDE).site("riverside")


def run(data_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A data directory holding the records of the plant's traffic without attacks."""
    directory = tmp_path_factory.mktemp("clean")
    capture = generate(directory / "plant.pcap", seed=11, packets=20_000).capture
    said = run(
        directory / "data",
        "sensor",
        "run",
        "--pcap",
        str(capture),
        "--site",
        "riverside",
        "--plant",
        str(RIVERSIDE),
    )
    assert "records checked against site riverside, 0 violations reported as alerts" in said
    runtime = Runtime(make_settings(directory / "data"), SystemClock())
    yield runtime
    runtime.close()


def test_the_corrected_model_allows_all_of_the_plant_s_traffic(clean: Runtime) -> None:
    traffic = crossing(SITE, observed(clean))
    assert len({(t[0], t[1]) for t in traffic}) >= 20, "too little traffic crosses zones to mean anything"
    assert all(allowed(SITE, t) for t in traffic)
    assert violating_pairs(clean, SITE) == set()


MUTATIONS = mutations(SITE)


@pytest.mark.parametrize(("removed", "mutated"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_removing_a_conduit_or_channel_brings_its_traffic_back(
    clean: Runtime, removed: str, mutated: SiteModel
) -> None:
    traffic = crossing(SITE, observed(clean))
    expected = {(t[0], t[1]) for t in traffic if not allowed(mutated, t)}
    assert expected, f"the plant's traffic uses no part of {removed}: the mutation shows nothing"
    assert violating_pairs(clean, mutated) == expected


def test_the_attacks_break_the_model(tmp_path: Path) -> None:
    capture = generate(
        tmp_path / "attack.pcap", seed=11, packets=20_000, attacks=("unauthorized-write",)
    ).capture
    said = run(
        tmp_path / "data",
        "sensor",
        "run",
        "--pcap",
        str(capture),
        "--site",
        "riverside",
        "--plant",
        str(RIVERSIDE),
    )
    assert "0 violations" not in said
    runtime = Runtime(make_settings(tmp_path / "data"), SystemClock())
    try:
        report = check_stored(runtime.records(), SITE, *EVERYTHING)
    finally:
        runtime.close()
    office, tank = "127.10.0.10", "127.10.2.11"
    found = {(v.rule, v.operation) for v in report.violations if (v.src, v.dst) == (office, tank)}
    assert ("zone.channel-not-allowed", "write") in found
    assert {(v.src, v.dst) for v in report.violations} == {(office, tank)} | {
        (v.src, v.dst) for v in report.violations if v.src == office
    }
    assert np.all([v.src_zone == "enterprise" for v in report.violations])
