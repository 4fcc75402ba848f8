"""Role inference on hand-built assets (through a real asset book), edges and statistics: each
rule, the order between them, the evidence's numbers, and determinism."""

from __future__ import annotations

from dataclasses import replace

from plantwarden.core.records.schema import Protocol
from plantwarden.inventory import AssetBook, Binding, Edge, FunctionStatistics, RouterMac
from plantwarden.inventory.roles import Role, RoleGuess, infer_roles
from tests.unit.inventory.support import CELL, SITE, arp, sighting

S = 1_000_000_000
MS = 1_000_000
HMI, HISTORIAN, ENG, PLC, PLC2, BROKER, DNS = (
    "10.0.1.10", "10.0.1.30", "10.0.1.20", "10.0.2.11", "10.0.2.12", "10.0.1.40", "10.0.0.5",
)  # fmt: skip
SENSOR, SWITCH, ROUTER = "10.0.2.50", "10.0.2.2", "10.0.2.1"


def mac(ip: str) -> str:
    return "02:00:00:00:%02x:%02x" % tuple(int(part) for part in ip.split(".")[2:])  # noqa: UP031


def edge(
    client: str, server: str, protocol: Protocol, operations: tuple[str, ...] = ("READ",), **extra: object
) -> Edge:
    fields: dict[str, object] = {
        "site": SITE, "segment": CELL, "client": client, "server": server, "protocol": protocol,
        "operations": frozenset(operations), "requests": 100, "first_ns": 0, "last_ns": 600 * S,
        "flows": 1, "packets": 200, "bytes": 20_000, "services": ((6, 502),),
    }  # fmt: skip
    return Edge(**(fields | extra))  # type: ignore[arg-type]


def stats(
    client: str, server: str, protocol: Protocol, function: int, period_s: float | None, **extra: object
) -> FunctionStatistics:
    intervals = 0.0 if period_s is None else 100.0
    fields: dict[str, object] = {
        "site": SITE, "segment": CELL, "client": client, "server": server, "protocol": protocol,
        "function": function, "requests": 101, "detailed": 101, "unanswered": 0, "exceptions": 0,
        "aggregated_errors": 0, "responses": 101, "response_median_ns": 7 * MS, "response_p95_ns": 11 * MS,
        "period_ns": None if period_s is None else round(period_s * S), "intervals": intervals,
    }  # fmt: skip
    return FunctionStatistics(**(fields | extra))  # type: ignore[arg-type]


def poll(
    client: str, servers: tuple[str, ...], period_s: float, functions: tuple[int, ...] = (3, 4)
) -> list[FunctionStatistics]:
    return [stats(client, server, Protocol.MODBUS, f, period_s) for server in servers for f in functions]


def book_of(*ips: str) -> AssetBook:
    book = AssetBook()
    for index, ip in enumerate(ips):
        book.add(arp(index, ip, mac(ip)))
    return book


def roles_by_ip(
    book: AssetBook,
    edges: list[Edge],
    statistics: list[FunctionStatistics],
    router_macs: frozenset[RouterMac] = frozenset(),
) -> dict[str, RoleGuess]:
    guesses = infer_roles(book.assets(), edges, statistics, router_macs)
    assert set(guesses) == {asset.id for asset in book.assets()}
    return {ip.address: guesses[asset.id] for asset in book.assets() for ip in asset.ips}


