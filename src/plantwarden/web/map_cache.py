"""The drawn communication map, kept in the server's memory until the inventory changes.

Laying out and drawing 5,000 assets takes a few hundred milliseconds and gives megabytes of SVG;
the inventory behind it changes when a sensor saves (every few minutes). So `/map` and `/map.svg`
keep the last few drawings, each under what it was drawn from: the caller's places (a user sees
only the map of the places they may read, never another's), the site filter, and the
inventory's version (`inventory_version`). A changed inventory has another version, and is drawn
anew; an entry not used for longest goes first past `MAP_CACHE_SIZE`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plantwarden.inventory.models import StoredAsset, StoredEdge
from plantwarden.inventory.queries import Places

MAP_CACHE_SIZE = 8
"""Drawings kept at most (a full-size one is about 3 MB)."""

Drawn = tuple[str, dict[str, int]]
"""The SVG and what it holds (assets, links, pairs, bundles, undrawn)."""


def inventory_version(session: Session) -> tuple[Any, ...]:
    """What changes whenever anything the map draws does: how many assets and communications
    are stored, and when the last of each was changed (saving the inventory stamps every asset
    and communication it changes, its zone too)."""
    assets = session.execute(select(func.count(), func.max(StoredAsset.updated_at))).one()
    edges = session.execute(select(func.count(), func.max(StoredEdge.updated_at))).one()
    return (*assets, *edges)


def map_key(places: Places, site: str | None, version: tuple[Any, ...]) -> Hashable:
    """The cache key of one drawing: the places in a fixed order, the site, the version."""
    return tuple(sorted(places, key=str)), site, version


class MapCache:
    """The last `size` drawings by key; safe to share between the server's threads."""

    def __init__(self, size: int = MAP_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, Drawn] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def drawing(self, key: Hashable, draw: Callable[[], Drawn]) -> tuple[Drawn, bool]:
        """The drawing under `key`, drawn now by `draw()` if not kept; and whether it was kept.
        Two requests that miss at once both draw (the lock is not held while drawing)."""
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None:
                self._entries.move_to_end(key)
                return kept, True
        drawn = draw()
        with self._lock:
            self._entries[key] = drawn
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return drawn, False
