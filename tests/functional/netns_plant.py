"""A plant's zones as network namespaces joined by a router namespace, to test rulesets by behaviour.

`PlantNetwork` creates one namespace per zone and one for the router, joins each zone to the
router by a veth pair, gives the zone's hosts their addresses and a default route via the router,
and runs a small agent in every zone namespace that listens on the probed ports (TCP: answers
`ok`; UDP: echoes) and probes other hosts in parallel from a chosen source address. The router
loads a rendered ruleset with `nft -f`. `model_allows` computes, from the model alone, whether a
new connection should cross.

Also the builders of the test models used by the firewall tests.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from plantwarden.zones.plant.model import (
    Address,
    Asset,
    Channel,
    Conduit,
    SecurityLevel,
    SiteModel,
    Window,
    Zone,
)

AGENT = r"""
import itertools, json, socket, sys, threading
from concurrent.futures import ThreadPoolExecutor

# UDP probes leave from ports no earlier probe of this agent used: with a random ephemeral port,
# one could take the port of an earlier probe to the same address and port that the router's
# connection tracking still holds as established (30-120 s), and cross a ruleset that refuses new
# flows of it (a probe is a new flow: `model_allows`). TCP's tracking takes a new SYN as new.
UDP_SOURCE_PORTS = itertools.cycle(range(20000, 32768))
UDP_PORT_LOCK = threading.Lock()

def udp_source_port():
    with UDP_PORT_LOCK:
        return next(UDP_SOURCE_PORTS)

def serve_tcp(port):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(64)
    def loop():
        while True:
            connection, _ = server.accept()
            try:
                connection.sendall(b"ok")
            finally:
                connection.close()
    threading.Thread(target=loop, daemon=True).start()

def serve_udp(address, port):
    # one socket per address, so that the echo leaves from the address the probe was sent to
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((address, port))
    def loop():
        while True:
            data, peer = server.recvfrom(2048)
            server.sendto(data, peer)
    threading.Thread(target=loop, daemon=True).start()

def probe(transport, source, destination, port, timeout):
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as client:
        client.settimeout(timeout)
        client.bind((source, udp_source_port() if transport == "udp" else 0))
        try:
            if transport == "tcp":
                client.connect((destination, port))
                return client.recv(2) == b"ok"
            client.sendto(b"probe", (destination, port))
            return client.recv(16) == b"probe"
        except OSError:
            return False

pool = ThreadPoolExecutor(max_workers=256)
for line in sys.stdin:
    command = json.loads(line)
    if command["op"] == "listen":
        for port in command["tcp"]:
            serve_tcp(port)
        for port in command["udp"]:
            for address in command["addresses"]:
                serve_udp(address, port)
        answer = {"ok": True}
    else:
        futures = [pool.submit(probe, *p, command["timeout"]) for p in command["probes"]]
        answer = {"results": [f.result() for f in futures]}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
