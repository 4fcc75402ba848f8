"""Compile a site of the plant model into the nftables ruleset of the router between its zones.

One forward chain, policy drop: established and related traffic passes; assets marked
`gateway_only` can be reached on their industrial ports from the site's gateways alone; each
channel of each conduit becomes one accept rule per address family (and per UTC day of its
schedule) commented `conduit X channel Y`; the rest is logged (rate-limited) and dropped.
Variants: `island` cuts one zone off from every other (established sessions included);
`fail-closed` is what the router loads when the platform cannot vouch for its policy: nothing
enters the zone (or, without a zone, any zone) except from the gateways, and nothing leaves it
except to them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

from plantwarden.zones.firewall.errors import CannotRender
from plantwarden.zones.firewall.rules import COMMENT_LIMIT, LOG_LIMIT, Rule, Ruleset, collapsed, ruleset_text
from plantwarden.zones.firewall.schedule import next_offset_change, schedule_segments, utc_offset_minutes
from plantwarden.zones.firewall.sets import (
    FAMILIES,
    address_sets,
    gateway_networks,
    in_family,
    protected_ports,
    responder_ports,
    without,
    zone_family_networks,
)
from plantwarden.zones.plant.model import SiteModel
from plantwarden.zones.plant.permits import Permit, declared_permits, host_network, require_one_address_space

Variant = Literal["normal", "island", "fail-closed"]
VARIANTS: tuple[str, ...] = ("normal", "island", "fail-closed")
ESTABLISHED = Rule("established and related", "accept", ct_states=("established", "related"))
DEFAULT_LOG = Rule("logged default drop", limit=LOG_LIMIT, log_prefix="pw drop: ")


def render_ruleset(
    site: SiteModel,
    *,
    variant: Variant = "normal",
    zone: str | None = None,
    table: str = "plantwarden",
    at: datetime | None = None,
) -> str:
    """The `nft -f` script of the router between the site's zones (see the module docstring).
    `at` is the instant whose UTC offset of the site converts the schedule windows (now)."""
    at = at or datetime.now(UTC)
    ruleset = compile_ruleset(site, variant=variant, zone=zone, table=table, at=at)
    return ruleset_text(ruleset, header_lines(site, variant, zone, at))


def compile_ruleset(
    site: SiteModel, *, variant: Variant, zone: str | None, table: str, at: datetime
) -> Ruleset:
    """The ruleset as values (what `render_ruleset` writes and `drift` compares). A site whose zones
    of different segments share addresses is refused: one router's sets cannot tell them apart."""
    _check_variant(site, variant, zone)
    require_one_address_space(site, "The router's ruleset")
    rules = [*_guards(site, variant, zone), ESTABLISHED, *_gateway_only_rules(site, variant, zone)]
    rules += _fail_closed_accepts(site, zone) if variant == "fail-closed" else []
    rules += [rule for permit in _permits(site, variant, zone) for rule in _permit_rules(site, permit, at)]
    rules.append(DEFAULT_LOG)
    for rule in rules:
        if len(rule.comment.encode()) > COMMENT_LIMIT:
            raise CannotRender(f"the rule comment {rule.comment!r} is longer than nft keeps: shorten the ids")
    return Ruleset(table, "drop", tuple(rules), address_sets(site))


