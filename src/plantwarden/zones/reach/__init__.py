"""Reachability: what an attacker holding a zone can reach, in the model, in observed traffic and
in the firewall, and where those three disagree.

The input is a site (zones, assets, criticality) and a list of `Permit`s: the declared ones
(`zones.plant.permits.declared_permits`), those read back from a rendered firewall, or observed
flows (`observed_permits`). The same semantics apply to all three:

Hosts (the nodes).
    Every declared asset is one host, holding all of its addresses. Every other address that a
    zone subnet or a permit names belongs to an undeclared host; such addresses are grouped by the
    zone subnet they lie in and the permits whose sources and destinations hold them, and each group
    is one node standing for "any other host" there. Addresses of one group are interchangeable:
    no permit and no zone tells them apart, so a search over every single address would find the
    same answers (the tests check this). With the declared permits, which name whole zone networks
    or single assets, this is exactly one node per zone subnet; a firewall rule or an observed flow
    naming part of a subnet splits it. Addresses in no zone subnet that a permit names are hosts
    outside the model (zone None), grouped the same way. Subnets of one segment do not overlap
    (the loader checks it), and a site whose zones of different segments share addresses is
    refused (`zones.plant.permits.require_one_address_space`): the search has one address space.
Edges (what an attacker can use).
    A permit gives an edge A -> B (its label, transport and ports, operations, schedule) for every
    host A with an address in its sources and B with an address in its destinations: holding A, the
    attacker may open that service on B. A permit with a schedule counts: it is open some of the
    time, which is enough. Inside one zone traffic is not filtered: every host of a zone may open any
    service, with every operation, on another host of the same zone (label `inside ZONE`).
Pivots (what an attacker gains).
    The attacker gains a host only by opening a service the host accepts, and a host accepts a
    service exactly when it lies in the destinations of some permit. So every host entered over a
    permit is gained, and inside a zone only the hosts that answer some permit are gained: a host
    that only initiates (an HMI polling a PLC) is never a foothold for an attacker elsewhere.
The attacker.
    `reachable(site, permits, zone)` starts holding every host of the zone (whichever of them is
    compromised first, the union of what each reaches) and searches breadth first, opening each
    permit and each zone once, so an answer costs one pass over the permits' hosts. It answers the
    zones reached, the crown jewels (assets of criticality "critical") reached, and hosts outside
    the model reached, each with the fewest hops, every way in from a reached host (permit labels,
    services and the operations available at the last hop) and a few shortest paths.
    `paths_to_crown_jewels` asks the same from every zone; `compare` sets the three views side by
    side and lists every zone or asset reached in one but not another.
"""

from plantwarden.zones.reach.answers import Reach, Route, paths_to_crown_jewels, reach_from, reachable
from plantwarden.zones.reach.compare import Difference, compare, compare_views
from plantwarden.zones.reach.hosts import Host, HostGraph
from plantwarden.zones.reach.observed import ObservedEdge, observed_permits
from plantwarden.zones.reach.search import Entry, Hop, Path, Target, inside_label

__all__ = [
    "Difference",
    "Entry",
    "Hop",
    "Host",
    "HostGraph",
    "ObservedEdge",
    "Path",
    "Reach",
    "Route",
    "Target",
    "compare",
    "compare_views",
    "inside_label",
    "observed_permits",
    "paths_to_crown_jewels",
    "reach_from",
    "reachable",
]
