"""The generator's output: frames released in time order to the capture, counted in the ledger,
and the attack frames listed in the labels file.

Exchanges are generated one at a time and their frames can reach past the start of the next, so
frames wait in a heap until no exchange can still produce an earlier one (`release(until)`). The
ledger counts what was written: Modbus PDUs by function code at the frame that completes them
(where a reader that reassembles TCP counts them too); retransmitted copies are counted apart.
It also keeps the ground truth the inventory is checked against (`truth.py`): the hosts that
appear, with their roles, and each client's requests, answer delays and poll intervals.

While a PLC reports a tampered value (`tamper`), the frames that carry it are labelled with the
attack even though the plant's own clients exchange them: the frame completing each answer to a
read of the value's addresses from that PLC, and each telemetry PUBLISH of the PLC on its topic.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from plantwarden.sim.mqtt import PUBLISH
from plantwarden.sim.pcap import CaptureWriter
from plantwarden.sim.traffic.truth import Appearances, Poll, Polling, PollKey
from plantwarden.sim.wire import Segment

LABEL_COLUMNS = ("frame", "time", "attack", "instance", "technique")

PduMark = tuple[int, str]
"""A Modbus PDU completed in a frame: (function code, `request`, `response` or `exception`)."""
Label = tuple[str, str, str]
"""An attack frame's label: (attack, instance, technique)."""


@dataclass(frozen=True, slots=True)
class TamperedReports:
    """Where a PLC's tampered value goes out: the answers of PLC `server` (its address) to reads
    with `read_function` that cover any of `addresses`, and its PUBLISHes on `topic`."""

    server: str
    read_function: int
    addresses: range
    topic: str
    label: Label

    def asked_by(self, key: PollKey, item: tuple[Any, ...]) -> bool:
        """Whether a Modbus request (its poll key and item: unit, address, count) reads the value."""
        _, server, protocol, function = key
        if (protocol, server, function) != ("modbus", self.server, self.read_function) or len(item) != 3:
            return False
        address, count = int(item[1]), int(item[2])
        return address < self.addresses.stop and self.addresses.start < address + count

    def published_in(self, key: PollKey, item: tuple[Any, ...]) -> bool:
        """Whether an MQTT request (its poll key and item: the topic) publishes the value."""
        client, _, protocol, function = key
        return (protocol, client, function) == ("mqtt", self.server, PUBLISH) and item == (self.topic,)


@dataclass(slots=True)
class Ledger:
    """What the generator wrote, counted as it was written."""

    packets: int = 0
    bytes: int = 0
    modbus: Counter[tuple[int, str]] = field(default_factory=Counter)
    modbus_pdus: int = 0
    pdus_in_shared_segments: int = 0
    pdus_split: int = 0
    retransmissions: int = 0
    flows: Counter[str] = field(default_factory=Counter)
    attack_packets: int = 0
    attacks: list[dict[str, Any]] = field(default_factory=list)
    hosts: Appearances = field(default_factory=Appearances)
    polling: Polling = field(default_factory=Polling)

    def count(self, frame: Pending) -> None:
        """Count one written frame."""
        self.packets += 1
        self.bytes += len(frame.data)
        if frame.retransmission:
            self.retransmissions += 1
        for mark in frame.pdus:
            self.modbus[mark] += 1
        self.modbus_pdus += len(frame.pdus)
        if frame.shared:
            self.pdus_in_shared_segments += len(frame.pdus)
        if frame.split:
            self.pdus_split += 1
        if frame.label is not None:
            self.attack_packets += 1
        self.hosts.note(frame.data)
        for poll in frame.polls:
            self.polling.note(poll, frame.time)

    def function_codes(self) -> dict[str, dict[str, int]]:
        """Modbus PDUs by function code, then by kind (request, response, exception)."""
        table: dict[str, dict[str, int]] = {}
        for (code, kind), number in sorted(self.modbus.items()):
            table.setdefault(str(code), {})[kind] = number
        return table

    def to_dict(self) -> dict[str, Any]:
        """The ledger as plain data (written beside the capture as JSON)."""
        pdus = self.modbus_pdus or 1
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "modbus_function_codes": self.function_codes(),
            "modbus_pdus": self.modbus_pdus,
            "share_of_pdus_in_shared_segments": round(self.pdus_in_shared_segments / pdus, 4),
            "share_of_pdus_split": round(self.pdus_split / pdus, 4),
            "retransmissions": self.retransmissions,
            "flows": dict(sorted(self.flows.items())),
            "attack_packets": self.attack_packets,
            "attacks": self.attacks,
            "hosts": self.hosts.to_list(),
            "polling": self.polling.to_list(),
        }


