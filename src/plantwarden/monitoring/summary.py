"""What the sensor shows a person: a progress line while it runs, a summary table at the end."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TextIO

from plantwarden.monitoring.sensor import ProtocolCounters, SensorCounters

REFRESH_S = 0.5


class Progress:
    """One line, rewritten in place on a terminal (a line every few seconds otherwise)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.terminal = stream.isatty()
        self.shown = 0.0
        self.loss: tuple[int, int] | None = None
        self.drawn = False

    @property
    def elapsed(self) -> float:
        """Seconds since the sensor started."""
        return time.monotonic() - self.started

    def update(self, counters: SensorCounters, loss: tuple[int, int] | None) -> None:
        """Show the counters, at most every half second (every 5 s when not on a terminal)."""
        if loss is not None:
            self.loss = loss
        now = time.monotonic()
        if now - self.shown < (REFRESH_S if self.terminal else 5.0):
            return
        self.shown = now
        rate = counters.packets / max(self.elapsed, 1e-9)
        line = (
            f"{counters.packets:,} packets  {rate:,.0f}/s  {counters.modbus_pdus:,} Modbus PDUs  "
            f"{counters.protocol_records + counters.flow_records:,} records"
        )
        if self.loss is not None:
            line += f"  loss {self.loss[1]:,} of {self.loss[0]:,}"
        self.stream.write(f"\r{line}\x1b[K" if self.terminal else f"{line}\n")
        self.stream.flush()
        self.drawn = True

    def done(self) -> None:
        """End the progress line."""
        if self.terminal and self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def summary_lines(
    counters: SensorCounters,
    elapsed: float,
    loss: tuple[int, int] | None,
    extra: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """The closing summary as a two-column table (`extra` rows at the end)."""
    rate = counters.packets / max(elapsed, 1e-9)
    exact_share = counters.exact_segments / max(counters.modbus_segments, 1)
    c = counters
    answered = f"{c.answered:,} answered ({c.exceptions:,} with an exception)"
    rows = [
        ("packets", f"{c.packets:,} ({c.bytes:,} bytes) in {elapsed:.1f} s, {rate:,.0f}/s"),
        ("capture loss", "none reported" if loss is None else f"{loss[1]:,} dropped of {loss[0]:,} received"),
        ("layers", _counts(c.layer_status)),
        ("Modbus segments", f"{c.modbus_segments:,} ({exact_share:.1%} on the exact path)"),
        ("Modbus PDUs", f"{c.modbus_pdus:,}: {_counts(c.modbus_findings)}" if c.modbus_pdus else "0"),
        ("Modbus requests", f"{c.requests:,}: {answered}, {c.unanswered:,} unanswered"),
        ("responses without request", f"{c.unsolicited:,}"),
        *(
            (f"{name} PDUs", _protocol_line(counts))
            for name, counts in sorted(c.protocols.items())
            if counts.segments
        ),
        ("TCP stream findings", _counts(c.stream_findings) or "none"),
        (
            "records",
            f"{c.protocol_records:,} requests, {c.flow_records:,} flows"
            f" ({c.flows_evicted:,} evicted early: the flow table was full); {c.stored_rows:,} stored",
        ),
        *extra,
    ]
    width = max(len(name) for name, _ in rows)
    return [f"{name:<{width}}  {value}" for name, value in rows]


def _protocol_line(counts: ProtocolCounters) -> str:
    share = counts.exact_segments / max(counts.segments, 1)
    line = f"{counts.pdus:,} ({counts.partial:,} partial, {counts.malformed:,} malformed)"
    if counts.segments != counts.pdus or counts.exact_segments:  # not frames or datagrams, one PDU each
        line += f" in {counts.segments:,} segments ({share:.1%} on the exact path)"
    if counts.requests:
        line += (
            f"; {counts.requests:,} requests, {counts.answered:,} answered ({counts.exceptions:,} with an"
            f" error), {counts.unanswered:,} unanswered"
        )
    if counts.checks:
        line += f"; {_counts(counts.checks)}"
    return line


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(
        f"{name} {count:,}" for name, count in sorted(counter.items(), key=lambda item: -item[1]) if count
    )