"""

PROBE_TIMEOUT = 1.5


@dataclass(frozen=True, slots=True)
class Probe:
    """A new connection (TCP) or datagram with its echo (UDP) from `source` to `destination`."""

    transport: str
    source: str
    destination: str
    port: int


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class PlantNetwork:
    """Zone namespaces around a router namespace. Use as a context manager: everything it
    created is removed on exit, even after a failure."""

    def __init__(
        self,
        zones: Sequence[tuple[str, str, Sequence[str]]],
        tcp_ports: Iterable[int],
        udp_ports: Iterable[int],
    ):
        """`zones`: (zone id, IPv4 subnet, host addresses) each."""
        tag = uuid.uuid4().hex[:8]
        self.router = f"pw{tag}r"
        self.zones = list(zones)
        self.namespaces = {zone_id: f"pw{tag}z{i}" for i, (zone_id, _, _) in enumerate(self.zones)}
        self.tcp_ports, self.udp_ports = sorted(set(tcp_ports)), sorted(set(udp_ports))
        self.agents: dict[str, subprocess.Popen[str]] = {}
        self.created: list[str] = []

    def __enter__(self) -> PlantNetwork:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _build(self) -> None:
        self._add_namespace(self.router)
        subprocess.run(
            ["ip", "netns", "exec", self.router, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
            check=True,
            timeout=30,
        )
        for index, (zone_id, subnet, hosts) in enumerate(self.zones):
            self._add_zone(index, self.namespaces[zone_id], ipaddress.ip_network(subnet), hosts)
        for zone_id, _, hosts in self.zones:
            self._start_agent(zone_id, hosts)

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.created.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def _add_zone(
        self,
        index: int,
        namespace: str,
        subnet: ipaddress.IPv4Network | ipaddress.IPv6Network,
        hosts: Sequence[str],
    ) -> None:
        self._add_namespace(namespace)
        router_address = next(subnet.hosts())
        ip(
            "-n",
            self.router,
            "link",
            "add",
            f"z{index}",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            namespace,
        )
        ip("-n", self.router, "addr", "add", f"{router_address}/{subnet.prefixlen}", "dev", f"z{index}")
        ip("-n", self.router, "link", "set", f"z{index}", "up")
        for host in hosts:
            ip("-n", namespace, "addr", "add", f"{host}/{subnet.prefixlen}", "dev", "eth0")
        ip("-n", namespace, "link", "set", "eth0", "up")
        ip("-n", namespace, "route", "add", "default", "via", str(router_address))

    def _start_agent(self, zone_id: str, hosts: Sequence[str]) -> None:
        command = ["ip", "netns", "exec", self.namespaces[zone_id], sys.executable, "-c", AGENT]
        agent = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.agents[zone_id] = agent
        assert self._ask(
            agent, {"op": "listen", "tcp": self.tcp_ports, "udp": self.udp_ports, "addresses": hosts}
        ) == {"ok": True}

    @staticmethod
    def _ask(agent: subprocess.Popen[str], command: dict[str, object]) -> dict[str, object]:
        assert agent.stdin is not None and agent.stdout is not None
        agent.stdin.write(json.dumps(command) + "\n")
        agent.stdin.flush()
        line = agent.stdout.readline()
        assert line, "the probe agent died"
        answer: dict[str, object] = json.loads(line)
        return answer

    def load(self, script: str) -> None:
        """Load an nft script into the router (raises with nft's message when it refuses)."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.router, "nft", "-f", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr

    def nft(self, *args: str) -> str:
        """Run nft in the router namespace (listing with UTC hours) and return its output."""
        command = ["ip", "netns", "exec", self.router, "env", "TZ=UTC", "nft", *args]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60).stdout

    def zone_of(self, address: str) -> str:
        for zone_id, subnet, _ in self.zones:
            if ipaddress.ip_address(address) in ipaddress.ip_network(subnet):
                return zone_id
        raise KeyError(address)

    def probe(self, probes: Sequence[Probe]) -> dict[Probe, bool]:
        """Run every probe, all at once (each from the agent of its source's zone)."""
        by_zone: dict[str, list[Probe]] = {}
        for item in probes:
            by_zone.setdefault(self.zone_of(item.source), []).append(item)
        for zone_id, items in by_zone.items():
            command = {
                "op": "probe",
                "timeout": PROBE_TIMEOUT,
                "probes": [[p.transport, p.source, p.destination, p.port] for p in items],
            }
            agent = self.agents[zone_id]
            assert agent.stdin is not None
            agent.stdin.write(json.dumps(command) + "\n")
            agent.stdin.flush()
        outcome: dict[Probe, bool] = {}
        for zone_id, items in by_zone.items():
            stdout = self.agents[zone_id].stdout
            assert stdout is not None
            results = json.loads(stdout.readline())["results"]
            outcome.update(zip(items, results, strict=True))
        return outcome

    def close(self) -> None:
        for agent in self.agents.values():
            agent.kill()
            agent.wait(timeout=30)
            for stream in (agent.stdin, agent.stdout):
                if stream is not None:
                    stream.close()
        self.agents.clear()
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True, timeout=30)
        self.created.clear()


def zone_hosts(site: SiteModel, extra: Iterable[str] = ()) -> list[tuple[str, str, list[str]]]:
    """(zone, subnet, hosts) for `PlantNetwork`: each zone's assets and gateways, plus `extra`."""
    addresses = [str(a) for asset in site.assets for a in asset.addresses]
    addresses += [str(g) for g in site.gateways] + list(extra)
    result = []
    for zone in site.zones:
        subnet = zone.subnets[0]
        hosts = sorted({a for a in addresses if ipaddress.ip_address(a) in subnet}, key=ipaddress.ip_address)
        result.append((zone.id, str(subnet), hosts))
    return result


# The model's verdict, computed from the model's values alone (not from permits or a ruleset).


def _zone_of(site: SiteModel, address: Address) -> str | None:
    for zone in site.zones:
        if any(address in subnet for subnet in zone.subnets):
            return zone.id
    for asset in site.assets:
        if address in asset.addresses:
            return asset.zone
    return None


def _protected(site: SiteModel, asset: Asset, transport: str, port: int) -> bool:
    if transport == "tcp" and port == 502:
        return True
    for conduit in site.conduits:
        for channel in conduit.channels:
            serves = asset.id in channel.servers if channel.servers else asset.zone in channel.responders
            if serves and channel.transport == transport and port in channel.ports:
                return True
    return False


def _side(site: SiteModel, address: Address, zones: tuple[str, ...], assets: tuple[str, ...]) -> bool:
    if assets:
        return any(address in site.asset(asset_id).addresses for asset_id in assets)
    return _zone_of(site, address) in zones


def _open_now(site: SiteModel, channel: Channel, now: datetime) -> bool:
    if not channel.schedule:
        return True
    local = now.astimezone(ZoneInfo(site.timezone))
    minute = local.hour * 60 + local.minute
    return any(site.windows[name].contains(local.weekday(), minute) for name in channel.schedule)


