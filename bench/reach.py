"""Reachability: what an attacker holding each zone reaches, against a brute force over every address.

Input: the ring plant of `tests/unit/zones/reach_models.large_plant` at two sizes, 10 and 50 zones
(one /24 each, 40 assets per zone, the first one critical; 2,560 and 12,800 addresses); each zone's
first asset may poll the whole of the next zone and of the seventh after it over Modbus, and every
host of a zone may open HTTPS on one asset of each of those two. `--quick` runs 5 zones of 10
assets.

1. Ours (`zones.reach`): `HostGraph.build` once (addresses grouped into hosts, permits into edges),
   then `reach_from` for every zone (breadth first over the grouped hosts, with every way in and up
   to three shortest paths to each zone, crown jewel and outside host), as `plantwarden zones reach`
   and the console's reachability answer it.
2. The reference (`tests/unit/zones/reach_models`, sharing no code with `zones.reach`): every address
   a host of its own (an asset holds its addresses), every (host, host, service) edge expanded from
   the permits, then a breadth-first search per zone. The suite's property test checks the two
   against each other on random plants, paths and ways in included.

Both are asked from every zone; each zone's answers must agree (the hops to every zone and every
crown jewel reached). Times are CPU seconds of this process with the collector paused, ours the
best of `REPEATS`; the reference runs once (its graph takes about two minutes at 50 zones).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TypeVar

from tests.unit.zones.reach_models import BruteGraph, BruteReach, brute_graph, brute_reach, large_plant

from plantwarden.zones.plant.model import SiteModel
from plantwarden.zones.plant.permits import Permit
from plantwarden.zones.reach import HostGraph, Reach, reach_from

SIZES = ((10, 40), (50, 40))
QUICK_SIZES = ((5, 10),)
REPEATS = 3
T = TypeVar("T")


def _cpu(work: Callable[[], T]) -> tuple[T, float]:
    """What `work` returns and the CPU seconds it took, with the garbage collector paused."""
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        result = work()
        return result, time.process_time() - started
    finally:
        gc.enable()


def _ours(plant: SiteModel, permits: list[Permit]) -> tuple[dict[str, Reach], float, float]:
    graph, build = _cpu(lambda: HostGraph.build(plant, permits))
    answers, search = _cpu(lambda: {z.id: reach_from(graph, z.id) for z in plant.zones})
    return answers, build, search


def _reference(plant: SiteModel, permits: list[Permit]) -> tuple[dict[str, BruteReach], float, float]:
    graph, build = _cpu(lambda: brute_graph(plant, permits))

    def every_zone(found: BruteGraph = graph) -> dict[str, BruteReach]:
        return {z.id: brute_reach(found, z.id) for z in plant.zones}

    answers, search = _cpu(every_zone)
    return answers, build, search


def _agree(ours: Reach, brute: BruteReach) -> bool:
    zones = {t.id: t.hops for t in ours.zones}
    jewels = {t.id: t.hops for t in ours.crown_jewels}
    graph = brute.graph
    expected = {h[1]: d for h, d in brute.distance.items() if h[0] == "asset" and h[1] in graph.crown_jewels}
    return zones == brute.zones() and jewels == expected


def measure(zones: int, assets_per_zone: int) -> None:
    plant, permits = large_plant(zones, assets_per_zone)
    addresses = sum(z.subnets[0].num_addresses for z in plant.zones)
    runs = [_ours(plant, permits) for _ in range(REPEATS)]
    answers, build, search = min(runs, key=lambda run: run[1] + run[2])
    print(
        f"{zones} zones, {len(plant.assets):,} assets, {addresses:,} addresses, {len(permits)} permits",
        flush=True,
    )
    brute, brute_build, brute_search = _reference(plant, permits)
    wrong = sorted(z for z in answers if not _agree(answers[z], brute[z]))
    if wrong:
        raise SystemExit(f"reach: ours and the brute force disagree from zones {wrong[:5]}")
    reached = sum(len(a.zones) for a in answers.values())
    ours_all, brute_all = build + search, brute_build + brute_search
    print(f"  answers agree from all {zones} zones ({reached:,} zones reached in all)")
    print(f"  {'':12} {'build s':>9} {'all zones s':>12} {'per zone ms':>12} {'total s':>9}")
    for name, made, asked in (("ours", build, search), ("brute force", brute_build, brute_search)):
        print(f"  {name:12} {made:9.3f} {asked:12.3f} {asked / zones * 1e3:12.2f} {made + asked:9.3f}")
    print(f"  ours / brute force: {brute_all / ours_all:,.0f}x faster in all")


def run(*, quick: bool = False) -> None:
    for zones, assets_per_zone in QUICK_SIZES if quick else SIZES:
        measure(zones, assets_per_zone)


if __name__ == "__main__":
    run()
