"""The communication map: layout and SVG rendering time and page size, at three plant sizes.

Input: a synthetic plant (`synthetic_plant`) of 100, 500 and 1,000 assets with 400, 2,000 and
4,000 links: an IT zone (switches, IT hosts, the MQTT broker), an operations zone (historians,
engineering workstations), and cells of about 25 assets (a switch, one or two HMIs, PLCs, IoT
sensors). HMIs poll the PLCs of their cell, historians poll every PLC, engineering workstations
program some PLCs, IoT sensors publish to the broker, and seeded random links of the known
protocols fill up to the link count (three in four inside one group; some parallel to an
existing pair).

Each size is drawn twice: as the console does by default (pairs across groups bundled per pair
of groups past `DEFAULT_BUNDLE_ABOVE`) and with every pair drawn (`bundle_above=None`). Times
are the best of several runs of `layout` and of `render_svg`; sizes are the SVG's bytes and its
gzip size (what the browser downloads).

The reference is Graphviz (`dot`, `neato`, `sfdp`: `dot -Tsvg` of the same graph with one
cluster per group), when its commands are installed; networkx's `spring_layout` otherwise, when
networkx is importable. Neither is a dependency: without them the benchmark says so and reports
Plantwarden's figures alone.
"""

from __future__ import annotations

import gzip
import importlib.util
import random
import shutil
import subprocess
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from plantwarden.inventory.commmap import DEFAULT_BUNDLE_ABOVE, MapLink, MapNode, layout, render_svg
from plantwarden.inventory.roles import Role

SIZES = ((100, 400), (500, 2000), (1000, 4000))
PROTOCOLS = ("modbus", "s7comm", "enip", "opcua", "dnp3", "iec104", "bacnet")
GRAPHVIZ = ("dot", "neato", "sfdp")
REFERENCE_TIMEOUT = 300
T = TypeVar("T")