def channel_allows(
    site: SiteModel, source: Address, destination: Address, transport: str, port: int, now: datetime
) -> bool:
    """Whether some channel of the model opens this connection now."""
    for conduit in site.conduits:
        for channel in conduit.channels:
            if channel.transport != transport or (channel.ports and port not in channel.ports):
                continue
            if not _side(site, source, channel.initiators, channel.clients):
                continue
            if _side(site, destination, channel.responders, channel.servers) and _open_now(
                site, channel, now
            ):
                return True
    return False


def _responder_port(site: SiteModel, zone_id: str, transport: str, port: int) -> bool:
    return any(
        zone_id in ch.responders and ch.transport == transport and (not ch.ports or port in ch.ports)
        for conduit in site.conduits
        for ch in conduit.channels
    )


def model_allows(
    site: SiteModel, probe: Probe, now: datetime, *, variant: str = "normal", zone: str | None = None
) -> bool:
    """Whether a new connection from one zone to another should cross the router."""
    source, destination = ipaddress.ip_address(probe.source), ipaddress.ip_address(probe.destination)
    source_zone, destination_zone = _zone_of(site, source), _zone_of(site, destination)
    from_gateway = source in site.gateways
    if variant == "island" and zone in (source_zone, destination_zone):
        return False
    if variant == "fail-closed" and zone is None:
        return False if not from_gateway else _fail_closed_gateway(site, destination, destination_zone, probe)
    for asset in site.assets:
        if (
            asset.gateway_only
            and destination in asset.addresses
            and _protected(site, asset, probe.transport, probe.port)
        ):
            return from_gateway
    if variant == "fail-closed" and zone is not None and zone in (source_zone, destination_zone):
        return (
            from_gateway
            and destination_zone == zone
            and _responder_port(site, zone, probe.transport, probe.port)
        )
    return channel_allows(site, source, destination, probe.transport, probe.port, now)


def _fail_closed_gateway(
    site: SiteModel, destination: Address, destination_zone: str | None, probe: Probe
) -> bool:
    for asset in site.assets:
        if (
            asset.gateway_only
            and destination in asset.addresses
            and _protected(site, asset, probe.transport, probe.port)
        ):
            return True
    return destination_zone is not None and _responder_port(
        site, destination_zone, probe.transport, probe.port
    )


# Test models.


def make_zone(zone_id: str, subnet: str, level: float = 1) -> Zone:
    return Zone(
        zone_id, zone_id.upper(), level, (ipaddress.ip_network(subnet),), (), SecurityLevel.uniform(2)
    )


def make_channel(
    channel_id: str,
    protocol: str,
    transport: Literal["tcp", "udp"],
    ports: tuple[int, ...],
    initiators: tuple[str, ...],
    responders: tuple[str, ...],
    schedule: tuple[str, ...] = (),
) -> Channel:
    return Channel(
        channel_id, protocol, transport, ports, initiators, responders, frozenset({"read"}), schedule=schedule
    )


def make_asset(asset_id: str, address: str, zone: str, *, gateway_only: bool = False) -> Asset:
    return Asset(
        asset_id,
        asset_id,
        (ipaddress.ip_address(address),),
        zone,
        "critical" if gateway_only else "medium",
        gateway_only,
    )


def cell_plant(
    *, timezone: str = "UTC", windows: dict[str, Window] | None = None, schedule: tuple[str, ...] = ()
) -> SiteModel:
    """Three zones (it 10.91.1.0/24, scada 10.91.2.0/24, cell 10.91.3.0/24), the gateway in scada,
    plc1 gateway-only and plc2 open in the cell; ssh from it to scada only in `schedule` windows."""
    zones = (
        make_zone("it", "10.91.1.0/24", 3),
        make_zone("scada", "10.91.2.0/24", 2),
        make_zone("cell", "10.91.3.0/24", 1),
    )
    scada_cell = Conduit(
        "scada-cell",
        "SCADA to cell",
        ("scada", "cell"),
        (
            make_channel("modbus", "modbus", "tcp", (502,), ("scada",), ("cell",)),
            make_channel("s7", "s7comm", "tcp", (102,), ("scada",), ("cell",)),
            make_channel("io", "enip-io", "udp", (2222,), ("scada",), ("cell",)),
        ),
        SecurityLevel.uniform(2),
    )
    it_scada = Conduit(
        "it-scada",
        "IT to SCADA",
        ("it", "scada"),
        (
            make_channel("opcua", "opcua", "tcp", (4840,), ("it",), ("scada",)),
            make_channel("ssh", "ssh", "tcp", (22,), ("it",), ("scada",), schedule=schedule),
        ),
        SecurityLevel.uniform(2),
    )
    assets = (
        make_asset("eng", "10.91.1.30", "it"),
        make_asset("hmi", "10.91.2.20", "scada"),
        make_asset("plc1", "10.91.3.10", "cell", gateway_only=True),
        make_asset("plc2", "10.91.3.11", "cell"),
    )
    return SiteModel(
        "plant1",
        "Plant 1",
        timezone,
        zones,
        (it_scada, scada_cell),
        assets,
        windows=MappingProxyType(windows or {}),
        gateways=(ipaddress.ip_address("10.91.2.5"),),
    )
