"""`plantwarden zones suggest` on the simulated plant: the traffic of about three minutes (no
attacks) through `sim generate` and `sensor run`, then the draft from the stored inventory.

The draft must load, its zones must be the simulator's four zones' subnets at their Purdue
levels (the ground truth of `sim.plant.default_plant()`) plus the outside, and every stored
communication between two zones must be carried by a channel in its direction and port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from plantwarden.cli.main import cli
from plantwarden.core.clock import SystemClock
from plantwarden.core.errors import Conflict
from plantwarden.core.runtime import Runtime
from plantwarden.inventory.queries import EdgeFilter, list_edges
from plantwarden.inventory.zoning import ObservedEdge
from plantwarden.inventory.zoning_cli import suggest_command
from plantwarden.sim.plant import default_plant
from plantwarden.sim.traffic.network import INTERNET
from plantwarden.zones.plant.load import load_plant
from tests.conftest import make_settings
from tests.unit.inventory.zoning_support import uncovered

SITE = "riverside"
PACKETS = 8_000
"""About 2 minutes 40 seconds of the plant: every host has spoken, the engineer included."""


class Provider:
    """The command line's context object, as `cli` hands it to domain commands."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def runtime(self) -> Runtime:
        return self._runtime


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the inventory the sensor built from the generated plant."""
    directory = tmp_path_factory.mktemp("suggest")
    capture = directory / "plant.pcap"
    run_cli("sim", "generate", "--seed", "11", "--packets", str(PACKETS), str(capture))
    run_cli("--data-dir", str(directory / "data"), "sensor", "run", "--pcap", str(capture), "--site", SITE)
    return directory / "data"


@pytest.fixture
def provider(data_dir: Path) -> Iterator[Provider]:
    runtime = Runtime(make_settings(data_dir), SystemClock())
    yield Provider(runtime)
    runtime.close()


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def suggest(provider: Provider, *args: str) -> Result:
    result = CliRunner().invoke(
        suggest_command, ["--site", SITE, *args], obj=provider, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result


def test_the_draft_of_the_simulated_plant_has_its_zones_levels_and_every_flow(
    provider: Provider, tmp_path: Path
) -> None:
    draft = tmp_path / "plant.yaml"
    result = suggest(provider, "-o", str(draft))
    assert result.stdout == ""
    assert (
        result.stderr.startswith("suggested 5 zones, 6 conduits (")
        and f"wrote it to {draft}" in result.stderr
    )
    (site,) = load_plant(draft).sites
    truth = {zone.subnet: zone.purdue_level for zone in default_plant().zones}
    local = {str(subnet): zone.purdue_level for zone in site.zones for subnet in zone.subnets}
    assert local == {subnet: float(level) for subnet, level in truth.items()}
    assert truth == {"127.10.0.0/24": 4, "127.10.1.0/24": 2, "127.10.2.0/24": 1, "127.10.3.0/24": 1}
    (outside,) = [zone for zone in site.zones if not zone.subnets]
    assert (outside.id, outside.purdue_level) == ("external", 5)
    assert [str(a) for asset_id in outside.assets for a in site.asset(asset_id).addresses] == [
        INTERNET.address
    ]

    with provider.runtime().ready_store().transaction() as session:
        edges = [ObservedEdge.of(e.edge) for e in list_edges(session, EdgeFilter(site=SITE, limit=10_000))]
    assert len(edges) > 20
    assert uncovered(site, edges) == []
    plcs = [asset for asset in site.assets if asset.id.startswith("plc-")]
    assert len(plcs) == 6 and {asset.criticality for asset in plcs} == {"high"}


def test_the_draft_goes_to_stdout_and_a_file_is_never_overwritten_unasked(
    provider: Provider, tmp_path: Path
) -> None:
    printed = suggest(provider).stdout
    assert printed.startswith("# A draft of the plant model of site riverside")
    draft = tmp_path / "plant.yaml"
    draft.write_text("mine\n", encoding="utf-8")
    with pytest.raises(Conflict, match="exists: choose another file or add --force"):
        CliRunner().invoke(
            suggest_command, ["--site", SITE, "-o", str(draft)], obj=provider, catch_exceptions=False
        )
    assert draft.read_text(encoding="utf-8") == "mine\n"
    suggest(provider, "-o", str(draft), "--force")
    assert draft.read_text(encoding="utf-8") == printed
    assert not list(tmp_path.glob("*.partial"))


def test_a_site_without_inventory_and_a_bad_network_are_clear_errors(provider: Provider) -> None:
    for arguments, message in (
        (["--site", "elsewhere"], "site 'elsewhere' has no stored hosts or communications"),
        (["--site", SITE, "--local", "10.0.0.0/33"], "--local '10.0.0.0/33' is not a network"),
    ):
        result = CliRunner().invoke(suggest_command, arguments, obj=provider)
        assert result.exit_code != 0 and message in str(result.exception), arguments
