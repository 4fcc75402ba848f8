"""A ruleset read back as the permits it really grants, for reachability over the firewall view.

nftables decides a new connection by the first rule with a verdict that matches it, and the
chain's policy when none does. So a connection is accepted exactly when some accept rule matches
it and no drop rule before that one does: each accept rule grants what it matches less what the
drops above it match (the gateway-only guards, the island and fail-closed cuts), and the policy,
when it accepts, grants what no drop matches. Networks and ports are split exactly (see
`regions`); pieces of one rule are joined again only where the join is exact (same sources, or
same destinations), never into a product that would grant more.

What cannot stop a new connection is left out on purpose, so that the view never shows less
access than the router gives: rules for established or related traffic only, rules that only log,
drops limited in rate or in time (the traffic passes at other times), and drops with matches this
reader does not understand; an accept with such matches counts as if they always matched. Packet
rules carry no operations (the gateway enforces them): every permit's `operations` is empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from plantwarden.zones.firewall.nftjson import read_ruleset
from plantwarden.zones.firewall.regions import (
    ADDRESS_BITS,
    ALL_PORTS,
    ANY_SERVICE,
    Box,
    Services,
    Spans,
    difference,
    everything,
    merged,
    network_spans,
    spans_networks,
)
from plantwarden.zones.firewall.rules import DAY_NAMES, Rule, Ruleset
from plantwarden.zones.plant.model import Network
from plantwarden.zones.plant.permits import Permit

CHANNEL_COMMENT = re.compile(
    r"^conduit (?P<conduit>\S+) channel (?P<channel>\S+)(?: window (?P<window>\S+))?$"
)
POLICY_LABEL = {"accept": "chain forward policy accept", "none": "no forward chain (nothing filtered)"}
"""The label of what a chain that lets unmatched connections through grants."""

Part = tuple[str, str, Spans]
"""(family, transport as a permit names it, ports)."""
Grant = tuple[str, Part, Spans, Spans]
"""(label, part, sources, destinations)."""


def listed_permits(document: Any, table: str = "plantwarden") -> tuple[Permit, ...]:
    """The permits of a listed ruleset (`nft -j list table inet <table>`, running or exported)."""
    return firewall_permits(read_ruleset(document, table))


def firewall_permits(ruleset: Ruleset) -> tuple[Permit, ...]:
    """Every new connection the forward chain accepts, as permits (see the module docstring). The
    label is `conduit/channel` for channel rules, else the rule's comment; a channel's window, or
    the UTC day and hours of a timed rule without one, is the permit's schedule."""
    drops: list[Box] = []
    schedules: dict[Grant, set[str] | None] = {}
    for index, rule in enumerate((*ruleset.rules, *_policy_rule(ruleset))):
        if not _opens_new(rule):
            continue
        if rule.verdict == "drop" and _always_drops(rule):
            drops.extend(rule_boxes(rule))
        elif rule.verdict == "accept":
            label, window = rule_label(rule, index)
            for piece in _less(rule_boxes(rule), drops):
                for part in _parts(piece):
                    _add_schedule(schedules, (label, part, piece.sources, piece.destinations), window)
    return tuple(_permits(schedules))


def rule_label(rule: Rule, index: int) -> tuple[str, str | None]:
    """The permit label of an accept rule and its schedule (None: always)."""
    match = CHANNEL_COMMENT.fullmatch(rule.comment)
    label = f"{match['conduit']}/{match['channel']}" if match else (rule.comment or f"rule {index + 1}")
    if match and match["window"]:
        return label, match["window"]
    if rule.day is None and rule.hours is None:
        return label, None
    day = DAY_NAMES[rule.day] if rule.day is not None else "every day"
    first, last = rule.hours or (0, 86399)
    return (
        label,
        f"{day} {first // 3600:02d}:{first % 3600 // 60:02d}-{last // 3600:02d}:{last % 3600 // 60:02d} UTC",
    )


