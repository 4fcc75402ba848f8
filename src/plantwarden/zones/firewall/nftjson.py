"""Read `nft -j list table inet plantwarden` into a `Ruleset`.

Set references are resolved to the set's networks, so a changed set shows as changed rules.
`meta hour` values are read as UTC: list the ruleset with `TZ=UTC` (the drift check does), since
nft prints them in the local time zone of the listing process. An expression this reader does
not know is kept as JSON in `Rule.other`, so it can never pass for a rule of the model.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from plantwarden.zones.firewall.errors import RulesetUnreadable
from plantwarden.zones.firewall.rules import DAY_NAMES, Rule, Ruleset, collapsed
from plantwarden.zones.plant.model import Network

Sets = Mapping[str, tuple[str, tuple[Network, ...]]]
FAMILY_OF_TYPE = {"ipv4_addr": "ip", "ipv6_addr": "ip6"}


def objects(document: Any, kind: str, table: str) -> list[dict[str, Any]]:
    """The objects of one kind (`set`, `chain`, `rule`) of `table inet <table>`, in order."""
    if not isinstance(document, dict) or not isinstance(document.get("nftables"), list):
        raise RulesetUnreadable("not an nft JSON listing (expected an object with an `nftables` list)")
    found = []
    for item in document["nftables"]:
        body = item.get(kind) if isinstance(item, dict) else None
        if isinstance(body, dict) and body.get("family") == "inet" and body.get(_table_key(kind)) == table:
            found.append(body)
    return found


def _table_key(kind: str) -> str:
    return "name" if kind == "table" else "table"


def networks_of(value: Any) -> list[Network]:
    """Addresses, prefixes, ranges and anonymous sets of them, as networks."""
    if isinstance(value, str):
        return [ipaddress.ip_network(value)]
    if isinstance(value, dict) and "prefix" in value:
        return [ipaddress.ip_network(f"{value['prefix']['addr']}/{value['prefix']['len']}")]
    if isinstance(value, dict) and "range" in value:
        first, last = (ipaddress.ip_address(v) for v in value["range"])
        return list(ipaddress.summarize_address_range(first, last))
    if isinstance(value, dict) and "elem" in value:
        return networks_of(value["elem"]["val"])
    if isinstance(value, dict) and "set" in value:
        return [n for item in value["set"] for n in networks_of(item)]
    raise ValueError(f"not an address: {value!r}")


def ports_of(value: Any) -> tuple[int, ...]:
    """A port, a range or an anonymous set of them, as sorted port numbers."""
    if isinstance(value, int):
        return (value,)
    if isinstance(value, dict) and "range" in value:
        return tuple(range(int(value["range"][0]), int(value["range"][1]) + 1))
    if isinstance(value, dict) and "set" in value:
        return tuple(sorted({p for item in value["set"] for p in ports_of(item)}))
    raise ValueError(f"not a port: {value!r}")


def seconds_of(value: Any) -> int:
    """A `meta hour` value ("HH:MM", "HH:MM:SS" or seconds) as seconds since midnight."""
    if isinstance(value, int):
        return value
    parts = [int(part) for part in str(value).split(":")]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


def read_sets(document: Any, table: str) -> dict[str, tuple[str, tuple[Network, ...]]]:
    """The named address sets of the table."""
    sets: dict[str, tuple[str, tuple[Network, ...]]] = {}
    for body in objects(document, "set", table):
        family = FAMILY_OF_TYPE.get(str(body.get("type")))
        if family is not None:
            try:
                networks = collapsed(n for e in body.get("elem", []) for n in networks_of(e))
            except (ValueError, KeyError, TypeError) as error:
                raise RulesetUnreadable(
                    f"set {body.get('name')}: an element is not an address ({error})"
                ) from None
            sets[str(body.get("name"))] = (family, networks)
    return sets


def _addresses(right: Any, sets: Sets) -> tuple[Network, ...]:
    if isinstance(right, str) and right.startswith("@"):
        if right[1:] not in sets:
            raise ValueError(f"unknown set {right}")
        return sets[right[1:]][1]
    return collapsed(networks_of(right))


def _match(fields: dict[str, Any], match: dict[str, Any], sets: Sets) -> None:
    """Fold one match expression into the rule's fields (ValueError: not one this reader knows)."""
    left, right, negated = match["left"], match["right"], match.get("op") == "!="
    if "payload" in left and left["payload"].get("field") in ("saddr", "daddr"):
        side = "sources" if left["payload"]["field"] == "saddr" else "destinations"
        fields["family"] = left["payload"]["protocol"]
        fields[side], fields[f"{side}_negated"] = _addresses(right, sets), negated
    elif "payload" in left and left["payload"].get("field") == "dport" and not negated:
        fields["transport"], fields["ports"] = left["payload"]["protocol"], ports_of(right)
    elif left.get("meta", {}).get("key") == "l4proto" and not negated:
        fields["transport"] = right
    elif left.get("meta", {}).get("key") == "day" and not negated:
        fields["day"] = DAY_NAMES.index(right) if isinstance(right, str) else int(right)
    elif left.get("meta", {}).get("key") == "hour" and not negated:
        bounds = right["range"] if isinstance(right, dict) else [right, right]
        fields["hours"] = (seconds_of(bounds[0]), seconds_of(bounds[1]))
    elif left.get("ct", {}).get("key") == "state" and not negated:
        fields["ct_states"] = tuple(sorted(right if isinstance(right, list) else [right]))
    else:
        raise ValueError("unknown match")


def _statement(fields: dict[str, Any], expression: dict[str, Any], sets: Sets) -> None:
    if "match" in expression:
        _match(fields, expression["match"], sets)
    elif "limit" in expression:
        limit = expression["limit"]
        fields["limit"] = (int(limit["rate"]), str(limit.get("per", "second")), int(limit.get("burst", 0)))
    elif "log" in expression:
        fields["log_prefix"] = (expression["log"] or {}).get("prefix", "")
    elif "accept" in expression or "drop" in expression:
        fields["verdict"] = "accept" if "accept" in expression else "drop"
    elif "counter" not in expression:
        raise ValueError("unknown statement")


def read_rule(body: dict[str, Any], sets: Sets) -> Rule:
    """One rule of the listing as a `Rule` (what it cannot read goes to `other`)."""
    fields: dict[str, Any] = {"comment": str(body.get("comment", ""))}
    other: list[str] = []
    expressions = body.get("expr", [])
    if not isinstance(expressions, list):
        raise RulesetUnreadable(f"rule {fields['comment']!r}: expr must be a list of statements")
    for expression in expressions:
        try:
            _statement(fields, expression, sets)
        except (ValueError, KeyError, TypeError, AttributeError):
            other.append(json.dumps(expression, sort_keys=True))
    return Rule(**fields, other=tuple(other))


def read_ruleset(document: Any, table: str = "plantwarden") -> Ruleset:
    """The table's forward chain as a `Ruleset` (RulesetUnreadable when the table is absent)."""
    if not objects(document, "table", table):
        raise RulesetUnreadable(f"the listing holds no table inet {table}: the ruleset is not loaded")
    sets = read_sets(document, table)
    chains = [c for c in objects(document, "chain", table) if c.get("name") == "forward"]
    policy = (
        str(chains[0].get("policy", "accept")) if chains and chains[0].get("hook") == "forward" else "none"
    )
    rules = [read_rule(r, sets) for r in objects(document, "rule", table) if r.get("chain") == "forward"]
    return Ruleset(table, policy, tuple(rules), sets)
