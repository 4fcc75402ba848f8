"""Count rules: per group and tumbling window, records (or distinct values) counted across batches.

Windows are tumbling, aligned to multiples of the rule's window since the epoch (a 60s window
runs from one whole minute to the next), so each (group, window) fires at most once, as soon as
the batch that brings its count to the minimum is checked.

The state is vectorised: each (site, segment, group values, window) is a 64-bit hash of its
values (`hashing`), and the states are parallel arrays sorted by that hash (count, records,
first and last time, records outside maintenance, fired). A batch is grouped with `np.unique`,
merged with `np.searchsorted` and `np.insert`; Python runs only for the groups that fire.
Distinct counts keep the sorted hashes of the (group, value) pairs seen. Windows older than the
previous one are dropped when a newer one begins (records may come a window late, no later);
at most `max_groups` groups and `MAX_PAIRS` pairs are kept per rule, and `dropped` counts the
records that found no room.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.detection.rules.compile import BatchView
from plantwarden.detection.rules.detection import Detection, severity_of
from plantwarden.detection.rules.grouping import display
from plantwarden.detection.rules.hashing import Hasher
from plantwarden.detection.rules.model import Count, Rule
from plantwarden.detection.rules.samples import hosts_of, sample_rows

Array = npt.NDArray[Any]
MAX_GROUPS = 1_000_000
MAX_PAIRS = 4_000_000
_STATE = ("window", "count", "records", "first_ns", "last_ns", "outside", "fired")


class CountTracker:
    """The state of one count rule across batches."""

    def __init__(self, rule: Rule, *, samples: int = 5, max_groups: int = MAX_GROUPS) -> None:
        assert rule.count is not None
        self.rule = rule
        self.count: Count = rule.count
        self.samples = samples
        self.max_groups = max_groups
        self.hasher = Hasher()
        self.keys = np.empty(0, dtype=np.uint64)
        self.state: dict[str, Array] = {name: np.empty(0, dtype=np.int64) for name in _STATE}
        self.state["fired"] = np.empty(0, dtype=bool)
        self.pairs = np.empty(0, dtype=np.uint64)
        self.pair_window = np.empty(0, dtype=np.int64)
        self.latest_window: int | None = None
        self.dropped = 0
        self._names = ("site", "segment", *(f.name for f in self.count.by))

    def __len__(self) -> int:
        return len(self.keys)

    def update(self, view: BatchView, rows: Array, outside: Array) -> list[Detection]:
        """Count the matching `rows` of the view (`outside`: 1 per row outside maintenance); the
        detections of the groups that reached the minimum with this batch."""
        if not len(rows):
            return []
        ts = view.column("ts")[rows]
        windows = ts // self.count.window_ns
        hashes = self.hasher.rows(view, self._names, rows, windows)
        keys, first, inverse, records = np.unique(
            hashes, return_index=True, return_inverse=True, return_counts=True
        )
        inverse = inverse.reshape(-1)
        added = (
            self._distinct(view, rows, hashes, inverse, windows, len(keys))
            if self.count.distinct
            else records
        )
        spans = _spans(inverse, ts, len(keys))
        outsides = np.bincount(inverse, weights=outside, minlength=len(keys)).astype(np.int64)
        at = self._merge(keys, windows[first], records, added, spans, outsides)
        fired = self._fire(view, rows, inverse, first, at)
        self._expire(int(windows.max()))
        return fired

    def _distinct(
        self, view: BatchView, rows: Array, hashes: Array, inverse: Array, windows: Array, groups: int
    ) -> Array:
        """Per group of the batch, how many of its values were not seen before in its window."""
        assert self.count.distinct is not None
        pairs = self.hasher.combine(hashes, self.hasher.rows(view, (self.count.distinct.name,), rows))
        unique, first = np.unique(pairs, return_index=True)
        at = np.minimum(np.searchsorted(self.pairs, unique), max(len(self.pairs) - 1, 0))
        new = ~(self.pairs[at] == unique) if len(self.pairs) else np.ones(len(unique), dtype=bool)
        room = MAX_PAIRS - len(self.pairs)
        if int(new.sum()) > room:
            keep = np.flatnonzero(new)[: max(room, 0)]
            self.dropped += int(new.sum()) - len(keep)
            new = np.zeros(len(unique), dtype=bool)
            new[keep] = True
        fresh = unique[new]
        place = np.searchsorted(self.pairs, fresh)
        self.pairs = np.insert(self.pairs, place, fresh)
        self.pair_window = np.insert(self.pair_window, place, windows[first[new]])
        return np.bincount(inverse[first[new]], minlength=groups).astype(np.int64)

    def _merge(
        self,
        keys: Array,
        windows: Array,
        records: Array,
        added: Array,
        spans: tuple[Array, Array],
        outside: Array,
    ) -> Array:
        """Add the batch's groups to the state; each group's position in it (-1: no room)."""
        at = np.minimum(np.searchsorted(self.keys, keys), max(len(self.keys) - 1, 0))
        known = (self.keys[at] == keys) if len(self.keys) else np.zeros(len(keys), dtype=bool)
        new = np.flatnonzero(~known)
        room = max(self.max_groups - len(self.keys), 0)
        if len(new) > room:
            self.dropped += int(records[new[room:]].sum())
            new = new[:room]
        if len(new):
            place = np.searchsorted(self.keys, keys[new])
            self.keys = np.insert(self.keys, place, keys[new])
            zeros = np.zeros(len(new), dtype=np.int64)
            fresh = {"window": windows[new], "first_ns": spans[0][new], "last_ns": spans[1][new]}
            for name, column in self.state.items():
                values = fresh.get(name, zeros.astype(bool) if name == "fired" else zeros)
                self.state[name] = np.insert(column, place, values)
        at = np.searchsorted(self.keys, keys)
        present = at < len(self.keys)
        present[present] = self.keys[at[present]] == keys[present]
        at = np.where(present, at, -1)
        mine = at[present]
        state = self.state
        state["count"][mine] += added[present]
        state["records"][mine] += records[present]
        state["outside"][mine] += outside[present]
        state["first_ns"][mine] = np.minimum(state["first_ns"][mine], spans[0][present])
        state["last_ns"][mine] = np.maximum(state["last_ns"][mine], spans[1][present])
        return at

    def _fire(self, view: BatchView, rows: Array, inverse: Array, first: Array, at: Array) -> list[Detection]:
        state = self.state
        ready = at >= 0
        ready[ready] = (state["count"][at[ready]] >= self.count.min) & ~state["fired"][at[ready]]
        found = []
        for g in np.flatnonzero(ready).tolist():
            position = int(at[g])
            state["fired"][position] = True
            members = rows[np.flatnonzero(inverse == g)[: self.samples]]
            found.append(self._detection(view, int(rows[first[g]]), members, position))
        return found

    def _detection(self, view: BatchView, row: int, members: Array, position: int) -> Detection:
        values = [display(view, name, row) for name in self._names]
        state = {name: column[position].item() for name, column in self.state.items()}
        samples = sample_rows(view, members)
        return Detection(
            rule=self.rule,
            site=str(values[0]),
            segment=str(values[1]),
            group=tuple(zip(self._names[2:], values[2:], strict=True)),
            count=state["count"],
            records=state["records"],
            first_ns=state["first_ns"],
            last_ns=state["last_ns"],
            samples=tuple(samples),
            severity=severity_of(self.rule, state["outside"]),
            outside=state["outside"],
            window_start_ns=state["window"] * self.count.window_ns,
            hosts=hosts_of(samples),
        )

    def _expire(self, newest: int) -> None:
        if self.latest_window is not None and newest <= self.latest_window:
            return
        self.latest_window = newest
        keep = self.state["window"] >= newest - 1
        if not bool(keep.all()):
            self.keys = self.keys[keep]
            self.state = {name: column[keep] for name, column in self.state.items()}
        kept_pairs = self.pair_window >= newest - 1
        if not bool(kept_pairs.all()):
            self.pairs, self.pair_window = self.pairs[kept_pairs], self.pair_window[kept_pairs]


def _spans(inverse: Array, ts: Array, groups: int) -> tuple[Array, Array]:
    """Per group, the first and last time of its records."""
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.flatnonzero(np.diff(inverse[order])) + 1))
    ordered = ts[order]
    return np.minimum.reduceat(ordered, starts), np.maximum.reduceat(ordered, starts)
