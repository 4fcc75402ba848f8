"""`plantwarden reach compare` on the Riverside model: the declared view, the stored traffic and the
firewall's ruleset read back, side by side.

A small inventory is saved: the HMI polling tank-1 (allowed) and an office workstation writing to
tank-1 (no channel allows it). The traffic the model forbids must be named; the firewall rendered
from Riverside (no gateway-only asset) must grant what the model declares; a variant marking the
boiler gateway-only, with the gateway outside every zone, must lose the supervisory zone's way to
the boiler in the firewall view only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from plantwarden.core.clock import SystemClock
from plantwarden.core.context import Context
from plantwarden.core.records.schema import Protocol
from plantwarden.core.runtime import Runtime
from plantwarden.inventory.reach_views_cli import compare_command
from plantwarden.inventory.store import save_inventory
from plantwarden.zones.firewall.render import render_ruleset
from plantwarden.zones.plant.load import load_plant
from tests.conftest import make_settings
from tests.unit.inventory.store_support import polling_edge

RIVERSIDE = Path(__file__).parents[2] / "examples" / "riverside" / "plant.yaml"
HMI, OFFICE, TANK = "127.10.1.10", "127.10.0.10", "127.10.2.11"
FORBIDDEN = (
    "traffic was seen that lets enterprise reach the zone cell-a, which the model does not allow"
    " (the firewall does not let it through)"
)


class Provider:
    """The command line's context object, as `cli` hands it to domain commands."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def runtime(self) -> Runtime:
        return self._runtime


@pytest.fixture
def provider(data_dir: Path, ctx: Context) -> Iterator[Provider]:
    runtime = Runtime(make_settings(data_dir), SystemClock())
    polling = replace(
        polling_edge(1_767_600_000), site="riverside", segment="default", client=HMI, server=TANK
    )
    writing = replace(polling, client=OFFICE, operations=frozenset({"WRITE"}), protocol=Protocol.MODBUS)
    with runtime.ready_store().transaction() as session:
        save_inventory(session, ctx, [], [polling, writing], [])
    yield Provider(runtime)
    runtime.close()


def compare(provider: Provider, *args: str) -> Result:
    result = CliRunner().invoke(compare_command, list(args), obj=provider)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def section(output: str, title: str) -> list[str]:
    lines = output.splitlines()
    start = lines.index(f"{title}:") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return lines[start:end]


def differences(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("differences ("))
    return [line.strip() for line in lines[start + 1 :]]


def test_traffic_the_model_forbids_is_named_and_the_firewall_matches_the_model(provider: Provider) -> None:
    output = compare(provider, "--plant", str(RIVERSIDE)).output
    assert "  observed traffic: 2 communication edge(s) stored for site riverside" in output.splitlines()
    assert section(output, "the firewall") == section(output, "the model")
    assert "  enterprise reaches zones: internet (1 hop); crown jewels: none" in section(output, "the model")
    observed = section(output, "observed traffic")
    assert "  enterprise reaches zones: cell-a (1 hop); crown jewels: none" in observed
    found = differences(output)
    assert found[:2] == [FORBIDDEN, FORBIDDEN.replace("the zone cell-a", "the asset tank-1")]
    unseen = "the model and the firewall let supervisory reach, but no traffic was seen doing so: zones "
    assert any(line.startswith(unseen) and "crown jewels boiler-1" in line for line in found)
    assert all(line.startswith("the model and the firewall let ") for line in found[2:]), found


def test_a_gateway_only_boiler_is_reached_the_long_way_in_the_firewall_view(
    provider: Provider, tmp_path: Path
) -> None:
    text = RIVERSIDE.read_text(encoding="utf-8")
    text = text.replace("    timezone: UTC\n", "    timezone: UTC\n    gateways: [127.10.9.5]\n", 1)
    marked = "        criticality: critical\n        gateway_only: true\n"
    text = text.replace("        criticality: critical\n", marked, 1)
    variant = tmp_path / "plant.yaml"
    variant.write_text(text, encoding="utf-8")
    assert load_plant(variant).sites[0].asset("boiler-1").gateway_only
    output = compare(provider, "--plant", str(variant)).output
    assert section(output, "the firewall") != section(output, "the model")
    found = differences(output)
    assert found[:2] == [FORBIDDEN, FORBIDDEN.replace("the zone cell-a", "the asset tank-1")]
    assert (
        found[-1]
        == "supervisory reaches the crown jewel boiler-1 in 1 hop in the model but in 2 hops in the firewall"
    )
    assert all(line.startswith("the model and the firewall let ") for line in found[2:-1]), found


def test_an_exported_text_ruleset_gives_the_rendered_view(provider: Provider, tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"):
        if os.environ.get("CI") == "true":
            pytest.fail("this test needs root, nft and unshare")
        pytest.skip("this test needs root, nft and unshare")
    exported = tmp_path / "riverside.nft"
    exported.write_text(render_ruleset(load_plant(RIVERSIDE).sites[0]), encoding="utf-8")
    rendered = compare(provider, "--plant", str(RIVERSIDE)).output
    read = compare(provider, "--plant", str(RIVERSIDE), "--firewall-file", str(exported)).output
    assert f"  the firewall: the ruleset exported to {exported}" in read.splitlines()
    assert section(read, "the firewall") == section(rendered, "the firewall")
    assert differences(read) == differences(rendered)


def test_firewall_sources_are_exclusive(provider: Provider, tmp_path: Path) -> None:
    result = CliRunner().invoke(compare_command, ["--plant", str(RIVERSIDE), "--netns", "x"], obj=provider)
    assert result.exit_code == 2 and "--netns goes with --firewall-running" in result.output
