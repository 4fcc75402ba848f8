"""The generator's ground truth for the asset inventory: which hosts the capture shows, in the
inventory's role vocabulary, and what each client's polling really was.

`Appearances` watches the frames as they are written: a host appears when the capture holds a
frame it sent with its own address (an IP packet from its IP, an ARP message with it as sender,
an LLDPDU from its MAC). A router forwarding another host's packet does not make the router
appear, and an address only ever probed does not appear: a passive sensor learns neither.

`Polling` keeps, per (client IP, server IP, protocol, function), the requests written, the delay
from each request's frame to its answer's frame (the frames that complete each PDU), and the
intervals between consecutive requests of one polled item (a unit, address and quantity for
Modbus, a topic for MQTT), the same definitions as the inventory's edge book. Delays and
intervals are kept as 4-byte floats (8 bytes per request), for the medians.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from plantwarden.inventory.roles import Role
from plantwarden.sim.plant import Host, Plant

INVENTORY_ROLES: dict[str, Role] = {
    "plc": Role.PLC,
    "hmi": Role.HMI,
    "engineering": Role.ENGINEERING_WORKSTATION,
    "historian": Role.HISTORIAN,
    "it": Role.IT_HOST,
    "device": Role.NETWORK_DEVICE,
    "iot": Role.IOT_DEVICE,
}
"""The plant's host roles in the inventory's words: a `device` is network equipment (a switch),
an `iot` host a sensor or gateway that publishes telemetry."""

PollKey = tuple[str, str, str, int]
"""(client IP, server IP, protocol, function code)."""


class Poll(NamedTuple):
    """A request (with its key and polled item) or, without a key, the answer to request `token`."""

    token: int
    key: PollKey | None = None
    item: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One host as the ledger lists it."""

    name: str
    ip: str
    mac: str
    zone: str
    role: Role


def host_entries(
    plant: Plant, hosts: Iterable[Host], mac_of: Callable[[str], bytes], router_mac: Callable[[str], bytes]
) -> list[HostEntry]:
    """The plant's hosts, the hosts outside it, and each zone's router (network + 1)."""
    entries = [
        HostEntry(
            f"router-{zone.name}",
            str(zone.network.network_address + 1),
            _mac(router_mac(zone.name)),
            zone.name,
            Role.NETWORK_DEVICE,
        )
        for zone in plant.zones
    ]
    inside = set(plant.hosts)
    for host in hosts:
        zone = host.zone if host in inside else "outside"
        entries.append(
            HostEntry(host.name, host.address, _mac(mac_of(host.name)), zone, INVENTORY_ROLES[host.role])
        )
    return entries


def _mac(raw: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in raw)


ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_LLDP = 0x0800, 0x0806, 0x88CC
TAGS = (0x8100, 0x88A8)


class Appearances:
    """Which known hosts sent a frame with their own address (see the module docstring)."""

    def __init__(self) -> None:
        self._by_ip: dict[bytes, HostEntry] = {}
        self._by_mac: dict[bytes, HostEntry] = {}
        self._seen: dict[str, HostEntry] = {}

    def know(self, entries: Iterable[HostEntry]) -> None:
        """The hosts to watch for."""
        for entry in entries:
            self._by_ip.setdefault(ipaddress.IPv4Address(entry.ip).packed, entry)
            self._by_mac.setdefault(bytes.fromhex(entry.mac.replace(":", "")), entry)

    def note(self, frame: bytes) -> None:
        """Look at one written frame."""
        offset = 12
        ethertype = int.from_bytes(frame[offset : offset + 2], "big")
        while ethertype in TAGS:
            offset += 4
            ethertype = int.from_bytes(frame[offset : offset + 2], "big")
        body = offset + 2
        if ethertype == ETHERTYPE_IPV4:
            entry = self._by_ip.get(frame[body + 12 : body + 16])
        elif ethertype == ETHERTYPE_ARP:
            entry = self._by_ip.get(frame[body + 14 : body + 18])
        elif ethertype == ETHERTYPE_LLDP:
            entry = self._by_mac.get(frame[6:12])
        else:
            entry = None
        if entry is not None and entry.name not in self._seen:
            self._seen[entry.name] = entry

    def to_list(self) -> list[dict[str, str]]:
        """The hosts that appeared, by address."""
        entries = sorted(self._seen.values(), key=lambda entry: ipaddress.IPv4Address(entry.ip))
        return [
            {"name": e.name, "ip": e.ip, "mac": e.mac, "zone": e.zone, "role": e.role.value} for e in entries
        ]


@dataclass(slots=True)
class _Series:
    requests: int = 0
    delays: array[float] = field(default_factory=lambda: array("f"))
    intervals: array[float] = field(default_factory=lambda: array("f"))


class Polling:
    """Requests, answer delays and poll intervals per (client, server, protocol, function)."""

    def __init__(self) -> None:
        self._series: dict[PollKey, _Series] = {}
        self._open: dict[int, tuple[PollKey, float]] = {}
        self._last: dict[tuple[PollKey, tuple[Any, ...]], float] = {}
        self._tokens = itertools.count(1)

    def token(self) -> int:
        """A new request's token, to mark its frame and its answer's."""
        return next(self._tokens)

    def note(self, poll: Poll, time: float) -> None:
        """A request or an answer completed in a frame written at `time`."""
        if poll.key is None:
            opened = self._open.pop(poll.token, None)
            if opened is not None:
                self._series[opened[0]].delays.append(time - opened[1])
            return
        series = self._series.setdefault(poll.key, _Series())
        series.requests += 1
        self._open[poll.token] = (poll.key, time)
        last = self._last.get((poll.key, poll.item))
        if last is not None:
            series.intervals.append(time - last)
        self._last[(poll.key, poll.item)] = time

    def to_list(self) -> list[dict[str, Any]]:
        """One entry per key, sorted by client, server (as addresses), protocol and function."""

        def order(key: PollKey) -> tuple[Any, ...]:
            return (ipaddress.ip_address(key[0]), ipaddress.ip_address(key[1]), key[2], key[3])

        listed = []
        for key in sorted(self._series, key=order):
            series = self._series[key]
            client, server, protocol, function = key
            listed.append(
                {
                    "client": client,
                    "server": server,
                    "protocol": protocol,
                    "function": function,
                    "requests": series.requests,
                    "answers": len(series.delays),
                    "answer_median_s": _ranked(series.delays, 0.5),
                    "answer_p95_s": _ranked(series.delays, 0.95),
                    "intervals": len(series.intervals),
                    "interval_median_s": _ranked(series.intervals, 0.5),
                }
            )
        return listed


def _ranked(values: array[float], share: float) -> float | None:
    """The nearest-rank quantile (the smallest value whose rank reaches `share` of the count)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(math.ceil(share * len(ordered)) - 1, 0)], 6)
