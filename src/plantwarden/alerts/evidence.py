"""Evidence items that point into a sensor's evidence ring, and the pcap slice they name.

A ring pointer is `{"kind": "pcap", "site", "segment", "hosts": [...], "since", "until"}`
(times ISO 8601 with an offset, or nanoseconds as `since_ns`/`until_ns`): it names the packets
the sensor of `site`/`segment` kept, without copying them. The slice is cut when someone asks
(`plantwarden sensor evidence`, or the API's `evidence.pcap`), as long as the ring still holds it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from plantwarden.alerts.errors import EvidenceNotKept, InvalidAlert
from plantwarden.capture.evidence import EvidenceError, EvidenceRing
from plantwarden.capture.evidence.items import check_window, parse_hosts
from plantwarden.core.clock import from_nanoseconds, nanoseconds
from plantwarden.core.errors import NotFound

SINCE_MARGIN_NS = 1_000_000_000
"""Detectors start a pointer a second before their first record; a ring whose oldest packet lies
within that second still holds what the alert is about."""
PLACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
"""A site or segment name, as the sensor's evidence directories are named."""


@dataclass(frozen=True)
class RingPointer:
    """Which packets of which sensor's ring an evidence item names."""

    site: str
    segment: str
    hosts: tuple[str, ...]
    since_ns: int
    until_ns: int

    def command(self, output: str) -> str:
        """The `plantwarden sensor evidence` command that writes this slice to `output`."""
        words = ["plantwarden", "sensor", "evidence", "--site", self.site, "--segment", self.segment]
        words += ["--since", _iso(self.since_ns), "--until", _iso(self.until_ns)]
        for host in self.hosts:
            words += ["--host", host]
        return shlex.join([*words, "-o", output])


def is_ring_pointer(item: Mapping[str, Any]) -> bool:
    """True for a pcap evidence item that points into a sensor's ring (it names a segment)."""
    return item.get("kind") == "pcap" and "segment" in item


def ring_pointer(item: Mapping[str, Any]) -> RingPointer:
    """The pointer an evidence item holds, checked; `InvalidAlert` says what is wrong with it."""
    site, segment = item.get("site"), item.get("segment")
    for kind, name in (("site", site), ("segment", segment)):
        if not isinstance(name, str) or not PLACE_NAME.fullmatch(name):
            raise InvalidAlert(
                f"a pcap evidence item needs a {kind} name (1-63 letters, digits, '.', '_' or '-'), "
                f"not {name!r}"
            )
    hosts = item.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise InvalidAlert(f"a pcap evidence item's hosts must be a list of IP addresses, not {hosts!r}")
    since_ns, until_ns = _moment(item, "since"), _moment(item, "until")
    try:
        addresses = tuple(str(a) for a in parse_hosts(hosts))
        check_window(since_ns, until_ns)
    except EvidenceError as error:
        raise InvalidAlert(f"pcap evidence item: {error.message}") from None
    return RingPointer(str(site), str(segment), addresses, since_ns, until_ns)


def _moment(item: Mapping[str, Any], key: str) -> int:
    exact = item.get(f"{key}_ns")
    if isinstance(exact, int) and not isinstance(exact, bool):
        return exact
    text = item.get(key)
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidAlert(
            f"a pcap evidence item needs {key!r} as an ISO 8601 time with an offset, not {text!r}"
        )
    return nanoseconds(moment)


def check_evidence(items: Sequence[Mapping[str, Any]]) -> None:
    """Refuse evidence whose ring pointers are malformed."""
    for item in items:
        if not isinstance(item, Mapping):
            raise InvalidAlert(f"an evidence item must be a JSON object, not {item!r}")
        if is_ring_pointer(item):
            ring_pointer(item)


def ring_pointers(evidence: Sequence[Mapping[str, Any]]) -> list[RingPointer]:
    """The ring pointers among an alert's evidence, in order."""
    return [ring_pointer(item) for item in evidence if is_ring_pointer(item)]


def cut_slice(data_path: Path, pointer: RingPointer) -> bytes:
    """The pcap slice a pointer names, read from the sensor's ring under `data_path` (read-only).

    `EvidenceNotKept` when the ring is gone or no longer reaches back to the slice's start."""
    directory = data_path / "evidence" / pointer.site / pointer.segment
    try:
        ring = EvidenceRing(directory, readonly=True)
    except NotFound:
        raise EvidenceNotKept(
            f"no evidence ring for site {pointer.site} segment {pointer.segment}: the sensor there "
            "keeps no packets (run it with --evidence)"
        ) from None
    with ring:
        segments = ring.segments()
        oldest = min((s.first_ns for s in segments if s.packets), default=None)
        if oldest is None or oldest > pointer.since_ns + SINCE_MARGIN_NS:
            kept = "nothing" if oldest is None else f"packets from {_iso(oldest)} on"
            raise EvidenceNotKept(
                f"the evidence ring of {pointer.site}/{pointer.segment} no longer holds the packets from "
                f"{_iso(pointer.since_ns)}: it keeps {kept}"
            )
        return ring.slice(pointer.since_ns, pointer.until_ns, pointer.hosts)


def _iso(ts_ns: int) -> str:
    return from_nanoseconds(ts_ns).isoformat()
