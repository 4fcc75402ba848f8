"""What the traffic said about one device at one moment: a `Sighting`, checked on construction.

A sighting is the inventory's only input. Whoever turns records into sightings (ARP, DHCP, LLDP,
PROFINET DCP, CIP identity, Modbus 43/14, S7 SZL, BACnet I-Am, plain flows) states where it was
seen (site and network segment: addresses are unique only within one segment), the addresses it
carries, how strongly the frame ties its MAC to its IP (`Binding`), the attributes it names, and
how far it is to be believed (`confidence`). Addresses are validated and written in one canonical
form here, so that the asset book compares text with text; bad input raises `InvalidSighting`.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from plantwarden.inventory.errors import InvalidSighting

_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
_SOURCE = re.compile(r"[a-z][a-z0-9_]*")
_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


class Binding(enum.StrEnum):
    """How strongly a sighting ties its MAC to its IP.

    AUTHORITATIVE: the device states its own pair (an ARP reply, a DHCP ACK, DCP or LLDP naming
    their own address). OBSERVED: a frame's Ethernet source carried that IP source; weak, since a
    router forwards for many addresses under one MAC. NONE: the sighting ties nothing (and a
    sighting that lacks the IP or the MAC can tie nothing).
    """

    AUTHORITATIVE = "authoritative"
    OBSERVED = "observed"
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class Sighting:
    """One device seen once: where, by which addresses, what it said, how far to believe it.

    `ip` is IPv4 or IPv6 text ("" if none), `mac` a unicast MAC ("" if none); both come out in
    canonical form (compressed IP, lower-case colon MAC). `source` names what said it ("arp",
    "dhcp", "lldp", "pn_dcp", "cip_identity", "flow", ...): a lower-case word. `attributes` maps
    a name (hostname, vendor, model, firmware, serial, station_name, chassis_id, device_id, ...)
    to a non-empty text; it is kept read-only. `confidence` is within 0..1.
    """

    ts_ns: int
    site: str
    segment: str
    source: str
    confidence: float
    ip: str = ""
    mac: str = ""
    binding: Binding = Binding.NONE
    attributes: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _check_time(self.ts_ns)
        for name in ("site", "segment"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise InvalidSighting(f"a sighting needs a {name}", details={name: getattr(self, name)})
        if not isinstance(self.source, str) or not _SOURCE.fullmatch(self.source):
            raise InvalidSighting(
                f"source {self.source!r} is not a lower-case word (arp, dhcp, lldp, flow, ...)",
                details={"source": self.source},
            )
        object.__setattr__(self, "confidence", _checked_confidence(self.confidence))
        object.__setattr__(self, "ip", canonical_ip(self.ip) if self.ip else "")
        object.__setattr__(self, "mac", canonical_mac(self.mac) if self.mac else "")
        object.__setattr__(self, "binding", _checked_binding(self.binding, self.ip, self.mac))
        object.__setattr__(self, "attributes", _checked_attributes(self.attributes))


def canonical_ip(text: str) -> str:
    """`text` as a canonical IPv4 or IPv6 address; a malformed or non-host address raises."""
    if isinstance(text, str):
        return _canonical_ip(text)  # a plant has few addresses and names them again and again
    return _parsed_ip(text)


@functools.lru_cache(maxsize=65536)
def _canonical_ip(text: str) -> str:
    return _parsed_ip(text)


def _parsed_ip(text: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except (ValueError, TypeError):
        raise InvalidSighting(f"{text!r} is not an IPv4 or IPv6 address", details={"ip": text}) from None
    if address.is_unspecified or address.is_multicast or address == _LIMITED_BROADCAST:
        raise InvalidSighting(f"{text!r} is not the address of one host", details={"ip": text})
    return str(address)


def canonical_mac(text: str) -> str:
    """`text` as a lower-case "aa:bb:cc:dd:ee:ff" unicast MAC; anything else raises.

    A group address (multicast, broadcast) never names one station, so it is refused too.
    """
    mac = text.lower() if isinstance(text, str) else ""
    if not _MAC.fullmatch(mac):
        raise InvalidSighting(f"{text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)", details={"mac": text})
    if int(mac[:2], 16) & 1:
        raise InvalidSighting(f"{text!r} is a group MAC, not a station's", details={"mac": text})
    return mac


def _check_time(ts_ns: object) -> None:
    if not isinstance(ts_ns, int) or isinstance(ts_ns, bool) or ts_ns < 0:
        raise InvalidSighting(
            f"ts_ns {ts_ns!r} is not a time in nanoseconds since 1970 (a non-negative int)",
            details={"ts_ns": repr(ts_ns)},
        )


def _checked_confidence(confidence: object) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise InvalidSighting(
            f"confidence {confidence!r} is not a number", details={"confidence": repr(confidence)}
        )
    if math.isnan(confidence) or not 0.0 <= confidence <= 1.0:
        raise InvalidSighting(
            f"confidence {confidence!r} is not within 0..1", details={"confidence": confidence}
        )
    return float(confidence)


def _checked_binding(binding: object, ip: str, mac: str) -> Binding:
    try:
        checked = Binding(str(binding))
    except ValueError:
        raise InvalidSighting(f"binding {binding!r} is not one of {[b.value for b in Binding]}") from None
    if checked is not Binding.NONE and not (ip and mac):
        raise InvalidSighting(
            f"a {checked.value} binding ties a MAC to an IP: it needs both", details={"ip": ip, "mac": mac}
        )
    if not ip and not mac:
        raise InvalidSighting("a sighting needs an IP or a MAC to say which device it saw")
    return checked


def _checked_attributes(attributes: object) -> Mapping[str, str]:
    if not isinstance(attributes, Mapping):
        raise InvalidSighting(
            f"attributes must be a mapping of names to texts, not {type(attributes).__name__}"
        )
    for name, value in attributes.items():
        if not isinstance(name, str) or not name or not isinstance(value, str) or not value:
            raise InvalidSighting(
                f"attribute {name!r} = {value!r}: names and values are non-empty texts"
                " (leave a missing one out)",
                details={"attribute": repr(name)},
            )
    return MappingProxyType(dict(attributes))
