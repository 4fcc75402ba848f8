"""plant.yaml's Modbus unit ids: 1-247 or 255; the shipped models still load."""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwarden.cli.demo import demo_plant
from plantwarden.zones.plant.load import load_plant, load_plant_bytes
from plantwarden.zones.plant.model import SiteModel
from tests.unit.zones.test_plant_load import MINIMAL, problems

ROOT = Path(__file__).resolve().parents[3]


def with_assets(*assets: str, gateways: str = "") -> str:
    text = (
        MINIMAL.replace("    zones:\n", f"    gateways: [{gateways}]\n    zones:\n", 1)
        if gateways
        else MINIMAL
    )
    return text + "    assets:\n" + "".join(f"      - {{{asset}}}\n" for asset in assets)


def site(text: str) -> SiteModel:
    return load_plant_bytes(text.encode()).site("plant-a")


@pytest.mark.parametrize(
    ("unit_id", "reason"),
    [
        (0, "unit id 0 is the broadcast address (every unit on a serial line, none answers)"),
        (248, "unit id 248 is reserved (248-254)"),
        (254, "unit id 254 is reserved (248-254)"),
    ],
)
def test_a_unit_id_is_1_to_247_or_255(unit_id: int, reason: str) -> None:
    text = with_assets(f"id: rtu-1, address: 10.1.1.21, unit_id: {unit_id}")
    [(_, _, message)] = problems(text)
    assert message == f"{reason}: use 1-247, or 255 for a Modbus/TCP device that takes no unit id"


@pytest.mark.parametrize("unit_id", [1, 247, 255])
def test_unit_ids_in_range_load(unit_id: int) -> None:
    [asset] = site(with_assets(f"id: rtu-1, address: 10.1.1.21, unit_id: {unit_id}")).assets
    assert asset.unit_id == unit_id


@pytest.mark.parametrize(
    "path",
    sorted(
        p.relative_to(ROOT)
        for p in (*ROOT.glob("examples/**/*.yaml"), *ROOT.glob("src/plantwarden/sim/*.yaml"))
    ),
    ids=str,
)
def test_the_shipped_plant_models_still_load(path: Path) -> None:
    assert load_plant(ROOT / path).sites


def test_the_demo_plant_still_loads() -> None:
    raw = demo_plant((ROOT / "src" / "plantwarden" / "sim" / "riverside.yaml").read_bytes())
    assert load_plant_bytes(raw, "demo-plant.yaml").site("riverside")
