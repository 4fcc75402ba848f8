"""The generator's output: frames released in time order to the capture, counted in the ledger,
and the attack frames listed in the labels file.

Exchanges are generated one at a time and their frames can reach past the start of the next, so
frames wait in a heap until no exchange can still produce an earlier one (`release(until)`). The
ledger counts what was written: Modbus PDUs by function code at the frame that completes them
(where a reader that reassembles TCP counts them too); retransmitted copies are counted apart.
It also keeps the ground truth the inventory is checked against (`truth.py`): the hosts that
appear, with their roles, and each client's requests, answer delays and poll intervals.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from plantwarden.sim.pcap import CaptureWriter
from plantwarden.sim.traffic.truth import Appearances, Poll, Polling
from plantwarden.sim.wire import Segment

LABEL_COLUMNS = ("frame", "time", "attack", "instance", "technique")

PduMark = tuple[int, str]
"""A Modbus PDU completed in a frame: (function code, `request`, `response` or `exception`)."""


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
    label: tuple[str, str, str] | None = field(compare=False, default=None)
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
        labels.write(",".join(LABEL_COLUMNS) + "\n")

    @property
    def full(self) -> bool:
        """Whether the capture holds all the frames it was asked for."""
        return self.ledger.packets >= self.limit

    @property
    def queued(self) -> int:
        """Frames made but not yet written."""
        return len(self._heap)

    def add(
        self,
        segment: Segment,
        pdus: tuple[PduMark, ...] = (),
        label: tuple[str, str, str] | None = None,
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
        label: tuple[str, str, str] | None = None,
        *,
        shared: bool = False,
        split: bool = False,
        retransmission: bool = False,
        polls: tuple[Poll, ...] = (),
    ) -> None:
        """Queue any frame (UDP, ARP, LLDP) captured at `time`."""
        self._order += 1
        pending = Pending(time, self._order, data, pdus, label, shared, split, retransmission, polls)
        heapq.heappush(self._heap, pending)

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

    def _write(self, frame: Pending) -> None:
        self.writer.write(frame.time, frame.data)
        self.ledger.count(frame)
        if frame.label is not None:
            attack, instance, technique = frame.label
            self.labels.write(f"{self.ledger.packets},{frame.time:.6f},{attack},{instance},{technique}\n")
