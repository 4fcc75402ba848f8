"""plant.yaml's Modbus unit ids: in range, and routable by the gateway of a site with one gateway.

The gateway routes requests by unit id to the site's `gateway_only` assets; a model in which two
of them share a unit id, or one of several has none, is refused when it is loaded (so at
`plant validate` and `plant apply`), not first when the gateway starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwarden.cli.demo import demo_plant
from plantwarden.zones.plant.load import PlantFileError, load_plant, load_plant_bytes
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


PLC_1 = "id: plc-1, address: 10.1.1.11, gateway_only: true, unit_id: 1"
PLC_2 = "id: plc-2, address: 10.1.1.12, gateway_only: true, unit_id: 1"


def test_two_gateway_only_assets_on_one_unit_id_are_refused_where_the_second_says_it() -> None:
    text = with_assets(PLC_1, PLC_2, gateways="10.1.2.60")
    [(line, column, message)] = problems(text)
    assert (line, column) == (text.count("\n"), text.splitlines()[-1].index("unit_id: 1") + 10)
    assert message == (
        "unit id 1 is also the unit id of gateway_only asset 'plc-1': the gateway routes requests"
        " by unit id, so the gateway_only assets behind one gateway need distinct unit ids"
    )
    routed = site(with_assets(PLC_1, PLC_2.replace("unit_id: 1", "unit_id: 2"), gateways="10.1.2.60"))
    assert [asset.unit_id for asset in routed.assets] == [1, 2]


def test_the_error_names_the_file_line_column_asset_and_field() -> None:
    with pytest.raises(PlantFileError) as caught:
        load_plant_bytes(with_assets(PLC_1, PLC_2).encode(), "site/plant.yaml")
    assert str(caught.value).startswith(
        "site/plant.yaml:23:70: sites[0].assets[1].unit_id: unit id 1 is also the unit id of"
        " gateway_only asset 'plc-1'"
    )


def test_one_of_several_gateway_only_assets_without_a_unit_id_is_refused() -> None:
    missing = "id: plc-3, address: 10.1.1.13, gateway_only: true"
    [(_, _, message)] = problems(with_assets(PLC_1, missing))
    assert message == (
        "gateway_only asset 'plc-3' has no unit_id: the gateway routes requests by unit id, and"
        " with 2 gateway_only assets it could route none to this one; give it the unit id it answers"
    )
    # every one of them is named, each where it is written
    other = missing.replace("plc-3", "plc-4").replace("10.1.1.13", "10.1.1.14")
    both = [message for _, _, message in problems(with_assets(missing, other))]
    assert [m.split(" has")[0] for m in both] == ["gateway_only asset 'plc-3'", "gateway_only asset 'plc-4'"]


def test_a_single_gateway_only_asset_needs_no_unit_id_and_others_may_share_theirs() -> None:
    # a single PLC without a unit id answers 1 and 255 at the gateway; assets the gateway does not
    # route (watched passively) may share a unit id, as the Riverside PLCs all answer unit 1
    loaded = site(
        with_assets(
            "id: plc-1, address: 10.1.1.11, gateway_only: true",
            "id: rtu-1, address: 10.1.1.21, unit_id: 1",
            "id: rtu-2, address: 10.1.1.22, unit_id: 1",
        )
    )
    assert [(a.id, a.gateway_only, a.unit_id) for a in loaded.assets] == [
        ("plc-1", True, None),
        ("rtu-1", False, 1),
        ("rtu-2", False, 1),
    ]


def test_a_site_with_several_gateways_may_repeat_unit_ids_a_gateway_each() -> None:
    # with more than one gateway the model does not say which PLC is behind which: each gateway
    # names its PLCs with --upstream and refuses a collision among them when it starts
    missing = "id: plc-3, address: 10.1.1.13, gateway_only: true"
    loaded = site(with_assets(PLC_1, PLC_2, missing, gateways="10.1.2.60, 10.1.2.61"))
    assert [asset.unit_id for asset in loaded.assets] == [1, 1, None]


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
