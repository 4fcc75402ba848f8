"""Observed traffic as permits: every client that opened a service on a server may do so.

An observed edge is one client address, one server address, the transport and server port, the
protocol name and the operation categories seen. Edges between the same two addresses on the same
transport and port become one permit (protocols and operations merged), labelled by what was seen,
so that reachability over observed traffic can be compared with the model's and the firewall's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from plantwarden.core.errors import InvalidInput
from plantwarden.zones.plant.model import OPERATIONS, Address, SiteModel
from plantwarden.zones.plant.permits import Permit, host_network

IGNORED_OPERATIONS = frozenset({"malformed"})
"""Operations seen that no permit allows (a malformed request grants nothing); left out."""


@dataclass(frozen=True, slots=True)
class ObservedEdge:
    """A client seen opening `transport`/`port` on a server with `protocol`, doing `operations`."""

    client: Address
    server: Address
    transport: str
    port: int
    protocol: str
    operations: frozenset[str] = frozenset()

    @classmethod
    def of(cls, edge: ObservedEdge | Sequence[object]) -> ObservedEdge:
        """An edge from a tuple (client, server, transport, port, protocol, operations), checked."""
        if isinstance(edge, ObservedEdge):
            return edge
        if len(edge) != 6:
            raise InvalidInput(
                "an observed edge is (client address, server address, transport, server port,"
                f" protocol, operations seen), not {edge!r}"
            )
        client, server, transport, port, protocol, operations = edge
        return cls(
            _address(client, "client"),
            _address(server, "server"),
            _transport(transport),
            _port(port),
            str(protocol),
            _operations(operations),
        )


def observed_permits(site: SiteModel, edges: Iterable[ObservedEdge | Sequence[object]]) -> tuple[Permit, ...]:
    """One permit per (client, server, transport, port) seen, in the order first seen."""
    names = {address: asset.id for asset in site.assets for address in asset.addresses}
    merged: dict[tuple[Address, Address, str, int], tuple[list[str], set[str]]] = {}
    for edge in map(ObservedEdge.of, edges):
        key = (edge.client, edge.server, edge.transport, edge.port)
        protocols, operations = merged.setdefault(key, ([], set()))
        if edge.protocol not in protocols:
            protocols.append(edge.protocol)
        operations.update(edge.operations)
    return tuple(
        Permit(
            sources=(host_network(client),),
            destinations=(host_network(server),),
            transport=transport,
            ports=(port,),
            operations=frozenset(operations),
            label=f"observed {'+'.join(protocols)} {names.get(client, client)} -> "
            f"{names.get(server, server)} {transport}/{port}",
        )
        for (client, server, transport, port), (protocols, operations) in merged.items()
    )


def _address(value: object, role: str) -> Address:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        raise InvalidInput(f"the {role} of an observed edge is not an IP address: {value!r}") from None


def _transport(value: object) -> str:
    if value not in ("tcp", "udp"):
        raise InvalidInput(f"the transport of an observed edge must be tcp or udp, not {value!r}")
    return str(value)


def _port(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise InvalidInput(f"the server port of an observed edge must be 1-65535, not {value!r}")
    return value


def _operations(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInput(f"the operations of an observed edge are a set of names, not {value!r}")
    names = frozenset(str(name) for name in value) - IGNORED_OPERATIONS
    unknown = sorted(names - set(OPERATIONS))
    if unknown:
        raise InvalidInput(
            f"unknown operations in an observed edge: {', '.join(unknown)} (known: {', '.join(OPERATIONS)})"
        )
    return names