def plant() -> tuple[AssetBook, list[Edge], list[FunctionStatistics]]:
    """An HMI and a historian polling two PLCs, an engineer writing once, PLC telemetry to a
    broker, a DNS server."""
    book = book_of(HMI, HISTORIAN, ENG, PLC, PLC2, BROKER, DNS)
    edges = [
        *(edge(HMI, plc, Protocol.MODBUS) for plc in (PLC, PLC2)),
        *(edge(HISTORIAN, plc, Protocol.MODBUS) for plc in (PLC, PLC2)),
        edge(ENG, PLC, Protocol.MODBUS, ("IDENTIFY", "WRITE", "READ"), requests=3),
        *(edge(plc, BROKER, Protocol.MQTT, ("OTHER", "WRITE"), services=((6, 1883),)) for plc in (PLC, PLC2)),
        *(edge(client, DNS, Protocol.UNKNOWN, (), requests=0, services=((17, 53),)) for client in (HMI, ENG)),
    ]
    statistics = [
        *poll(HMI, (PLC, PLC2), 1.0, (1, 2, 3, 4)),
        *poll(HISTORIAN, (PLC, PLC2), 5.0, (4,)),
        *(stats(ENG, PLC, Protocol.MODBUS, f, None, requests=1, responses=1) for f in (6, 3, 43)),
        *(stats(plc, BROKER, Protocol.MQTT, 3, 10.0, responses=0) for plc in (PLC, PLC2)),
    ]
    return book, edges, statistics


def test_the_roles_of_a_small_plant_with_their_evidence() -> None:
    roles = roles_by_ip(*plant())
    assert {ip: guess.role for ip, guess in roles.items()} == {
        HMI: Role.HMI,
        HISTORIAN: Role.HISTORIAN,
        ENG: Role.ENGINEERING_WORKSTATION,
        PLC: Role.PLC,
        PLC2: Role.PLC,
        BROKER: Role.IT_HOST,
        DNS: Role.IT_HOST,
    }
    assert roles[HMI].evidence[0] == "polls 2 devices over modbus every 1.0 s"
    assert roles[HISTORIAN].evidence == (
        "polls 2 devices over modbus every 5.0 s",
        "reads only, slower than an operator screen",
    )
    assert roles[PLC].evidence[0] == "serves modbus to 3 clients (508 requests answered)"
    assert roles[PLC2].evidence[0] == "serves modbus to 2 clients (505 requests answered)"
    assert roles[ENG].evidence[:2] == (
        "talks to 1 device without steady polling",
        "sends identify, write requests",
    )
    assert roles[BROKER].evidence[0] == "serves mqtt to 2 clients"
    assert roles[DNS].evidence[0] == "serves udp/53 to 2 clients"


def test_the_same_inputs_in_any_order_give_the_same_roles() -> None:
    book, edges, statistics = plant()
    forward = infer_roles(book.assets(), edges, statistics)
    backward = infer_roles(book.assets()[::-1], edges[::-1], statistics[::-1])
    assert forward == backward


def test_an_hmi_is_told_from_a_historian_by_commands_or_by_speed() -> None:
    book = book_of(HMI, HISTORIAN, PLC)
    slow_writer = [edge(HMI, PLC, Protocol.MODBUS, ("READ", "WRITE")), edge(HISTORIAN, PLC, Protocol.MODBUS)]
    roles = roles_by_ip(book, slow_writer, [*poll(HMI, (PLC,), 5.0), *poll(HISTORIAN, (PLC,), 2.0)])
    assert roles[HMI].role is Role.HMI  # writes: an operator's commands, however slow its polling
    assert roles[HMI].evidence[1] == "sends write requests"
    assert roles[HISTORIAN].role is Role.HMI  # reads only but faster than 2.5 s: an operator screen
    roles = roles_by_ip(book, slow_writer[1:], poll(HISTORIAN, (PLC,), 3.0))
    assert roles[HISTORIAN].role is Role.HISTORIAN


def test_programming_makes_an_engineering_workstation_even_when_it_polls() -> None:
    book = book_of(ENG, PLC)
    edges = [edge(ENG, PLC, Protocol.S7COMM, ("READ", "PROGRAM"), services=((6, 102),))]
    statistics = [stats(ENG, PLC, Protocol.S7COMM, 4, 0.5), stats(ENG, PLC, Protocol.S7COMM, 0x1A, None)]
    roles = roles_by_ip(book, edges, statistics)
    assert roles[ENG].role is Role.ENGINEERING_WORKSTATION
    assert roles[ENG].evidence[0] == "sends program or configuration requests to 1 device"
    assert roles[PLC].role is Role.PLC


