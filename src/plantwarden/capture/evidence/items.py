"""What an alert cites of a packet slice: the evidence item, and the checks of a slice's arguments."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.clock import from_nanoseconds
from plantwarden.core.errors import InvalidInput, PlantwardenError

INT64_MAX = (1 << 63) - 1


class EvidenceError(InvalidInput):
    """An evidence ring or slice was asked for with bad arguments."""

    code = "invalid_evidence_request"


class EvidenceRingBusy(PlantwardenError):
    """Another process writes to this evidence ring."""

    code = "evidence_ring_busy"


@dataclass(frozen=True, slots=True)
class EvidenceSlice:
    """A slice written to a file by `EvidenceRing.write_slice`, with what an alert cites of it."""

    path: Path
    since_ns: int
    until_ns: int
    hosts: tuple[str, ...]
    packets: int
    size: int
    sha256: str
    format: str

    def evidence(self) -> dict[str, Any]:
        """The alert evidence item pointing at this file (see `evidence_item`)."""
        return evidence_item(
            self.path,
            self.since_ns,
            self.until_ns,
            self.hosts,
            self.packets,
            sha256=self.sha256,
            size=self.size,
        )


def evidence_item(
    location: os.PathLike[str] | str,
    since_ns: int,
    until_ns: int,
    hosts: Sequence[str],
    packets: int,
    *,
    sha256: str | None = None,
    size: int | None = None,
) -> dict[str, Any]:
    """The plain JSON object an alert's evidence list carries for a packet slice.

    `location` is the slice's file (a path) or, as a `str`, the id under which a store keeps it.
    Times are given both as nanoseconds (exact) and as ISO 8601 UTC (for people); `src` and
    `dst` are set when the slice is about one or two hosts, so that exports show the endpoints.
    """
    check_window(since_ns, until_ns)
    if isinstance(packets, bool) or not isinstance(packets, int) or packets < 0:
        raise EvidenceError(f"packets must be a count (0 or more), not {packets!r}")
    item: dict[str, Any] = {"kind": "pcap"}
    if isinstance(location, str):
        if not location:
            raise EvidenceError("the slice id must not be empty")
        item["slice_id"] = location
    else:
        item["path"] = os.fspath(location)
    addresses = [str(address) for address in parse_hosts(hosts)]
    item |= {
        "since": _iso(since_ns),
        "until": _iso(until_ns),
        "since_ns": since_ns,
        "until_ns": until_ns,
        "hosts": addresses,
        "packets": packets,
    }
    for key, address in zip(("src", "dst"), addresses, strict=False):
        item[key] = address
    if sha256 is not None:
        item["sha256"] = sha256
    if size is not None:
        item["bytes"] = size
    return item


def _iso(ts_ns: int) -> str:
    return from_nanoseconds(ts_ns).isoformat()


def check_window(since_ns: int, until_ns: int) -> None:
    for name, value in (("since_ns", since_ns), ("until_ns", until_ns)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
            raise EvidenceError(f"{name} must be nanoseconds since the epoch (0-{INT64_MAX}), not {value!r}")
    if since_ns >= until_ns:
        raise EvidenceError(f"the window is empty: since_ns {since_ns} is not before until_ns {until_ns}")


def parse_hosts(hosts: Sequence[str]) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    if isinstance(hosts, str | bytes):
        raise EvidenceError(f"hosts must be a sequence of IP addresses, not the single string {hosts!r}")
    parsed = []
    for host in hosts:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise EvidenceError(f"{host!r} is not an IPv4 or IPv6 address") from None
        if address.is_unspecified:
            raise EvidenceError(f"{host} names no host")
        parsed.append(address)
    return parsed


def address_keys(hosts: Sequence[str]) -> npt.NDArray[np.uint64]:
    """The hosts as the layer decoder's 16-byte addresses (IPv4 as ::ffff:a.b.c.d), two words each."""
    packed = [
        (ipaddress.IPv6Address(f"::ffff:{address}") if address.version == 4 else address).packed
        for address in parse_hosts(hosts)
    ]
    return np.frombuffer(b"".join(packed), dtype=np.uint64).reshape(-1, 2)
