"""One sentence per violation, in the plant's own words: who talked to whom, how, and what the
model says about it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from plantwarden.detection.channels import CHANNEL, CLEARTEXT, NO_CONDUIT, OPERATION, UNZONED
from plantwarden.detection.site_rules import SiteRules
from plantwarden.zones.plant.model import DAYS, Channel

_SHOWN_CHANNELS = 4


def sentence(rules: SiteRules, bit: int, facts: Mapping[str, Any], channel: int) -> str:
    """Why the records of one violation break the rule `bit`."""
    traffic = f"{_what(facts)} from {_end(facts, 'src')} to {_end(facts, 'dst')}"
    named = f"{facts['conduit']}/{facts['channel']}"
    if bit == UNZONED:
        lost = [facts[end] for end in ("src", "dst") if facts[f"{end}_zone"] is None]
        where = f"site {facts['site']}, segment {facts['segment']}"
        return f"{' and '.join(lost)} {'is' if len(lost) == 1 else 'are'} in no zone ({where}): {traffic}."
    if bit == NO_CONDUIT:
        return f"{traffic}, but no conduit joins zones {facts['src_zone']} and {facts['dst_zone']}."
    if bit == CHANNEL:
        conduits, between = rules.between(facts["src_zone"], facts["dst_zone"])
        allowed = "; ".join(_channel(ch) for ch in between[:_SHOWN_CHANNELS]) or "nothing between them"
        more = f" and {len(between) - _SHOWN_CHANNELS} more" if len(between) > _SHOWN_CHANNELS else ""
        return (
            f"{traffic}: no channel of conduit {', '.join(conduits)} allows it (they allow {allowed}{more})."
        )
    model = rules.channels[channel].channel
    if bit == CLEARTEXT:
        return f"{traffic} in cleartext on channel {named}, which requires encryption."
    if bit == OPERATION:
        allows = ", ".join(sorted(model.operations)) or "no operation"
        return f"{traffic}: channel {named} does not allow {facts['operation']} (it allows {allows})."
    return _outside(rules, model, facts, traffic, named)


def _outside(rules: SiteRules, model: Channel, facts: Mapping[str, Any], traffic: str, named: str) -> str:
    timezone = rules.site.timezone
    if model.schedule:
        windows = _windows(rules, model.schedule)
        return f"{traffic} outside the schedule of channel {named} ({windows}, {timezone})."
    windows = _windows(rules, model.maintenance)
    return f"{traffic} outside the maintenance windows of channel {named} ({windows}, {timezone})."


def _windows(rules: SiteRules, names: Sequence[str]) -> str:
    shown = []
    for name in names:
        window = rules.site.windows[name]
        span = (
            f"{window.start // 60:02d}:{window.start % 60:02d}-{window.end // 60:02d}:{window.end % 60:02d}"
        )
        shown.append(f"{name}: {','.join(DAYS[d] for d in window.days)} {span}")
    return "; ".join(shown)


def _what(facts: Mapping[str, Any]) -> str:
    protocol = facts["protocol"] if facts["protocol"] != "unknown" else "undecoded"
    service = f"{protocol} ({facts['transport']}/{facts['port']})"
    if facts["operation"] == "flow":
        return f"{'an' if protocol[0] in 'aeiou' else 'a'} {service} flow"
    return f"{facts['operation']} requests over {service}"


def _end(facts: Mapping[str, Any], end: str) -> str:
    zone, asset = facts[f"{end}_zone"], facts[f"{end}_asset"]
    where = f"zone {zone}" if zone is not None else "no zone"
    return f"{facts[end]} ({f'{asset}, ' if asset else ''}{where})"


def _channel(channel: Channel) -> str:
    ports = ",".join(str(p) for p in channel.ports) or "any port"
    direction = f"{'/'.join(channel.initiators)} -> {'/'.join(channel.responders)}"
    operations = ", ".join(sorted(channel.operations))
    text = f"{channel.protocol} {channel.transport}/{ports} {direction}"
    return f"{text} ({operations})" if operations else text