def test_writes_repeated_every_half_hour_are_not_polling() -> None:
    book = book_of(ENG, PLC)
    edges = [edge(ENG, PLC, Protocol.MODBUS, ("WRITE", "READ"))]
    statistics = [stats(ENG, PLC, Protocol.MODBUS, 6, 1800.0), stats(ENG, PLC, Protocol.MODBUS, 3, 1800.0)]
    assert roles_by_ip(book, edges, statistics)[ENG].role is Role.ENGINEERING_WORKSTATION


def test_a_dnp3_outstation_is_a_plc_and_its_identity_is_evidence() -> None:
    book = book_of(HMI, PLC)
    book.add(sighting(5, "modbus_43_14", ip=PLC, vendor="Acme Controls", model="RTU-560"))
    edges = [edge(HMI, PLC, Protocol.DNP3, ("READ", "CONTROL"), services=((6, 20000),))]
    roles = roles_by_ip(book, edges, [stats(HMI, PLC, Protocol.DNP3, 1, 2.0)])
    assert roles[PLC].role is Role.PLC
    assert roles[PLC].evidence == (
        "serves dnp3 to 1 client (101 requests answered)",
        "reports vendor 'Acme Controls' (modbus_43_14), model 'RTU-560' (modbus_43_14)",
    )
    assert roles[HMI].role is Role.HMI  # commands (DNP3 operate) on top of steady polling


def test_an_unanswered_server_is_not_a_plc() -> None:
    book = book_of(ENG, PLC)
    edges = [edge(ENG, PLC, Protocol.MODBUS, ("WRITE",), requests=4)]
    statistics = [
        stats(ENG, PLC, Protocol.MODBUS, 6, None, requests=4, detailed=4, responses=0, unanswered=4)
    ]
    roles = roles_by_ip(book, edges, statistics)
    assert roles[PLC].role is Role.IT_HOST  # it took a connection on 502, but never answered
    assert roles[ENG].role is Role.ENGINEERING_WORKSTATION


def test_an_opc_ua_server_alone_is_a_weaker_plc() -> None:
    book = book_of(HMI, PLC)
    edges = [edge(HMI, PLC, Protocol.OPCUA, services=((6, 4840),))]
    roles = roles_by_ip(book, edges, [stats(HMI, PLC, Protocol.OPCUA, 631, 1.0)])
    assert (roles[PLC].role, roles[PLC].confidence) == (Role.PLC, 0.6)
    assert roles[HMI].role is Role.HMI


def test_a_telemetry_publisher_without_industrial_traffic_is_an_iot_device() -> None:
    sensor_ip = SENSOR
    book = book_of(sensor_ip, BROKER, PLC)
    edges = [
        edge(host, BROKER, Protocol.MQTT, ("WRITE",), services=((6, 1883),)) for host in (sensor_ip, PLC)
    ]
    statistics = [stats(host, BROKER, Protocol.MQTT, 3, 30.0, responses=0) for host in (sensor_ip, PLC)]
    edges.append(edge(HMI, PLC, Protocol.MODBUS))
    statistics.append(stats(HMI, PLC, Protocol.MODBUS, 3, 1.0))
    roles = roles_by_ip(book, edges, statistics)
    assert roles[sensor_ip].role is Role.IOT_DEVICE
    assert roles[sensor_ip].evidence[0] == "publishes over mqtt to 1 broker every 30.0 s"
    assert roles[PLC].role is Role.PLC  # it publishes too, but it serves Modbus
    assert roles[BROKER].role is Role.IT_HOST


