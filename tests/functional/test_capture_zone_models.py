"""The example plant models of the shared captures' networks (examples/captures/<name>/plant.yaml)
against the captures themselves: each corrected model yields no violation on its capture, and
removing any one conduit or channel brings back exactly the traffic it carried, as violations.
The expectation is computed here from the model and the stored records with `ipaddress`
(`zone_traffic_support`), independently of the detection code.

A capture where the sensor stores a record that misstates the traffic shows a violation no
honest model can avoid: such records go into `Case.sensor_errors` (and a comment at the top of
the model), are expected as violations, and the test fails as soon as the sensor is fixed, so
that the entry is removed. None is listed now."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.cli.main import cli
from plantwarden.core.clock import SystemClock
from plantwarden.core.runtime import Runtime
from plantwarden.zones.plant.load import load_plant
from plantwarden.zones.plant.model import SiteModel
from tests.conftest import make_settings
from tests.functional.zone_traffic_support import (
    Pair,
    allowed,
    crossing,
    mutations,
    observed,
    violating_pairs,
)

DATASETS = Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "captures"


@dataclass(frozen=True)
class Case:
    """A shared capture, the example model of its network (site id = `name`), and the pairs the
    sensor misstates: records no honest model can allow."""

    name: str
    capture: str
    sensor_errors: frozenset[Pair] = frozenset()

    @property
    def plant(self) -> Path:
        return EXAMPLES / self.name / "plant.yaml"

    @property
    def site(self) -> SiteModel:
        return load_plant(self.plant).site(self.name)


CASES = (
    Case("modbus-long", "pcaps/iti-ics-security-tools/modbus/long/ModbusTCP.pcap"),
    Case("lemay-6rtu", "pcaps/lemay-modbus-cset16/characterization_modbus_6RTU_with_operate.pcap"),
    Case("dnp3-example", "pcaps/cisagov-icsnpp/dnp3/dnp3_example.pcap"),
    Case("enip-example", "pcaps/cisagov-icsnpp/enip/enip_cip_example.pcap"),
    Case("s7comm-clean", "pcaps/iti-ics-security-tools/s7comm/long/s7comm_clean.pcap"),
    Case("iec104-energy", "pcaps/ipal-energy-iec104/orig.pcap"),
    Case("bacnet-example", "pcaps/cisagov-icsnpp/bacnet/bacnet_example.pcap"),
)
MUTATIONS = [(case, removed, mutated) for case in CASES for removed, mutated in mutations(case.site)]


@dataclass
class Sensed:
    """A capture run through the sensor with its model: what it said, and its data directory."""

    said: str
    runtime: Runtime


@pytest.fixture(scope="module")
def sensed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Case], Sensed]]:
    """The sensor's run over a case's capture, once per capture for the whole module."""
    runs: dict[str, Sensed] = {}

    def run(case: Case) -> Sensed:
        capture = DATASETS / case.capture
        if not capture.is_file():
            pytest.skip(f"the shared capture {capture} is absent (set PW_DATASETS to the shared datasets)")
        if case.name not in runs:
            directory = tmp_path_factory.mktemp(case.name)
            said = sense(directory, capture, case)
            runs[case.name] = Sensed(said, Runtime(make_settings(directory), SystemClock()))
        return runs[case.name]

    yield run
    for done in runs.values():
        done.runtime.close()


def sense(directory: Path, capture: Path, case: Case) -> str:
    arguments = ["sensor", "run", "--pcap", str(capture), "--site", case.name, "--plant", str(case.plant)]
    result = CliRunner().invoke(cli, ["--data-dir", str(directory), *arguments], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_corrected_model_allows_all_of_the_capture_s_traffic(
    sensed: Callable[[Case], Sensed], case: Case
) -> None:
    done = sensed(case)
    site = case.site
    traffic = crossing(site, observed(done.runtime))
    assert traffic, f"no traffic of {case.capture} crosses the zones of {case.plant}"
    refused = {(t[0], t[1]) for t in traffic if not allowed(site, t)}
    assert refused == case.sensor_errors, "the model leaves traffic of the capture unexplained"
    assert violating_pairs(done.runtime, site) == case.sensor_errors
    counted = f"records checked against site {case.name}, {len(case.sensor_errors)} violations reported"
    assert counted in done.said, done.said


@pytest.mark.parametrize(
    ("case", "removed", "mutated"), MUTATIONS, ids=[f"{m[0].name}: {m[1]}" for m in MUTATIONS]
)
def test_removing_a_conduit_or_channel_brings_its_traffic_back(
    sensed: Callable[[Case], Sensed], case: Case, removed: str, mutated: SiteModel
) -> None:
    runtime = sensed(case).runtime
    traffic = crossing(case.site, observed(runtime))
    expected = {(t[0], t[1]) for t in traffic if not allowed(mutated, t)}
    shown = expected - case.sensor_errors
    assert shown, f"{case.capture} uses no part of {removed}: the mutation shows nothing"
    assert violating_pairs(runtime, mutated) == expected