def rule_boxes(rule: Rule) -> list[Box]:
    """What the rule matches: one box per address family it applies to."""
    families = (rule.family,) if rule.family is not None else tuple(ADDRESS_BITS)
    services = ANY_SERVICE
    if rule.transport is not None:
        ports = merged((port, port) for port in rule.ports) if rule.ports else ALL_PORTS
        services = Services.of({rule.transport: ports}, others=False)
    return [
        Box(
            family,
            _side(rule.sources, rule.sources_negated, family),
            _side(rule.destinations, rule.destinations_negated, family),
            services,
        )
        for family in families
    ]


def _side(networks: tuple[Network, ...] | None, negated: bool, family: str) -> Spans:
    if networks is None:
        return everything(family)
    spans = network_spans(networks, family)
    return difference(everything(family), spans) if negated else spans


def _policy_rule(ruleset: Ruleset) -> list[Rule]:
    label = POLICY_LABEL.get(ruleset.policy)
    return [Rule(label, "accept")] if label is not None else []


def _opens_new(rule: Rule) -> bool:
    """Whether the rule can match the first packet of a connection (the one reachability needs)."""
    family_known = rule.family is None or rule.family in ADDRESS_BITS
    return family_known and (not rule.ct_states or "new" in rule.ct_states)


def _always_drops(rule: Rule) -> bool:
    """A drop counts only when it drops everything it is read to match, at every hour."""
    return not rule.other and rule.limit is None and rule.day is None and rule.hours is None


def _less(boxes: list[Box], drops: list[Box]) -> list[Box]:
    for cut in drops:
        boxes = [piece for box in boxes for piece in box.minus(cut)]
    return boxes


def _parts(box: Box) -> list[Part]:
    """A box's services as permit transports: each transport named, then every other one."""
    parts: list[Part] = [(box.family, transport, ports) for transport, ports in box.services.named if ports]
    if box.services.others:
        excluded = [transport for transport, _ in box.services.named]
        name = "any" if not excluded else "any but " + "/".join(excluded)
        parts.append((box.family, name, ALL_PORTS))
    return parts


def _add_schedule(schedules: dict[Grant, set[str] | None], grant: Grant, window: str | None) -> None:
    """A grant always open stays so; otherwise its windows add up."""
    known = schedules.setdefault(grant, set())
    if known is None:
        return
    if window is None:
        schedules[grant] = None
    else:
        known.add(window)


def _permits(schedules: dict[Grant, set[str] | None]) -> Iterable[Permit]:
    groups: dict[tuple[str, Part, tuple[str, ...]], list[tuple[Spans, Spans]]] = {}
    for (label, part, sources, destinations), windows in schedules.items():
        schedule = () if windows is None else tuple(sorted(windows))
        groups.setdefault((label, part, schedule), []).append((sources, destinations))
    for (label, (family, transport, ports), schedule), boxes in groups.items():
        for sources, destinations in _joined(boxes):
            yield Permit(
                sources=spans_networks(sources, family),
                destinations=spans_networks(destinations, family),
                transport=transport,
                ports=() if ports == ALL_PORTS else tuple(p for a, b in ports for p in range(a, b + 1)),
                operations=frozenset(),
                label=label,
                schedule=schedule,
            )


def _joined(boxes: list[tuple[Spans, Spans]]) -> list[tuple[Spans, Spans]]:
    """Pairs of (sources, destinations) joined where exact: same destinations, then same sources."""
    while True:
        by_destinations: dict[Spans, Spans] = {}
        for sources, destinations in boxes:
            by_destinations[destinations] = merged((*by_destinations.get(destinations, ()), *sources))
        by_sources: dict[Spans, Spans] = {}
        for destinations, sources in by_destinations.items():
            by_sources[sources] = merged((*by_sources.get(sources, ()), *destinations))
        joined = list(by_sources.items())
        if len(joined) == len(boxes):
            return joined
        boxes = joined
