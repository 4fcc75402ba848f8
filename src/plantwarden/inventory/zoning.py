"""A plant.yaml draft from the observed communication graph (`plantwarden zones suggest`).

The stored inventory of a site (assets with their addresses and inferred roles, communication
edges) is grouped into zones by subnet (/24 for IPv4 and /64 for IPv6 by default), each zone at
the Purdue level most of its hosts' roles point to; addresses outside the plant's networks go to
one zone `external`, which lists them as assets (one such zone per network segment when traffic
was seen in several, since a zone holds addresses of its own segment). Every pair of zones that
talk gets a conduit with one channel per service and direction seen (`zoning_conduits.py`); hosts
whose role is known well enough become assets (`zoning_assets.py`).
The result is YAML text with the evidence as comments (`zoning_yaml.py`), checked by the
plant.yaml loader before it is returned: the sensor proposes, the engineer decides.

Heuristics, each stated in the draft where it applies:
- levels: PLCs and IoT devices vote for level 1, HMIs, engineering workstations and historians
  for 2, IT hosts for 4; network devices and unknown hosts do not vote; a tie goes to the lower
  level (the zone holds control functions and deserves their protection); no vote: level 3;
- target security levels by Purdue level (`SECURITY_LEVELS`): 2 for control and supervisory
  zones, 1 for enterprise IT, 0 for the outside; a conduit takes the higher of its two zones';
- criticality: PLCs high, other assets medium.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from plantwarden.core.errors import InvalidInput, PlantwardenError
from plantwarden.inventory.zoning_assets import draft_assets
from plantwarden.inventory.zoning_conduits import draft_conduits
from plantwarden.inventory.zoning_draft import (
    ID_PATTERN,
    Draft,
    DraftZone,
    IdRegistry,
    address_words,
    plant_id,
    plural,
)
from plantwarden.inventory.zoning_inputs import (
    LOCAL_NETWORKS,
    ObservedEdge,
    ObservedHost,
    SuggestOptions,
    ZoneMap,
    is_unicast,
    parse_address,
)
from plantwarden.inventory.zoning_yaml import write_draft
from plantwarden.zones.plant.load import PlantFileError, load_plant_bytes
from plantwarden.zones.plant.model import Address, Network, PlantModel

__all__ = [
    "LOCAL_NETWORKS",
    "ObservedEdge",
    "ObservedHost",
    "SuggestOptions",
    "Suggestion",
    "SuggestionDoesNotLoad",
    "plural",
    "suggest_plant",
    "zone_level",
]

LEVEL_OF_ROLE = {
    "plc": 1,
    "iot_device": 1,
    "hmi": 2,
    "engineering_workstation": 2,
    "historian": 2,
    "it_host": 4,
}
"""The Purdue level each role votes for; roles not listed (network devices, unknown) do not vote."""
NO_VOTE_LEVEL = 3
EXTERNAL_LEVEL = 5
SECURITY_LEVELS = {1: 2, 2: 2, 3: 2, 4: 1, 5: 0}
"""Target security level (uniform) of a zone at each Purdue level."""
ZONE_KINDS = {1: ("cell", "Control cell"), 2: ("supervisory", "Supervisory"), 4: ("enterprise", "Enterprise")}
UNCLASSIFIED = ("unclassified", "Unclassified")
EXTERNAL_ZONE = "external"


class SuggestionDoesNotLoad(PlantwardenError):
    """The draft written does not pass the plant.yaml loader: a bug of `zones suggest`."""

    code = "suggestion_invalid"


@dataclass(frozen=True)
class Suggestion:
    """The draft as plant.yaml text, and the model the loader read from it."""

    text: str
    model: PlantModel
    draft: Draft = field(repr=False)

    @property
    def channels(self) -> int:
        return sum(len(conduit.channels) for conduit in self.draft.conduits)


def suggest_plant(
    site: str,
    hosts: Sequence[ObservedHost],
    edges: Sequence[ObservedEdge],
    options: SuggestOptions | None = None,
) -> Suggestion:
    """The plant.yaml draft of `site` from its observed hosts and edges, checked by the loader."""
    if not ID_PATTERN.fullmatch(site):
        raise InvalidInput(f"{site!r} is not a site id: use 1-63 lower-case letters, digits and hyphens")
    zone_map = ZoneMap(options or SuggestOptions())
    _place(zone_map, hosts, edges)
    if not zone_map.zones:
        raise InvalidInput(
            f"site {site!r} has no stored hosts or communications with an IP address: "
            f"run `plantwarden sensor run --site {site}` first"
        )
    zones = _zones(zone_map)
    conduits, left_out = draft_conduits(zone_map, edges)
    assets, not_declared = draft_assets(zone_map, hosts, conduits, zones)
    draft = Draft(
        site, zones, conduits, assets, _header(site, zone_map, hosts, edges, left_out + not_declared)
    )
    text = write_draft(draft)
    try:
        model = load_plant_bytes(text.encode("utf-8"), f"suggested plant.yaml of {site}")
    except PlantFileError as error:
        raise SuggestionDoesNotLoad(
            f"the suggested plant.yaml does not load (a bug of `zones suggest`; please report it):\n{error}",
            details=error.details,
        ) from error
    return Suggestion(text, model, draft)


def _place(zone_map: ZoneMap, hosts: Iterable[ObservedHost], edges: Iterable[ObservedEdge]) -> None:
    """Every address seen, with the host that holds it; zones are created empty, keyed."""
    for host in hosts:
        for segment, text in host.placed():
            address = parse_address(text)
            if is_unicast(address):
                zone_map.hosts.setdefault((segment, address), host)
                zone_map.seen.add((segment, address))
                zone_map.zones.setdefault(zone_map.key(segment, address), _empty_zone())
    for edge in edges:
        ends = (parse_address(edge.client), parse_address(edge.server))
        if all(is_unicast(address) for address in ends):
            for address in ends:
                zone_map.seen.add((edge.segment, address))
                zone_map.zones.setdefault(zone_map.key(edge.segment, address), _empty_zone())


def _empty_zone() -> DraftZone:
    return DraftZone(id="", name="", purdue_level=NO_VOTE_LEVEL, security_level=0, subnet=None)


def _zones(zone_map: ZoneMap) -> list[DraftZone]:
    """Level, id, name and evidence of every zone; local zones by address, the outside last."""
    members: dict[tuple[str, Network | None], list[tuple[Address, ObservedHost]]] = {}
    for (segment, address), host in sorted(zone_map.hosts.items(), key=lambda i: (i[0][0], _order(i[0][1]))):
        members.setdefault(zone_map.key(segment, address), []).append((address, host))
    segments = {segment for segment, _ in zone_map.zones}
    outside = [key for key in zone_map.zones if key[1] is None]
    ids = IdRegistry()
    for key in sorted(zone_map.zones, key=_zone_order):
        zone = zone_map.zones[key]
        if key[1] is None:
            _external(zone, key[0], EXTERNAL_ZONE if len(outside) == 1 else plant_id(EXTERNAL_ZONE, key[0]))
            ids.claim(zone.id)
        else:
            _local(zone, key, members.get(key, []), ids, multiple_segments=len(segments) > 1)
    return [zone_map.zones[key] for key in sorted(zone_map.zones, key=_zone_order)]


def _order(address: Address) -> tuple[int, int]:
    return (address.version, int(address))


def _zone_order(key: tuple[str, Network | None]) -> tuple[int, str, int, int]:
    segment, subnet = key
    if subnet is None:
        return (1, segment, 0, 0)
    return (0, segment, subnet.version, int(subnet.network_address))


def _external(zone: DraftZone, segment: str, zone_id: str) -> None:
    zone.id, zone.name, zone.segment = zone_id, "Outside the plant's networks", segment
    zone.purdue_level, zone.security_level = EXTERNAL_LEVEL, SECURITY_LEVELS[EXTERNAL_LEVEL]
    zone.comments.append(
        "addresses outside the plant's private, loopback and link-local networks (and any --local"
        " networks), listed as assets; level 5 and security level 0: nothing there is trusted"
    )


def _local(
    zone: DraftZone,
    key: tuple[str, Network | None],
    members: list[tuple[Address, ObservedHost]],
    ids: IdRegistry,
    *,
    multiple_segments: bool,
) -> None:
    segment, subnet = key
    assert subnet is not None
    level, comments = zone_level(members)
    voted = any(host.role in LEVEL_OF_ROLE for _, host in members)
    word, label = ZONE_KINDS.get(level, UNCLASSIFIED) if voted else UNCLASSIFIED
    wanted = plant_id(word, address_words(subnet))
    zone.id = ids.claim(plant_id(wanted, segment) if multiple_segments else wanted, plant_id(wanted, segment))
    zone.name = f"{label} {subnet}" + (f" (segment {segment})" if multiple_segments else "")
    zone.subnet, zone.segment = subnet, segment
    zone.purdue_level, zone.security_level = level, SECURITY_LEVELS[level]
    zone.comments.extend(comments)


NO_VOTE = "no host with a known role (network devices and unknown hosts do not vote): level 3 until reviewed"


def zone_level(members: Sequence[tuple[Address, ObservedHost]]) -> tuple[int, list[str]]:
    """The Purdue level of a zone from its hosts' roles, and the comments that say why."""
    votes = [
        (address, host, LEVEL_OF_ROLE[host.role]) for address, host in members if host.role in LEVEL_OF_ROLE
    ]
    silent = [f"{address}" for address, host in members if host.role not in LEVEL_OF_ROLE]
    if not votes:
        return NO_VOTE_LEVEL, [NO_VOTE + (f" ({', '.join(silent)})" if silent else "")]
    counts = Counter(level for _, _, level in votes)
    level = min(counts, key=lambda lv: (-counts[lv], lv))
    roles = Counter(host.role for _, host, lv in votes if lv == level)
    said = ", ".join(f"{n} {role}" for role, n in sorted(roles.items()))
    comments = [f"level {level}: {counts[level]} of {plural(len(votes), 'voting host')} ({said})"]
    if len(counts) > 1 and counts[level] == max(n for lv, n in counts.items() if lv != level):
        comments.append("a tie between levels goes to the lower level (the zone holds control functions)")
    outliers = [f"{address} {host.role} (level {lv})" for address, host, lv in votes if lv != level]
    if outliers:
        comments.append("mixed zone; outliers to move or to split off: " + ", ".join(outliers))
    if silent:
        comments.append(f"not voting (network devices, unknown roles): {', '.join(silent)}")
    return level, comments


def _header(
    site: str,
    zone_map: ZoneMap,
    hosts: Sequence[ObservedHost],
    edges: Sequence[ObservedEdge],
    notes: list[str],
) -> list[str]:
    options = zone_map.options
    local = "the private, loopback and link-local networks"
    if options.local_networks != LOCAL_NETWORKS:
        local = ", ".join(str(n) for n in options.local_networks)
    return [
        f"A draft of the plant model of site {site}, suggested by `plantwarden zones suggest` from the"
        f" stored inventory ({plural(len(hosts), 'asset')}, {plural(len(edges), 'communication')})."
        " Nothing in it is enforced until an engineer has reviewed it: check every zone's level, rename"
        " the ids, remove what the plant does not need, add windows, rights and register maps.",
        f"Zones: the IPv4 /{options.ipv4_prefix} and IPv6 /{options.ipv6_prefix} subnets of {local};"
        " any other address is external. Assets: the hosts whose role was inferred with a confidence of"
        f" at least {options.min_confidence:g}, the external addresses and the clients that channels name"
        f" (at most {options.max_clients} per channel).",
        *notes,
    ]
