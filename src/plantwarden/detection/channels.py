"""A site's channels as rules, and the verdict on one kind of record from the channels that
could carry it.

A channel could carry a record when the transport, the responder port, the direction (the
record's source among the initiators or the named clients, its destination among the
responders or the named servers) and the protocol fit; a cleartext industrial protocol on a
channel that requires encryption fits too, as a `zone.cleartext` violation. Such a channel
allows the record when it also allows the operation and the record's time falls in the windows
the channel needs (its schedule; its maintenance windows for program and control). When the
time can change the answer, the verdict lists every candidate with the windows it needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from plantwarden.core.records.schema import Operation, Protocol
from plantwarden.detection.windows import WindowClock
from plantwarden.zones.plant.model import WINDOWED_OPERATIONS, Channel, SiteModel
from plantwarden.zones.plant.protocols import CLEARTEXT_RECORD_PROTOCOLS, SERVICES

UNZONED, NO_CONDUIT, CHANNEL, CLEARTEXT, OPERATION, WINDOW = 1, 2, 4, 8, 16, 32
"""Rule bits of a record's verdict (0: allowed)."""

NO_OPERATION = max(Operation) + 1
"""The operation code of records that carry none (flows)."""
TRANSPORTS = {"tcp": 0, "udp": 1}
"""Transport codes of channels and records; other transports are code 2."""
_GENERIC = frozenset({"tcp", "udp"})  # services that name ports only, whatever protocol runs on them
_WINDOWED = frozenset(int(Operation[name.upper()]) for name in WINDOWED_OPERATIONS)


@dataclass(frozen=True, slots=True)
class Alternative:
    """A channel that may allow the record, if its time falls in the windows it needs."""

    channel: int
    bits: int
    """Rules broken whatever the time."""
    schedule: int
    """Window bits of which the time must hit one (0: none needed)."""
    maintenance: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """Rules a kind of record breaks (0: allowed), with the channel and conduit closest to allowing
    it (-1: none); with `alternatives`, each record's time decides (see `Alternative`)."""

    bits: int
    channel: int = -1
    conduit: int = -1
    alternatives: tuple[Alternative, ...] = ()


ALLOWED = Verdict(0)


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """One channel of one conduit, with the model's names resolved to indexes and bits."""

    conduit: int
    channel: Channel
    transport: int
    initiators: frozenset[int]
    responders: frozenset[int]
    ports: frozenset[int] | None
    """None: any port."""
    protocols: frozenset[int] | None
    """Record protocol codes it carries (None: any, a generic tcp or udp service)."""
    encrypted: bool
    operations: frozenset[int]
    clients: frozenset[int] | None
    servers: frozenset[int] | None
    schedule: int
    maintenance: int


def alternative(
    rule: ChannelRule,
    index: int,
    zones: tuple[int, int],
    assets: tuple[int, int],
    service: tuple[int, int | None],
    protocol: int,
    operation: int,
) -> Alternative | None:
    """How channel `index` (`rule`) fares with a kind of record: None when it cannot carry it.
    `zones` and `assets` (-1: no declared asset) of the source and destination, `service` the
    transport code and responder port (None: a port no channel names)."""
    transport, port = service
    if rule.transport != transport or (rule.ports is not None and port not in rule.ports):
        return None
    if not (assets[0] in rule.clients if rule.clients is not None else zones[0] in rule.initiators):
        return None
    if not (assets[1] in rule.servers if rule.servers is not None else zones[1] in rule.responders):
        return None
    carried = protocol == Protocol.UNKNOWN or rule.protocols is None or protocol in rule.protocols
    cleartext = rule.encrypted and protocol in CLEARTEXT_RECORD_PROTOCOLS
    if not (carried or cleartext):
        return None
    bits = CLEARTEXT if cleartext else 0
    if operation != NO_OPERATION and operation not in rule.operations:
        bits |= OPERATION
    maintenance = rule.maintenance if operation in _WINDOWED else 0
    return Alternative(index, bits, rule.schedule, maintenance)


def verdict(alternatives: Sequence[Alternative], conduit: int, channels: Sequence[ChannelRule]) -> Verdict:
    """Allowed when one candidate allows the record whatever the time; else the candidate that
    breaks the fewest rules (the first on ties), with every candidate when the time decides."""
    if not alternatives:
        return Verdict(CHANNEL, -1, conduit)
    if any(a.bits == 0 and not a.schedule and not a.maintenance for a in alternatives):
        return ALLOWED
    best = min(alternatives, key=lambda a: a.bits.bit_count())
    timed = any(a.schedule or a.maintenance for a in alternatives)
    return Verdict(
        best.bits, best.channel, channels[best.channel].conduit, tuple(alternatives) if timed else ()
    )


def compile_channels(
    site: SiteModel, zones: Mapping[str, int], assets: Mapping[str, int], clock: WindowClock
) -> tuple[ChannelRule, ...]:
    """Every channel of every conduit of the site, in the model's order."""
    return tuple(
        _rule(index, channel, zones, assets, clock)
        for index, conduit in enumerate(site.conduits)
        for channel in conduit.channels
    )


def _rule(
    index: int, channel: Channel, zones: Mapping[str, int], assets: Mapping[str, int], clock: WindowClock
) -> ChannelRule:
    service = SERVICES.get(channel.protocol)
    ports = channel.ports or (service.ports if service is not None else ())
    if service is None or service.name in _GENERIC:
        protocols = None
    else:
        protocols = frozenset({service.record_protocol} if service.record_protocol is not None else ())
    encrypted = channel.encrypted or (service is not None and service.encrypted)
    return ChannelRule(
        conduit=index,
        channel=channel,
        transport=TRANSPORTS.get(channel.transport, 2),
        initiators=frozenset(zones[z] for z in channel.initiators),
        responders=frozenset(zones[z] for z in channel.responders),
        ports=frozenset(ports) if ports else None,
        protocols=protocols,
        encrypted=encrypted,
        operations=frozenset(int(Operation[name.upper()]) for name in channel.operations),
        clients=frozenset(assets[a] for a in channel.clients) if channel.clients else None,
        servers=frozenset(assets[a] for a in channel.servers) if channel.servers else None,
        schedule=clock.mask_of(channel.schedule),
        maintenance=clock.mask_of(channel.maintenance),
    )