@dataclass(slots=True, order=True)
class Pending:
    """A frame waiting for its turn, with what the ledger and the labels need to know of it."""

    time: float
    order: int
    data: bytes = field(compare=False)
    pdus: tuple[PduMark, ...] = field(compare=False, default=())
    label: Label | None = field(compare=False, default=None)
    shared: bool = field(compare=False, default=False)
    split: bool = field(compare=False, default=False)
    retransmission: bool = field(compare=False, default=False)
    polls: tuple[Poll, ...] = field(compare=False, default=())


class Output:
    """Frames in time order to `writer`, at most `limit` of them; attack frames to `labels`."""

    def __init__(self, writer: CaptureWriter, labels: TextIO, limit: int) -> None:
        self.writer = writer
        self.labels = labels
        self.limit = limit
        self.ledger = Ledger()
        self._heap: list[Pending] = []
        self._order = 0
        self._tampered: list[TamperedReports] = []
        self._awaiting: dict[int, Label] = {}
        self._at_finish: list[Callable[[float], None]] = []
        self.last_time: float | None = None
        labels.write(",".join(LABEL_COLUMNS) + "\n")

    @property
    def full(self) -> bool:
        """Whether the capture holds all the frames it was asked for."""
        return self.ledger.packets >= self.limit

    @property
    def queued(self) -> int:
        """Frames made but not yet written."""
        return len(self._heap)

    def tamper(self, reports: TamperedReports) -> None:
        """Label the frames carrying a tampered value from now on (see the module docstring)."""
        self._tampered.append(reports)

    def untamper(self, reports: TamperedReports) -> None:
        """Stop labelling the frames of `reports` (requests still unanswered included)."""
        self._tampered.remove(reports)
        self._awaiting = {token: label for token, label in self._awaiting.items() if label != reports.label}

    def at_finish(self, callback: Callable[[float], None]) -> None:
        """Call `callback` with the time of the last frame written when the capture is finished."""
        self._at_finish.append(callback)

    def add(
        self,
        segment: Segment,
        pdus: tuple[PduMark, ...] = (),
        label: Label | None = None,
        *,
        shared: bool = False,
        split: bool = False,
        polls: tuple[Poll, ...] = (),
    ) -> None:
        """Queue a segment's frame with the Modbus PDUs it completes, the requests and answers it
        completes (for the ledger's polling) and its attack label, if any."""
        self.frame(
            segment.time,
            segment.frame,
            pdus,
            label,
            shared=shared,
            split=split,
            retransmission=segment.retransmission,
            polls=polls,
        )

    def frame(
        self,
        time: float,
        data: bytes,
        pdus: tuple[PduMark, ...] = (),
        label: Label | None = None,
        *,
        shared: bool = False,
        split: bool = False,
        retransmission: bool = False,
        polls: tuple[Poll, ...] = (),
    ) -> None:
        """Queue any frame (UDP, ARP, LLDP) captured at `time`."""
        if self._tampered and polls:
            label = self._tampered_label(polls) if label is None else label
        self._order += 1
        pending = Pending(time, self._order, data, pdus, label, shared, split, retransmission, polls)
        heapq.heappush(self._heap, pending)

    def _tampered_label(self, polls: tuple[Poll, ...]) -> Label | None:
        """The label of a frame completing an answer to a read of a tampered value, or a publish of
        one; a read's token is remembered until its answer comes."""
        found = None
        for poll in polls:
            if poll.key is None:
                found = self._awaiting.pop(poll.token, None) or found
                continue
            for reports in self._tampered:
                if reports.asked_by(poll.key, poll.item):
                    self._awaiting[poll.token] = reports.label
                elif reports.published_in(poll.key, poll.item):
                    found = reports.label
        return found

    def release(self, until: float) -> None:
        """Write every queued frame captured at or before `until`, up to the limit."""
        heap = self._heap
        while heap and heap[0].time <= until and not self.full:
            self._write(heapq.heappop(heap))

    def finish(self) -> None:
        """Write what is still queued (up to the limit) and flush the capture and the labels."""
        self.release(float("inf"))
        self._heap.clear()
        self.writer.flush()
        self.labels.flush()
        for callback in self._at_finish:
            callback(self.last_time if self.last_time is not None else 0.0)

    def _write(self, frame: Pending) -> None:
        self.writer.write(frame.time, frame.data)
        self.last_time = frame.time
        self.ledger.count(frame)
        if frame.label is not None:
            attack, instance, technique = frame.label
            self.labels.write(f"{self.ledger.packets},{frame.time:.6f},{attack},{instance},{technique}\n")