def _check_variant(site: SiteModel, variant: str, zone: str | None) -> None:
    if variant not in VARIANTS:
        raise CannotRender(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    if variant == "island" and zone is None:
        raise CannotRender("the island variant needs the zone to cut off (--zone)")
    if variant == "normal" and zone is not None:
        raise CannotRender("a zone is only given with the island or fail-closed variant")
    if zone is not None and zone not in {z.id for z in site.zones}:
        raise CannotRender(f"site {site.id} has no zone {zone!r}")


def _logged_drop(rule: Rule) -> list[Rule]:
    """The rule twice: once logging (rate-limited, so a flood cannot fill the log), once dropping."""
    return [replace(rule, limit=LOG_LIMIT, log_prefix=f"pw {rule.comment}: "), replace(rule, verdict="drop")]


def _guards(site: SiteModel, variant: str, zone: str | None) -> list[Rule]:
    """Drops that come before the established rule, so that they cut running sessions too."""
    rules: list[Rule] = []
    for family in FAMILIES:
        gateways = gateway_networks(site, family)
        if variant == "fail-closed" and zone is None:
            rules += _logged_drop(Rule("fail-closed site", None, family, gateways, True, gateways, True))
            continue
        networks = zone_family_networks(site, zone, family) if zone is not None else ()
        if not networks:
            continue
        if variant == "island":
            rules += _logged_drop(Rule(f"island zone {zone}", None, family, sources=networks))
            rules += _logged_drop(Rule(f"island zone {zone}", None, family, destinations=networks))
        elif variant == "fail-closed":
            comment = f"fail-closed zone {zone}"
            rules += _logged_drop(Rule(comment, None, family, networks, False, gateways, True))
            rules += _logged_drop(Rule(comment, None, family, gateways, True, networks, False))
    return rules


def _gateway_only_rules(site: SiteModel, variant: str, zone: str | None) -> list[Rule]:
    """For each gateway-only asset: drop its industrial ports to all but the gateways, then let
    the gateways in (unless the asset's zone is an island)."""
    rules: list[Rule] = []
    for asset in (a for a in site.assets if a.gateway_only):
        comment = f"gateway-only asset {asset.id}"
        for transport, ports in protected_ports(site, asset).items():
            for family in FAMILIES:
                addresses = collapsed(in_family((host_network(a) for a in asset.addresses), family))
                gateways = gateway_networks(site, family)
                if not addresses:
                    continue
                rules += _logged_drop(
                    Rule(comment, None, family, gateways, True, addresses, False, transport, ports)
                )
                if gateways and not (variant == "island" and asset.zone == zone):
                    rules.append(
                        Rule(comment, "accept", family, gateways, False, addresses, False, transport, ports)
                    )
    return rules


def _fail_closed_accepts(site: SiteModel, zone: str | None) -> list[Rule]:
    """The gateways may still open what the model's channels open into the zone(s)."""
    rules: list[Rule] = []
    for zone_id in [zone] if zone is not None else [z.id for z in site.zones]:
        for transport, ports in responder_ports(site, zone_id).items():
            for family in FAMILIES:
                gateways = gateway_networks(site, family)
                networks = zone_family_networks(site, zone_id, family)
                if gateways and networks:
                    comment = f"fail-closed zone {zone_id} gateway"
                    rules.append(
                        Rule(comment, "accept", family, gateways, False, networks, False, transport, ports)
                    )
    return rules


def _permits(site: SiteModel, variant: str, zone: str | None) -> list[Permit]:
    """The declared permits, less the cut-off zone's networks (none at all for a fail-closed site)."""
    if variant == "normal":
        return list(declared_permits(site))
    if zone is None:
        return []
    return [p for p in (without(site, permit, zone) for permit in declared_permits(site)) if p is not None]


def _permit_rules(site: SiteModel, permit: Permit, at: datetime) -> list[Rule]:
    conduit, channel = permit.label.split("/", 1)
    comment = f"conduit {conduit} channel {channel}"
    ports = tuple(sorted(set(permit.ports)))
    rules: list[Rule] = []
    for family in FAMILIES:
        sources = collapsed(in_family(permit.sources, family))
        destinations = collapsed(in_family(permit.destinations, family))
        if not sources or not destinations:
            continue
        base = Rule(comment, "accept", family, sources, False, destinations, False, permit.transport, ports)
        if not permit.schedule:
            rules.append(base)
            continue
        for segment in schedule_segments(site, permit.schedule, at):
            hours = (segment.first_second, segment.last_second)
            rules.append(
                replace(base, comment=f"{comment} window {segment.window}", day=segment.day, hours=hours)
            )
    return rules


def header_lines(site: SiteModel, variant: str, zone: str | None, at: datetime) -> list[str]:
    """The comment at the top of the script: what it is, what it assumes, what it leaves out."""
    what = variant if zone is None else f"{variant} (zone {zone})"
    lines = [
        f"Plantwarden: the forward ruleset of the router between the zones of site {site.id}, {what}.",
        "Loading replaces table inet plantwarden only (declared, deleted and created again in one",
        "transaction): loading it twice changes nothing, other tables are untouched.",
        "Layer 3/4 only: operations (read, write, program, control, ...) are not packet matches;",
        "the gateway enforces them.",
    ]
    if any(channel.schedule for conduit in site.conduits for channel in conduit.channels):
        lines += _time_lines(site, at)
    return lines


def _time_lines(site: SiteModel, at: datetime) -> list[str]:
    offset = utc_offset_minutes(site, at)
    change = next_offset_change(site, at)
    sign = "+" if offset >= 0 else "-"
    until = f"until {change:%Y-%m-%d %H:%M} UTC, when it changes: render again then" if change else "all year"
    return [
        f"Schedule windows are in {site.timezone}, UTC{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}",
        f"{until}.",
        "They are written in UTC: meta day as the UTC weekday, meta hour as seconds since UTC midnight",
        "(numbers, which nft does not shift by the loading process's time zone; nft lists them as",
        "local HH:MM). Assumes the kernel keeps UTC (sys_tz 0) for meta day, the Linux default.",
    ]
