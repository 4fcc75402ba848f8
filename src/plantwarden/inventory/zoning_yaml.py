"""Writing a suggested plant.yaml as an engineer would: block style, one-line assets, the
evidence as comments above what it explains (`yaml.dump` writes no comments).

Text from the network (names, evidence) is passed through `printable` and written quoted, so it
can neither break a line nor become a key; a scalar is written plain only when plant.yaml's
reader reads it back as the same text.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable

from plantwarden.inventory.zoning_draft import (
    Draft,
    DraftAsset,
    DraftChannel,
    DraftConduit,
    DraftZone,
    printable,
)

_PLAIN = re.compile(r"^(?:[a-z][a-z0-9./-]*|[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?:/[0-9]{1,2})?)$")
"""Scalars safe to write plain: ids and words starting with a letter, IPv4 addresses and networks."""
_TYPED = frozenset({"true", "false", "null"})
WIDTH = 110


def write_draft(draft: Draft) -> str:
    """The draft as plant.yaml text."""
    lines = [*_comments(draft.comments, 0), "version: 1", "sites:"]
    lines += [f"  - id: {scalar(draft.site)}", f"    name: {quoted(draft.site + ' (suggested)')}"]
    lines += ["    timezone: UTC", "", "    zones:"]
    for zone in draft.zones:
        lines += _zone(zone)
    if draft.conduits:
        lines += ["", "    conduits:"]
        for conduit in draft.conduits:
            lines += _conduit(conduit)
    if draft.assets:
        lines += ["", "    assets:"]
        for asset in draft.assets:
            lines += _asset(asset)
    return "\n".join(lines) + "\n"


def scalar(text: str) -> str:
    """`text` plain when it reads back as itself, else double-quoted."""
    if _PLAIN.fullmatch(text) and text not in _TYPED:
        return text
    return quoted(text)


def quoted(text: str) -> str:
    """A double-quoted scalar (JSON's string form is valid YAML once control characters are gone)."""
    return json.dumps(printable(text, limit=2000), ensure_ascii=False)


def _sequence(items: Iterable[object]) -> str:
    return "[" + ", ".join(str(item) if isinstance(item, int) else scalar(str(item)) for item in items) + "]"


def _comments(lines: Iterable[str], indent: int) -> list[str]:
    """Comment lines, wrapped to the line length (a continued line is indented by two)."""
    prefix = " " * indent + "# "
    wrapped: list[str] = []
    for line in lines:
        parts = textwrap.wrap(
            printable(line, limit=2000),
            WIDTH - len(prefix),
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        wrapped += [(prefix + part).rstrip() for part in parts or [""]]
    return wrapped


def _zone(zone: DraftZone) -> list[str]:
    lines = [*_comments(zone.comments, 6), f"      - id: {scalar(zone.id)}"]
    lines += [f"        name: {quoted(zone.name)}", f"        purdue_level: {zone.purdue_level}"]
    if zone.subnets():
        lines.append(f"        subnets: {_sequence(zone.subnets())}")
    if zone.segment != "default":
        lines.append(f"        segment: {scalar(zone.segment)}")
    lines.append(f"        security_level: {zone.security_level}")
    if zone.assets:
        lines.append(f"        assets: {_sequence(zone.assets)}")
    return lines


def _conduit(conduit: DraftConduit) -> list[str]:
    lines = [*_comments(conduit.comments, 6), f"      - id: {scalar(conduit.id)}"]
    lines += [f"        name: {quoted(conduit.name)}", f"        zones: {_sequence(conduit.zones)}"]
    lines += [f"        security_level: {conduit.security_level}", "        channels:"]
    for channel in conduit.channels:
        lines += _channel(channel)
    return lines


def _channel(channel: DraftChannel) -> list[str]:
    lines = [*_comments(channel.comments, 10), f"          - id: {scalar(channel.id)}"]
    lines.append(f"            protocol: {scalar(channel.protocol)}")
    if channel.ports:
        lines.append(f"            ports: {_sequence(channel.ports)}")
    lines += [
        f"            from: {scalar(channel.initiator)}",
        f"            to: {scalar(channel.responder)}",
    ]
    if channel.clients:
        lines.append(f"            clients: {_sequence(channel.clients)}")
    if channel.operations:
        lines.append(f"            operations: {_sequence(channel.operations)}")
    return lines


def _asset(asset: DraftAsset) -> list[str]:
    fields = [f"id: {scalar(asset.id)}", f"name: {quoted(asset.name)}"]
    if len(asset.addresses) == 1:
        fields.append(f"address: {scalar(str(asset.addresses[0]))}")
    else:
        fields.append(f"addresses: {_sequence(asset.addresses)}")
    if asset.explicit_zone:
        fields.append(f"zone: {scalar(asset.zone)}")
    fields.append(f"criticality: {asset.criticality}")
    return [*_comments(asset.comments, 6), "      - {" + ", ".join(fields) + "}"]
