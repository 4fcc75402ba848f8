"""A ruleset as values, in the one shape both the compiler and the reader of nft JSON produce.

The compiler (`render.py`) builds a `Ruleset` and writes it as an `nft -f` script; the reader
(`nftjson.py`) builds one from `nft -j list table`. Set references are resolved to their networks
and networks are collapsed, so two rulesets that match the same packets compare equal.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from plantwarden.zones.plant.model import Network

COMMENT_LIMIT = 127
"""nft keeps at most 128 bytes of a rule comment, the terminating zero included."""

DAY_NAMES: tuple[str, ...] = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
"""nft's `meta day` names, by its numbering (0 is Sunday)."""

LOG_LIMIT = (10, "second", 20)
"""Logged drops are rate-limited: 10 packets per second, bursts of 20."""


def collapsed(networks: Iterable[Network]) -> tuple[Network, ...]:
    """The networks merged into the fewest prefixes, IPv4 first, in address order."""
    networks = list(networks)
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))


def family_of(network: Network) -> str:
    """nft's name of the address family of a network (`ip` or `ip6`)."""
    return "ip" if network.version == 4 else "ip6"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the forward chain. `sources`/`destinations` None match any address; with a
    `family`, a tuple matches those networks (negated: every other address). `ports` empty
    matches any port of `transport`. `day` is nft's day number, `hours` an inclusive range of
    seconds since UTC midnight. `verdict` None is a rule that only logs."""

    comment: str
    verdict: str | None = None
    family: str | None = None
    sources: tuple[Network, ...] | None = None
    sources_negated: bool = False
    destinations: tuple[Network, ...] | None = None
    destinations_negated: bool = False
    transport: str | None = None
    ports: tuple[int, ...] = ()
    day: int | None = None
    hours: tuple[int, int] | None = None
    ct_states: tuple[str, ...] = ()
    limit: tuple[int, str, int] | None = None
    log_prefix: str | None = None
    other: tuple[str, ...] = ()
    """Expressions the reader did not understand, as nft JSON (they never compare equal to the model)."""


@dataclass(frozen=True, slots=True)
class Ruleset:
    """The table: its named address sets (by name) and the forward chain's policy and rules."""

    table: str
    policy: str
    rules: tuple[Rule, ...]
    sets: Mapping[str, tuple[str, tuple[Network, ...]]] = field(default_factory=lambda: MappingProxyType({}))
    """Each named set as (family, networks)."""


def set_reference(ruleset: Ruleset, family: str, networks: tuple[Network, ...]) -> str | None:
    """The name of a set holding exactly these networks, as `@name`, if there is one."""
    for name, (set_family, members) in ruleset.sets.items():
        if set_family == family and members == networks:
            return f"@{name}"
    return None


def _network_text(network: Network) -> str:
    return str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)


def _address_text(networks: tuple[Network, ...]) -> str:
    items = [_network_text(n) for n in networks]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _addresses(ruleset: Ruleset | None, family: str, networks: tuple[Network, ...]) -> str:
    named = set_reference(ruleset, family, networks) if ruleset is not None else None
    return named or _address_text(networks)


def _matches(rule: Rule, ruleset: Ruleset | None) -> list[str]:
    parts: list[str] = []
    if rule.ct_states:
        parts.append("ct state " + ",".join(rule.ct_states))
    for field_name, networks, negated in (
        ("saddr", rule.sources, rule.sources_negated),
        ("daddr", rule.destinations, rule.destinations_negated),
    ):
        if networks is not None and rule.family is not None:
            operator = "!= " if negated else ""
            parts.append(f"{rule.family} {field_name} {operator}{_addresses(ruleset, rule.family, networks)}")
    if rule.transport is not None:
        ports = ", ".join(str(p) for p in rule.ports)
        if not rule.ports:
            parts.append(f"meta l4proto {rule.transport}")
        else:
            parts.append(
                f"{rule.transport} dport " + (ports if len(rule.ports) == 1 else "{ " + ports + " }")
            )
    if rule.day is not None:
        parts.append(f'meta day "{DAY_NAMES[rule.day]}"')
    if rule.hours is not None:
        parts.append(f"meta hour {rule.hours[0]}-{rule.hours[1]}")
    return parts


def rule_text(rule: Rule, ruleset: Ruleset | None = None) -> str:
    """The rule in nft's syntax (with named sets where `ruleset` has one holding its networks)."""
    parts = _matches(rule, ruleset) + [f"[unread: {item}]" for item in rule.other]
    if rule.limit is not None:
        rate, per, burst = rule.limit
        parts.append(f"limit rate {rate}/{per} burst {burst} packets")
    if rule.log_prefix is not None:
        parts.append(f'log prefix "{rule.log_prefix}"')
    if rule.verdict is not None:
        parts.append(rule.verdict)
    parts.append(f'comment "{rule.comment}"')
    return " ".join(parts)


def _set_text(name: str, family: str, networks: tuple[Network, ...]) -> list[str]:
    kind = "ipv4_addr" if family == "ip" else "ipv6_addr"
    lines = [f"\tset {name} {{", f"\t\ttype {kind}", "\t\tflags interval"]
    if networks:
        items = ", ".join(_network_text(n) for n in networks)
        lines.append(f"\t\telements = {{ {items} }}")
    lines.append("\t}")
    return lines


def ruleset_text(ruleset: Ruleset, header: Iterable[str] = ()) -> str:
    """The whole `nft -f` script: the table declared, deleted and created again in one
    transaction, so loading it replaces only this table and loading it twice changes nothing."""
    lines = ["#!/usr/sbin/nft -f", *(f"# {line}".rstrip() for line in header), ""]
    lines += [f"table inet {ruleset.table}", f"delete table inet {ruleset.table}", ""]
    lines.append(f"table inet {ruleset.table} {{")
    for name, (family, networks) in ruleset.sets.items():
        lines += _set_text(name, family, networks)
    lines += [
        "",
        "\tchain forward {",
        f"\t\ttype filter hook forward priority filter; policy {ruleset.policy};",
    ]
    lines += [f"\t\t{rule_text(rule, ruleset)}" for rule in ruleset.rules]
    lines += ["\t}", "}", ""]
    return "\n".join(lines)
