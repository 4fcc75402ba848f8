"""The asset inventory: what is on the plant network, built from what the traffic says.

The core: `Sighting`s (one device seen once, with how strongly its MAC
is tied to its IP) go into an `AssetBook`, which merges them into `Asset`s by the rules of
`plantwarden.inventory.book`: keyed by site, segment and IP; router MACs kept from merging the
hosts behind them; DHCP moves followed; multi-homed hosts joined by strong identities. Every
attribute is a `Fact` with its source, confidence and time. An `EdgeBook` (`edges.py`) gives
who talks to whom from the records plane's batches, with request statistics per function
(unanswered, exceptions, response time, polling period); `roles.py` infers what each asset is.
Those are pure and in memory; `store.py` saves a run's snapshot into the domain store, and
`queries.py`, `api.py` and `cli.py` read it. See docs/inventory.md.
"""

from plantwarden.inventory.assets import Asset, RouterMac, SegmentAddress
from plantwarden.inventory.book import DEFAULT_ROUTER_THRESHOLD, AssetBook
from plantwarden.inventory.edges import Edge, EdgeBook, FunctionStatistics
from plantwarden.inventory.errors import AssetNotFound, InvalidSighting
from plantwarden.inventory.facts import Fact
from plantwarden.inventory.sightings import Binding, Sighting

__all__ = [
    "DEFAULT_ROUTER_THRESHOLD",
    "Asset",
    "AssetBook",
    "AssetNotFound",
    "Binding",
    "Edge",
    "EdgeBook",
    "Fact",
    "FunctionStatistics",
    "InvalidSighting",
    "RouterMac",
    "SegmentAddress",
    "Sighting",
]
