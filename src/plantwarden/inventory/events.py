"""Events of the asset inventory, announced when a sensor run's snapshot is saved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plantwarden.core.events import event_type


@event_type("inventory.AssetDiscovered")
@dataclass(frozen=True)
class AssetDiscovered:
    """A device not in the inventory before was stored."""

    asset_id: str
    segment: str
    ips: list[str]
    macs: list[str]
    role: str | None


@event_type("inventory.AssetChanged")
@dataclass(frozen=True)
class AssetChanged:
    """A stored asset changed: `changes` maps what changed (an attribute's name, `role`, `ips`,
    `past_ips` or `macs`) to `{"old": ..., "new": ...}` (a value, or a sorted list of addresses)."""

    asset_id: str
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)


@event_type("inventory.CommunicationDiscovered")
@dataclass(frozen=True)
class CommunicationDiscovered:
    """A client was seen talking to a server with a protocol for the first time."""

    edge_id: str
    segment: str
    client: str
    server: str
    protocol: str
    client_asset_id: str | None
    server_asset_id: str | None
