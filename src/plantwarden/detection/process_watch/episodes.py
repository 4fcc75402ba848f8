"""Flagged rows into episodes: one stretch of a device's process off its learned relations.

A process model flags rows; an engineer wants one alert per stretch, not one per second. An
`Episode` runs from the first flagged row to the last one of an unbroken run (rows flagged by
the model's hold count as unbroken) and keeps its worst row: the highest smoothed score, with
each variable's value, expected value and deviation there (`explain`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from plantwarden.detection.process.model import Deviation, explain
from plantwarden.detection.process.stream import Scores
from plantwarden.detection.process_watch.limits import WatchedModel

SHOWN = 3
"""Variables an episode names: those furthest from what the others imply."""


@dataclass
class Episode:
    """A device's stretch of flagged rows, its worst moment, and the variables off there."""

    device: str
    start_ns: int
    end_ns: int
    rows: int
    peak_ns: int
    peak_score: float
    threshold: float
    deviations: list[Deviation] = field(default_factory=list)
    outside: list[tuple[str, float, float, float]] = field(default_factory=list)
    """Variables outside the learned operating envelope at the worst moment: name, value, low, high."""
    ongoing: bool = True
    reported: bool = False

    @property
    def top(self) -> Deviation | None:
        present = [d for d in self.deviations if not d.missing]
        return present[0] if present else None

    def variables(self) -> list[Deviation]:
        """The deviations worth naming: the largest present ones, at most `SHOWN`."""
        return [d for d in self.deviations if not d.missing][:SHOWN]


class Episodes:
    """Turns each block of a device's scores into episodes (an open one carries over)."""

    def __init__(self, device: str, model: WatchedModel) -> None:
        self.device = device
        self.model = model
        self.open: Episode | None = None
        self.done: list[Episode] = []

    def add(self, scores: Scores) -> None:
        """Take the scores of the next rows (in time order)."""
        for index in range(len(scores)):
            if not scores.flag[index]:
                self._end()
                continue
            if scores.reset[index]:  # a gap in the data: what follows is a stretch of its own
                self._end()
            self._extend(scores, index, int(scores.times_ns[index]))

    def _extend(self, scores: Scores, index: int, moment: int) -> None:
        score = float(scores.score[index])
        episode = self.open
        if episode is None:
            episode = self.open = Episode(self.device, moment, moment, 0, moment, -np.inf, scores.threshold)
        episode.end_ns = moment
        episode.rows += 1
        if score > episode.peak_score:
            episode.peak_score, episode.peak_ns = score, moment
            row = scores.measured[index]
            episode.deviations = explain(self.model.model, row, scores.deviation[index], moment)
            episode.outside = self.model.outside(row)

    def _end(self) -> None:
        if self.open is not None:
            self.open.ongoing = False
            self.done.append(self.open)
            self.open = None

    def finish(self) -> None:
        """The end of the input: an open episode ends at its last flagged row."""
        self._end()

    def take(self) -> list[Episode]:
        """Episodes to report now: every ended one not reported yet, and the open one the first
        time it is seen (later rows of it are not reported again)."""
        found = [episode for episode in self.done if not episode.reported]
        self.done = []
        if self.open is not None and not self.open.reported:
            found.append(self.open)
        for episode in found:
            episode.reported = True
        return found
