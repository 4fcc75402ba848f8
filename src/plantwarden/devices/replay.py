"""A device's replay window: tells a new message, an MQTT QoS 1 redelivery and a replay apart.

A device numbers its messages (epoch, counter): the epoch grows on every start of the agent, the
counter within an epoch. The platform keeps, per device, the current epoch, the highest counter
and the last `size` counters it accepted with each message's digest and arrival time, so it can
take messages out of order within the window, refuse everything below it, and judge a counter
seen again:
- same digest, and it came within `redelivery_window` of the first acceptance, or within an hour
  with the PUBLISH DUP flag the broker sets on a redelivery: a DUPLICATE (QoS 1 at-least-once);
- otherwise (another digest, or the same message much later): a REPLAY (an attack).
A window is pure state, persisted by the caller as JSON (`to_json` / `from_json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from plantwarden.core.clock import from_nanoseconds, nanoseconds
from plantwarden.core.errors import Conflict, InvalidInput

WINDOW = 1024
"""How many counters below the highest one are still accepted out of order."""
REDELIVERY_WINDOW = timedelta(seconds=120)
"""How long after its first acceptance the same message counts as a redelivery without a DUP flag."""
DUP_WINDOW = timedelta(hours=1)
"""How long after its first acceptance the same message with the DUP flag counts as a redelivery:
the flag is set by the broker, which is not trusted, so it only stretches the window (a broker or
ingest outage) and never makes a message of any age harmless."""


class Outcome(StrEnum):
    ACCEPT = "accept"
    DUPLICATE = "duplicate"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a message, and why (for the count, the log and the refusal detail)."""

    outcome: Outcome
    reason: str

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPT


class ReplayWindow:
    """The replay state of one device: current epoch, highest counter, recent counters, counts."""

    def __init__(self, *, size: int = WINDOW, redelivery_window: timedelta = REDELIVERY_WINDOW) -> None:
        if size < 1:
            raise InvalidInput("a replay window holds at least one counter")
        self.size = size
        self.redelivery_window = redelivery_window
        self.epoch: int | None = None
        self.highest = -1
        self.seen: dict[int, tuple[bytes, datetime]] = {}
        """Accepted counters of the current epoch within the window: digest and first arrival."""
        self.accepted = 0
        self.duplicates = 0
        self.replays = 0

    def judge(
        self, epoch: int, counter: int, digest: bytes, received_at: datetime, redelivered: bool = False
    ) -> Verdict:
        """The verdict on a message; changes nothing (`accept` or `count` record it)."""
        _check_aware(received_at)
        if self.epoch is None or epoch > self.epoch:
            return Verdict(Outcome.ACCEPT, "first message of a new epoch")
        if epoch < self.epoch:
            return Verdict(Outcome.REPLAY, f"epoch {epoch} is older than the current epoch {self.epoch}")
        if counter > self.highest:
            return Verdict(Outcome.ACCEPT, "next counter")
        if counter <= self.highest - self.size:
            return Verdict(
                Outcome.REPLAY,
                f"counter {counter} is below the window (highest {self.highest}, size {self.size})",
            )
        first = self.seen.get(counter)
        if first is None:
            return Verdict(Outcome.ACCEPT, "late counter within the window")
        first_digest, first_at = first
        if first_digest != digest:
            return Verdict(Outcome.REPLAY, f"counter {counter} was already used by another message")
        age = received_at - first_at
        if redelivered and age <= max(DUP_WINDOW, self.redelivery_window):
            return Verdict(Outcome.DUPLICATE, "the broker redelivered a message already accepted (DUP flag)")
        if age <= self.redelivery_window:
            return Verdict(Outcome.DUPLICATE, f"the same message again after {age.total_seconds():.0f} s")
        return Verdict(
            Outcome.REPLAY,
            f"the same message again after {age.total_seconds():.0f} s, without the DUP flag "
            f"(a redelivery comes within {self.redelivery_window.total_seconds():.0f} s)",
        )

    def accept(self, epoch: int, counter: int, digest: bytes, received_at: datetime) -> None:
        """Record an accepted message; Conflict when `judge` would not accept it (never twice)."""
        verdict = self.judge(epoch, counter, digest, received_at)
        if not verdict.accepted:
            raise Conflict(f"message {epoch}/{counter} cannot be accepted: {verdict.reason}")
        if self.epoch is None or epoch > self.epoch:
            self.epoch, self.highest = epoch, counter
            self.seen = {}
        elif counter > self.highest:
            self._slide(counter)
        self.seen[counter] = (digest, received_at)
        self.accepted += 1

    def count(self, verdict: Verdict) -> None:
        """Count a message that was not accepted (`accept` counts the accepted ones)."""
        if verdict.outcome is Outcome.DUPLICATE:
            self.duplicates += 1
        elif verdict.outcome is Outcome.REPLAY:
            self.replays += 1
        else:
            raise InvalidInput("an accepted message is recorded with accept(), which also counts it")

    def observe(
        self, epoch: int, counter: int, digest: bytes, received_at: datetime, redelivered: bool = False
    ) -> Verdict:
        """Judge a message and record the verdict (accept it, or count it): the usual single call."""
        verdict = self.judge(epoch, counter, digest, received_at, redelivered)
        if verdict.accepted:
            self.accept(epoch, counter, digest, received_at)
        else:
            self.count(verdict)
        return verdict

    def _slide(self, counter: int) -> None:
        """Raise the highest counter to `counter`, forgetting counters that fall out of the window."""
        old_low, new_low = self.highest - self.size, counter - self.size
        if new_low - old_low >= self.size:
            self.seen = {}
        else:
            for gone in range(old_low + 1, new_low + 1):
                self.seen.pop(gone, None)
        self.highest = counter

    def to_json(self) -> dict[str, Any]:
        """The window as JSON-ready data (digests in hex, arrival times in integer nanoseconds
        since the Unix epoch: written at every flush, so cheap to make)."""
        return {
            "epoch": self.epoch,
            "highest": self.highest,
            "seen": [[counter, digest.hex(), nanoseconds(at)] for counter, (digest, at) in self.seen.items()],
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "replays": self.replays,
        }

    @classmethod
    def from_json(
        cls, data: dict[str, Any], *, size: int = WINDOW, redelivery_window: timedelta = REDELIVERY_WINDOW
    ) -> ReplayWindow:
        """A window from `to_json` data; InvalidInput when the data is not such a window."""
        window = cls(size=size, redelivery_window=redelivery_window)
        try:
            window.epoch = None if data["epoch"] is None else int(data["epoch"])
            window.highest = int(data["highest"])
            for counter, digest, at in data["seen"]:
                if int(counter) > window.highest - size:
                    window.seen[int(counter)] = (bytes.fromhex(digest), _moment(at))
            window.accepted = int(data["accepted"])
            window.duplicates = int(data["duplicates"])
            window.replays = int(data["replays"])
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(
                f"a stored replay window is damaged ({error!r}); it cannot be loaded"
            ) from None
        return window


def _check_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise InvalidInput("arrival times must carry a time zone (use the context's clock, in UTC)")


def _aware(moment: datetime) -> datetime:
    _check_aware(moment)
    return moment


def _moment(value: object) -> datetime:
    """An arrival time as stored: integer nanoseconds (or ISO 8601 text, as first written)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return from_nanoseconds(value)
    if isinstance(value, str):
        return _aware(datetime.fromisoformat(value))
    raise ValueError(f"an arrival time of {value!r}")