def synthetic_plant(assets: int, links: int, seed: int = 8) -> tuple[list[MapNode], list[MapLink]]:
    """`assets` nodes and exactly `links` distinct (client, server, protocol) links, seeded."""
    if assets < 20 or links < assets:
        raise ValueError("a synthetic plant needs at least 20 assets and as many links as assets")
    rng = random.Random(seed)  # noqa: S311 - reproducible benchmark data, not secrets
    nodes: list[MapNode] = []

    def add(group: str, role: Role, name: str) -> MapNode:
        n = len(nodes)
        node = MapNode(f"asset-{n:05d}", name, group, role.value, f"10.{n // 250}.{n % 250}.{1 + n % 7}")
        nodes.append(node)
        return node

    broker = add("enterprise", Role.IT_HOST, "mqtt-broker")
    for k in range(max(2, assets // 50)):
        add("enterprise", Role.NETWORK_DEVICE, f"core-switch-{k}")
        add("enterprise", Role.IT_HOST, f"office-pc-{k}")
    historians = [add("operations", Role.HISTORIAN, f"historian-{k}") for k in range(max(1, assets // 250))]
    engineering = [add("operations", Role.ENGINEERING_WORKSTATION, f"eng-ws-{k}") for k in range(2)]
    cells: list[tuple[list[MapNode], list[MapNode], list[MapNode]]] = []
    cell = 0
    while len(nodes) < assets:
        cell += 1
        group = f"cell-{cell:02d}"
        size = min(25, assets - len(nodes))
        hmi_count = min(2, size - 1)
        iot_count = min(2, size - 1 - hmi_count)
        add(group, Role.NETWORK_DEVICE, f"{group}-switch")
        hmis = [add(group, Role.HMI, f"{group}-hmi-{k}") for k in range(hmi_count)]
        plc_count = size - 1 - hmi_count - iot_count
        plcs = [add(group, Role.PLC, f"{group}-plc-{k:02d}") for k in range(plc_count)]
        iot = [add(group, Role.IOT_DEVICE, f"{group}-sensor-{k}") for k in range(iot_count)]
        cells.append((hmis, plcs, iot))
    found: dict[tuple[str, str, str], MapLink] = {}

    def link(client: MapNode, server: MapNode, protocol: str, operations: tuple[str, ...]) -> None:
        key = (client.id, server.id, protocol)
        if len(found) < links and key not in found and client.id != server.id:
            found[key] = MapLink(
                client.id, server.id, protocol, rng.randint(1, 500_000), frozenset(operations)
            )

    for hmis, plcs, iot in cells:
        for plc in plcs:
            for hmi in hmis:
                link(hmi, plc, "modbus", ("read", "write") if rng.random() < 0.3 else ("read",))
            for historian in historians:
                link(historian, plc, rng.choice(("modbus", "s7comm")), ("read",))
            if rng.random() < 0.3:
                link(rng.choice(engineering), plc, "s7comm", ("read", "write", "program"))
        for sensor in iot:
            link(sensor, broker, "mqtt", ("write",))
    while len(found) < links:
        client, server = rng.sample(nodes, 2)
        if rng.random() < 0.75:  # most other traffic stays inside a cell
            server = rng.choice([node for node in nodes if node.group == client.group])
        link(client, server, rng.choice(PROTOCOLS), tuple(rng.sample(("read", "write", "diagnostic"), 1)))
    assert len(nodes) == assets
    return nodes, list(found.values())


def run(*, quick: bool = False) -> None:
    repeat = 2 if quick else 7
    sizes = SIZES[:2] if quick else SIZES
    reference = _reference_name()
    print(f"## map: layout and SVG of the communication map, best of {repeat} runs")
    print(f"{'assets':>6} {'links':>6} {'drawing':<34} {'layout':>9} {'render':>9} {'SVG':>9} {'gzip':>8}")
    for assets, links in sizes:
        nodes, edges = synthetic_plant(assets, links)
        for caption, bundle_above in (("bundled", DEFAULT_BUNDLE_ABOVE), ("every pair drawn", None)):
            layout_s, placed = _best(repeat, partial(layout, nodes, edges, bundle_above=bundle_above))
            render_s, svg = _best(repeat, partial(render_svg, placed))
            data = svg.encode()
            drawing = f"{caption}: {len(placed.pairs)} lines"
            if placed.bundles:
                drawing += f" + {len(placed.bundles)} bundles"
            print(
                f"{assets:>6,} {links:>6,} {drawing:<34} {layout_s * 1e3:>7.1f}ms {render_s * 1e3:>7.1f}ms "
                f"{len(data) / 1e3:>7,.0f}kB {len(gzip.compress(data)) / 1e3:>6,.0f}kB"
            )
        if reference:
            _reference(nodes, edges, quick=quick)
    if not reference:
        print("reference: none (neither Graphviz nor networkx is installed); Plantwarden's figures alone")


def _best(repeat: int, work: Callable[[], T]) -> tuple[float, T]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def _reference_name() -> str:
    if any(shutil.which(name) for name in GRAPHVIZ):
        return "graphviz"
    return "networkx" if importlib.util.find_spec("networkx") is not None else ""


def _reference(nodes: list[MapNode], links: list[MapLink], *, quick: bool) -> None:
    engines = [name for name in GRAPHVIZ if shutil.which(name)]
    if engines:
        source = _dot_source(nodes, links).encode()
        for engine in engines if not quick else engines[-1:]:
            started = time.perf_counter()
            try:
                out = subprocess.run(
                    [engine, "-Tsvg"],
                    input=source,
                    capture_output=True,
                    check=True,
                    timeout=REFERENCE_TIMEOUT,
                ).stdout
            except subprocess.TimeoutExpired:
                print(f"{'':>13} reference: Graphviz {engine} -Tsvg did not finish in {REFERENCE_TIMEOUT} s")
                continue
            except subprocess.CalledProcessError as error:
                said = error.stderr.decode(errors="replace").strip().splitlines()
                elapsed = time.perf_counter() - started
                print(
                    f"{'':>13} reference: Graphviz {engine} -Tsvg failed after {elapsed:.1f} s"
                    f" ({said[-1] if said else f'exit {error.returncode}'})"
                )
                continue
            elapsed = time.perf_counter() - started
            print(
                f"{'':>13} reference: Graphviz {engine} -Tsvg {elapsed * 1e3:.1f}ms, {len(out) / 1e3:,.0f}kB"
            )
        return
    import networkx as nx  # type: ignore[import-untyped]  # noqa: PLC0415 - optional, only when present

    graph = nx.Graph()
    graph.add_nodes_from(node.id for node in nodes)
    graph.add_edges_from((link.client, link.server) for link in links)
    started = time.perf_counter()
    nx.spring_layout(graph, seed=1)
    elapsed = time.perf_counter() - started
    print(f"{'':>13} reference: networkx spring_layout (positions only, no drawing) {elapsed * 1e3:.1f}ms")


def _dot_source(nodes: list[MapNode], links: list[MapLink]) -> str:
    """The same graph for Graphviz: one cluster per group, one edge per link."""
    groups: dict[str, list[MapNode]] = {}
    for node in nodes:
        groups.setdefault(node.group, []).append(node)
    lines = ["digraph map {", "  node [shape=box, fontsize=10];"]
    for g, (name, members) in enumerate(sorted(groups.items())):
        lines.append(f"  subgraph cluster_{g} {{ label={_quoted(name)};")
        lines.extend(
            f"    {_quoted(node.id)} [label={_quoted(node.label + chr(10) + node.address)}];"
            for node in members
        )
        lines.append("  }")
    lines.extend(
        f"  {_quoted(link.client)} -> {_quoted(link.server)} [label={_quoted(link.protocol)}];"
        for link in links
    )
    lines.append("}")
    return "\n".join(lines)


def _quoted(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, a newline as DOT's centred line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
