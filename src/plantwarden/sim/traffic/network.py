"""The plant's network as the generator draws it: addresses, MACs, VLAN tags, routers and TCP stacks.

Frames are captured on the link of the host that opens an exchange (a span port per zone), so a
frame to another zone goes to that zone's router MAC, and the answer comes back from it with its
TTL lowered by the router. Links of the supervisory zone and of cell A carry an 802.1Q tag, cell B
a stacked 802.1ad/802.1Q pair, the enterprise zone none. Windows hosts (office, HMI, engineering
workstation, domain controller) start at TTL 128; PLCs have small TCP stacks (no timestamps, SACK
or window scaling, an 8 KiB window, no DF bit).
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
from dataclasses import dataclass

from plantwarden.sim.plant import Host, Plant
from plantwarden.sim.wire import RECORD_ROUTE_OPTION, IpHost, Link, TcpConnection, TcpEnd, ip_bytes

INTERNET = Host("internet", "enterprise", "198.51.100.20", "it")
"""A web server outside the plant (a documentation address), reached through the enterprise firewall."""
INTERNET_HOPS = 6
WINDOWS_HOSTS = frozenset({"office-ws-1", "hmi-1", "eng-ws-1", "dc-1"})
ZONE_VLANS = {"supervisory": (10,), "cell-a": (20,), "cell-b": (100, 30)}
BROADCAST = b"\xff" * 6
RECORD_ROUTE_HOSTS = frozenset({"erp-server"})
"""Hosts whose IP stack asks for Record Route on every datagram (an old ERP box's odd setting)."""


def mac_of(name: str) -> bytes:
    """A host's MAC: locally administered, from its name, the same in every run."""
    return b"\x02\x50\x57" + hashlib.sha256(name.encode()).digest()[:3]


@dataclass(frozen=True, slots=True)
class Route:
    """How one host reaches another: the link seen at the first's span port, and the hops each way."""

    link: Link
    hops_back: int


class Network:
    """Hosts with their IP stacks and ephemeral ports, and the routes between them."""

    def __init__(self, plant: Plant, rng: random.Random) -> None:
        self.plant = plant
        self.rng = rng
        self.hosts = {host.name: host for host in (*plant.hosts, INTERNET)}
        self.ip_hosts = {name: self._ip_host(host) for name, host in self.hosts.items()}
        self._next_port = {name: 49152 + rng.randrange(8000) for name in self.hosts}

    def _ip_host(self, host: Host) -> IpHost:
        if host.role == "plc":
            return IpHost(
                ip_bytes(host.address),
                ttl=64,
                identification=self.rng.randrange(0x10000),
                dont_fragment=False,
            )
        ttl = 128 if host.name in WINDOWS_HOSTS else 64
        options = RECORD_ROUTE_OPTION if host.name in RECORD_ROUTE_HOSTS else b""
        return IpHost(
            ip_bytes(host.address), ttl=ttl, identification=self.rng.randrange(0x10000), options=options
        )

    def host(self, name: str) -> Host:
        """The host called `name` (the plant's, or `internet`)."""
        return self.hosts[name]

    def router_mac(self, zone: str) -> bytes:
        """The MAC of the router's interface in `zone`."""
        return mac_of(f"router:{zone}")

    def vlans(self, zone: str) -> tuple[int, ...]:
        """The tags frames of `zone` carry on its span port."""
        return ZONE_VLANS.get(zone, ())

    def route(self, source: str, destination: str) -> Route:
        """The link of `source` towards `destination`, and how many routers the answers cross."""
        client, server = self.hosts[source], self.hosts[destination]
        vlans = self.vlans(client.zone)
        if server.name == INTERNET.name:
            return Route(Link(mac_of(client.name), self.router_mac(client.zone), vlans), INTERNET_HOPS)
        if client.zone == server.zone:
            return Route(Link(mac_of(client.name), mac_of(server.name), vlans), 0)
        return Route(Link(mac_of(client.name), self.router_mac(client.zone), vlans), 1)

    def ephemeral_port(self, name: str) -> int:
        """The next ephemeral port of host `name` (49152-65535, wrapping)."""
        port = self._next_port[name]
        self._next_port[name] = 49152 + (port - 49152 + 1) % 16384
        return port

    def host_at(self, address: str) -> Host:
        """The host holding `address`; for an address nobody holds, a stand-in in its zone."""
        for host in self.hosts.values():
            if host.address == address:
                return host
        zone = next(
            (z.name for z in self.plant.zones if ipaddress.IPv4Address(address) in z.network), "enterprise"
        )
        host = Host(f"unknown-{address.replace('.', '-')}", zone, address, "it")
        self.hosts[host.name] = host
        self.ip_hosts[host.name] = self._ip_host(host)
        return host

    def tcp(self, source: str, destination: str, port: int, source_port: int | None = None) -> TcpConnection:
        """A new TCP connection from `source` (an ephemeral port unless given) to `destination`:`port`."""
        route = self.route(source, destination)
        client = self._end(source, source_port or self.ephemeral_port(source))
        server = self._end(destination, port)
        return TcpConnection(client, server, route.link, server_hops=route.hops_back)

    def _end(self, name: str, port: int) -> TcpEnd:
        host = self.hosts[name]
        sequence = self.rng.getrandbits(32)
        if host.role == "plc":
            return TcpEnd(self.ip_hosts[name], port, sequence, timestamps=False, window=8192, mss=1460)
        offset = self.rng.getrandbits(32)
        window = 65535 if name in WINDOWS_HOSTS else 64240
        scale = 8 if name in WINDOWS_HOSTS else 7
        return TcpEnd(
            self.ip_hosts[name],
            port,
            sequence,
            window=window << scale,
            window_scale=scale,
            clock_offset=offset,
        )