def test_network_devices_by_router_mac_lldp_and_forwarding() -> None:
    book = book_of(ROUTER, SWITCH, "10.0.2.3", "10.0.2.4", HMI, PLC)
    book.add(sighting(9, "lldp", ip=SWITCH, mac=mac(SWITCH), system_name="sw-7", system_description="switch"))
    book.add(sighting(9, "lldp", ip="10.0.2.3", mac=mac("10.0.2.3"), enabled_capabilities="bridge, router"))
    for index, remote in enumerate(("10.9.0.1", "10.9.0.2")):  # forwarded by 10.0.2.4's MAC
        book.add(
            sighting(
                10 + index, "flow", ip=remote, mac=mac("10.0.2.4"), binding=Binding.OBSERVED, confidence=0.5
            )
        )
    router = frozenset({RouterMac(SITE, CELL, mac(ROUTER))})
    edges = [edge(HMI, PLC, Protocol.MODBUS), edge(ROUTER, DNS, Protocol.UNKNOWN, (), services=((17, 123),))]
    roles = roles_by_ip(book, edges, [stats(HMI, PLC, Protocol.MODBUS, 3, 1.0)], router)
    assert (roles[ROUTER].role, roles[ROUTER].confidence) == (Role.NETWORK_DEVICE, 0.9)  # NTP of its own too
    assert (roles[SWITCH].role, roles[SWITCH].confidence) == (Role.NETWORK_DEVICE, 0.7)
    assert roles[SWITCH].evidence[1] == "LLDP: system_name 'sw-7', system_description 'switch'"
    assert roles["10.0.2.3"].evidence[0] == "LLDP names it a bridge and router"
    assert (
        roles["10.0.2.4"].evidence[0]
        == "its MAC carries the traffic of 2 other addresses (10.9.0.1, 10.9.0.2)"
    )
    assert roles["10.9.0.1"].role is Role.UNKNOWN  # seen only behind the router, sending nothing


def test_one_forwarded_address_names_a_router_only_without_traffic_of_its_own() -> None:
    book = book_of(ROUTER, DNS)
    book.add(sighting(10, "flow", ip="10.9.0.1", mac=mac(ROUTER), binding=Binding.OBSERVED, confidence=0.5))
    roles = roles_by_ip(book, [], [])
    assert (roles[ROUTER].role, roles[ROUTER].confidence) == (Role.NETWORK_DEVICE, 0.6)
    edges = [edge(ROUTER, DNS, Protocol.UNKNOWN, (), services=((17, 53),))]
    assert roles_by_ip(book, edges, [])[ROUTER].role is Role.IT_HOST  # a host with a second address


def test_addresses_are_matched_within_their_segment() -> None:
    book = book_of(PLC)
    other = edge(HMI, PLC, Protocol.MODBUS, segment="cell-b")
    roles = roles_by_ip(book, [other], [stats(HMI, PLC, Protocol.MODBUS, 3, 1.0, segment="cell-b")])
    assert roles[PLC] == RoleGuess(
        Role.UNKNOWN, 0.0, ("no IP traffic of its own, and nothing that names its kind",)
    )


def test_no_assets_no_roles() -> None:
    assert infer_roles([], [edge(HMI, PLC, Protocol.MODBUS)], []) == {}


def test_a_plc_polled_only_through_read_minutes_is_still_a_plc() -> None:
    book = book_of(HISTORIAN, PLC)
    aggregated = stats(HISTORIAN, PLC, Protocol.MODBUS, 4, 60.0, detailed=0, responses=0, aggregated_errors=1)
    aggregated = replace(aggregated, response_median_ns=None, response_p95_ns=None)
    roles = roles_by_ip(book, [edge(HISTORIAN, PLC, Protocol.MODBUS)], [aggregated])
    assert roles[PLC].evidence[0] == "serves modbus to 1 client (100 requests answered)"
    assert roles[HISTORIAN].evidence[0] == "polls 1 device over modbus every 60.0 s"
