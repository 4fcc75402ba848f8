"""Saving a sensor run's inventory snapshot into the store, continuing the assets already there.

Each run builds a new `AssetBook`, whose ids are UUID 5s of that run's first sightings, so a
second run names the same device differently. `save_inventory` matches every book asset to a
stored asset of the same site: the stored asset with the book's own id (the same run saved
again), else one holding one of its current IPs in the same segment, else one with one of its
MACs; else it stores a new asset under the book's id (a new UUID v7 in the rare case that id
is taken). A stored asset is matched at most once per
save. `SaveResult.ids` maps the book's ids to the stored ones.

Merging into a stored asset: addresses are united (an IP the book holds current is taken from
any other stored asset of the site, which keeps it in its `past_ips`; one the book lists as past
leaves the current ones); facts follow `facts.py` (the same value widens its first and last time
and keeps the most confident source; the current value is the most confident, then the most
recent); first and last seen widen; sources and protocols add up; a role given replaces the
stored one unless it is a different role guessed with less confidence (a sensor saving every few
minutes sees only part of a device's behaviour each time: an engineering workstation that did
nothing industrial in the last minutes is not demoted to an IT host).

Edges and statistics are saved by `stored_edges.save_edges` (counts add up; the newer run's
medians and period replace the stored ones). Existing rows of the sites concerned are loaded
once, new rows written together, and the events appended in one statement: the cost grows with
the size of the snapshot and of the sites, not with round trips per asset. Each save also places
the sites' assets in the applied plant model (`placement.py`: zone, and whether plant.yaml
declares them).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plantwarden.core import eventlog
from plantwarden.core.clock import from_nanoseconds
from plantwarden.core.context import Context
from plantwarden.core.errors import InvalidInput
from plantwarden.core.events import envelope
from plantwarden.core.ids import new_id
from plantwarden.inventory.assets import Asset
from plantwarden.inventory.edges import Edge, FunctionStatistics
from plantwarden.inventory.events import AssetChanged, AssetDiscovered
from plantwarden.inventory.facts import Fact, FactTable
from plantwarden.inventory.models import StoredAsset
from plantwarden.inventory.placement import place_assets
from plantwarden.inventory.roles import RoleGuess
from plantwarden.inventory.stored_edges import protocol_name, save_edges
from plantwarden.zones.applied import current_model
from plantwarden.zones.errors import AppliedPlantUnreadable

log = logging.getLogger(__name__)
AddressKey = tuple[str, str, str]  # site, segment, address
ADDRESS_FIELDS = ("ips", "past_ips", "macs")
Changes = dict[str, dict[str, Any]]


@dataclass
class SaveResult:
    """What a save did: the stored id of every book asset, and what was new or changed."""

    ids: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    assets_created: int = 0
    assets_changed: int = 0
    edges_created: int = 0
    edges_updated: int = 0


def save_inventory(
    session: Session,
    ctx: Context,
    assets: Iterable[Asset],
    edges: Iterable[Edge],
    statistics: Iterable[FunctionStatistics],
    roles: Mapping[uuid.UUID, RoleGuess] | None = None,
) -> SaveResult:
    """Upsert one run's assets (with their `roles`, by book id), edges and statistics; announce
    `AssetDiscovered`, `AssetChanged` and `CommunicationDiscovered`. See the module docstring."""
    assets, edges, statistics = list(assets), list(edges), list(statistics)
    roles = roles or {}
    _check(assets, roles)
    now = ctx.clock.now()
    sites = sorted({a.site for a in assets} | {e.site for e in edges} | {s.site for s in statistics})
    index = _AssetIndex(session.scalars(select(StoredAsset).where(StoredAsset.site.in_(sites))).all())
    result = SaveResult()
    created, changes = _save_assets(session, index, assets, roles, result, now)
    _record_protocols(index, edges)
    saved_edges = save_edges(session, edges, statistics, index.asset_of, now)
    try:
        for placed in place_assets(index.by_id.values(), current_model(session)):
            placed.updated_at = now  # a new zone is a change (the console's map is redrawn on one)
    except AppliedPlantUnreadable as error:  # the inventory is saved all the same, unplaced
        log.error("%s; assets are not placed in zones until then", error.message)
    session.flush()
    announced: list[tuple[str, object]] = [(row.site, _discovered(row)) for row in created]
    for asset_id, diff in changes.items():
        stored = index.by_id[asset_id]
        stored.updated_at = now
        announced.append((stored.site, AssetChanged(str(asset_id), diff)))
    announced += [(site, event) for site, event in saved_edges.discovered]
    events = [envelope(p, clock=ctx.clock, source=ctx.source, site=site) for site, p in announced]
    eventlog.record_many(session, events, clock=ctx.clock)
    session.flush()
    result.assets_created, result.assets_changed = len(created), len(changes)
    result.edges_created, result.edges_updated = len(saved_edges.discovered), saved_edges.updated
    return result


def _save_assets(
    session: Session,
    index: _AssetIndex,
    assets: Sequence[Asset],
    roles: Mapping[uuid.UUID, RoleGuess],
    result: SaveResult,
    now: datetime,
) -> tuple[list[StoredAsset], dict[uuid.UUID, Changes]]:
    """Match, merge or create every book asset; the new assets, and the changes of the others."""
    taken = _ids_in_store(session, [a.id for a in assets])
    addresses_before = {row.id: _address_state(row) for row in index.by_id.values()}
    created: list[StoredAsset] = []
    changes: dict[uuid.UUID, Changes] = {}
    for asset in sorted(assets, key=lambda a: (a.first_seen_ns, str(a.id))):
        stored = index.match(asset)
        if stored is None:
            stored = _new_asset(asset, roles.get(asset.id), now)
            if stored.id in taken or stored.id in index.by_id:
                stored.id = new_id()  # the book's id is already another asset's
            index.create(stored)
            session.add(stored)
            created.append(stored)
        else:
            diff = _merge(index, stored, asset, roles.get(asset.id))
            if diff:
                changes.setdefault(stored.id, {}).update(diff)
        result.ids[asset.id] = stored.id
    for asset_id, old in addresses_before.items():
        new = _address_state(index.by_id[asset_id])
        for name in ADDRESS_FIELDS:
            if old[name] != new[name]:
                changes.setdefault(asset_id, {})[name] = {"old": old[name], "new": new[name]}
    return created, changes


def _ids_in_store(session: Session, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    taken: set[uuid.UUID] = set()
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        taken.update(session.scalars(select(StoredAsset.id).where(StoredAsset.id.in_(chunk))))
    return taken


def _check(assets: Sequence[Asset], roles: Mapping[uuid.UUID, RoleGuess]) -> None:
    ids = {a.id for a in assets}
    if len(ids) != len(assets):
        raise InvalidInput("an inventory snapshot lists one asset twice")
    strays = [str(key) for key in roles if key not in ids]
    if strays:
        raise InvalidInput(f"roles given for assets not in the snapshot: {', '.join(sorted(strays)[:5])}")
    for guess in roles.values():
        if not 0.0 <= guess.confidence <= 1.0:
            raise InvalidInput(f"a role confidence must be within 0..1, not {guess.confidence}")


class _AssetIndex:
    """The stored assets of the sites concerned, by id, current IP and MAC."""

    def __init__(self, rows: Sequence[StoredAsset]) -> None:
        self.by_id: dict[uuid.UUID, StoredAsset] = {}
        self.by_ip: dict[AddressKey, StoredAsset] = {}
        self.by_mac: dict[AddressKey, StoredAsset] = {}
        self.preexisting = frozenset(row.id for row in rows)
        self.claimed: set[uuid.UUID] = set()
        self.client_protocols: dict[uuid.UUID, set[str]] = {}
        self.server_protocols: dict[uuid.UUID, set[str]] = {}
        for row in rows:
            self.add(row, claim=False)

    def add(self, row: StoredAsset, *, claim: bool = True) -> StoredAsset:
        self.by_id[row.id] = row
        if claim:
            self.claimed.add(row.id)
        self.reindex(row)
        return row

    def create(self, row: StoredAsset) -> StoredAsset:
        """A new stored asset: it takes its current IPs from any stored asset holding them."""
        for item in row.ips:
            self.take_ip(row, (row.site, item["segment"], item["address"]))
        return self.add(row)

    def reindex(self, row: StoredAsset) -> None:
        for item in row.ips:
            self.by_ip[(row.site, item["segment"], item["address"])] = row
        for item in row.macs:
            self.by_mac.setdefault((row.site, item["segment"], item["address"]), row)

    def asset_of(self, site: str, segment: str, address: str) -> uuid.UUID | None:
        """The id of the stored asset holding this IP now, if any."""
        row = self.by_ip.get((site, segment, address))
        return row.id if row is not None else None

    def match(self, asset: Asset) -> StoredAsset | None:
        candidates = [self.by_id.get(asset.id)]
        candidates += [self.by_ip.get((asset.site, *ip)) for ip in sorted(asset.ips)]
        candidates += [self.by_mac.get((asset.site, *mac)) for mac in sorted(asset.macs)]
        for row in candidates:
            if row is not None and row.site == asset.site and row.id not in self.claimed:
                self.claimed.add(row.id)
                return row
        return None

    def take_ip(self, winner: StoredAsset, key: AddressKey) -> None:
        """`winner` holds this IP now: any other stored asset keeps it only as a past IP."""
        holder = self.by_ip.get(key)
        self.by_ip[key] = winner
        if holder is None or holder.id == winner.id:
            return
        address = {"segment": key[1], "address": key[2]}
        holder.ips = [a for a in holder.ips if a != address]
        holder.past_ips = _addresses({*_pairs(holder.past_ips), (key[1], key[2])})


def _pairs(items: Iterable[Mapping[str, str]]) -> set[tuple[str, str]]:
    return {(item["segment"], item["address"]) for item in items}


def _addresses(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"segment": segment, "address": address} for segment, address in sorted(pairs)]


def _texts(items: Iterable[Mapping[str, str]]) -> list[str]:
    return sorted(f"{item['segment']}/{item['address']}" for item in items)


def fact_json(fact: Fact) -> dict[str, Any]:
    return {
        "value": fact.value,
        "source": fact.source,
        "confidence": fact.confidence,
        "first_ns": fact.first_ns,
        "last_ns": fact.last_ns,
    }


def fact_of(item: Mapping[str, Any]) -> Fact:
    return Fact(
        str(item["value"]),
        str(item["source"]),
        float(item["confidence"]),
        int(item["first_ns"]),
        int(item["last_ns"]),
    )


def _new_asset(asset: Asset, guess: RoleGuess | None, now: datetime) -> StoredAsset:
    return StoredAsset(
        id=asset.id,
        site=asset.site,
        segment=asset.segment,
        ips=_addresses(asset.ips),
        past_ips=_addresses(asset.past_ips),
        macs=_addresses(asset.macs),
        facts={name: fact_json(fact) for name, fact in asset.facts.items()},
        history={name: [fact_json(f) for f in facts] for name, facts in asset.history.items()},
        sources=sorted(asset.sources),
        role=guess.role.value if guess else None,
        role_confidence=guess.confidence if guess else None,
        role_evidence=list(guess.evidence) if guess else [],
        client_protocols=[],
        server_protocols=[],
        first_seen=from_nanoseconds(asset.first_seen_ns),
        last_seen=from_nanoseconds(asset.last_seen_ns),
        zone=None,
        known=None,
        created_at=now,
        updated_at=now,
    )


def _replaces(guess: RoleGuess, stored: StoredAsset) -> bool:
    """Whether `guess` takes the stored role's place: the same role (fresher evidence), none
    stored, or a different role at least as confident."""
    if stored.role is None or guess.role.value == stored.role:
        return True
    return guess.confidence >= (stored.role_confidence or 0.0)


def _merge(index: _AssetIndex, stored: StoredAsset, asset: Asset, guess: RoleGuess | None) -> Changes:
    """Fold a book asset into its stored asset; the changes an `AssetChanged` announces."""
    changes: Changes = {}
    _merge_addresses(index, stored, asset)
    _merge_facts(stored, asset, changes)
    if guess is not None and _replaces(guess, stored):
        if guess.role.value != stored.role:
            changes["role"] = {"old": stored.role, "new": guess.role.value}
        stored.role, stored.role_confidence = guess.role.value, guess.confidence
        stored.role_evidence = list(guess.evidence)
    stored.sources = sorted(set(stored.sources) | asset.sources)
    stored.first_seen = min(stored.first_seen, from_nanoseconds(asset.first_seen_ns))
    stored.last_seen = max(stored.last_seen, from_nanoseconds(asset.last_seen_ns))
    return changes


def _address_state(row: StoredAsset) -> dict[str, list[str]]:
    return {name: _texts(getattr(row, name)) for name in ADDRESS_FIELDS}


def _merge_addresses(index: _AssetIndex, stored: StoredAsset, asset: Asset) -> None:
    """Unite the addresses (changes are found by comparing before and after the whole save)."""
    past = set(asset.past_ips) - set(asset.ips)
    ips = (_pairs(stored.ips) - past) | set(asset.ips)
    for segment, address in sorted(asset.ips):
        index.take_ip(stored, (stored.site, segment, address))
    for segment, address in sorted(_pairs(stored.ips) & past):
        if index.by_ip.get((stored.site, segment, address)) is stored:
            del index.by_ip[(stored.site, segment, address)]
    values = {
        "ips": _addresses(ips),
        "past_ips": _addresses((_pairs(stored.past_ips) | past) - ips),
        "macs": _addresses(_pairs(stored.macs) | set(asset.macs)),
    }
    for name, new in values.items():
        if _pairs(getattr(stored, name)) != _pairs(new):
            setattr(stored, name, new)
    index.reindex(stored)


def _merge_facts(stored: StoredAsset, asset: Asset, changes: Changes) -> None:
    table = FactTable()
    for name, item in stored.facts.items():
        table.record(name, fact_of(item))
    for name, items in stored.history.items():
        for item in items:
            table.record(name, fact_of(item))
    for name, fact in asset.facts.items():
        table.record(name, fact)
    for name, facts in asset.history.items():
        for fact in facts:
            table.record(name, fact)
    current = table.current()
    for name, fact in current.items():
        old = stored.facts.get(name)
        if old is None or old["value"] != fact.value:
            changes[name] = {"old": old["value"] if old else None, "new": fact.value}
    current_json = {name: fact_json(fact) for name, fact in current.items()}
    history_json = {name: [fact_json(f) for f in past] for name, past in table.history().items()}
    if current_json != stored.facts:
        stored.facts = current_json
    if history_json != stored.history:
        stored.history = history_json


def _record_protocols(index: _AssetIndex, edges: Sequence[Edge]) -> None:
    for edge in edges:
        name = protocol_name(edge)
        for address, side in ((edge.client, index.client_protocols), (edge.server, index.server_protocols)):
            row = index.by_ip.get((edge.site, edge.segment, address))
            if row is not None:
                side.setdefault(row.id, set()).add(name)
    for protocols, attribute in (
        (index.client_protocols, "client_protocols"),
        (index.server_protocols, "server_protocols"),
    ):
        for asset_id, names in protocols.items():
            row = index.by_id[asset_id]
            merged = sorted(set(getattr(row, attribute)) | names)
            if merged != getattr(row, attribute):
                setattr(row, attribute, merged)


def _discovered(row: StoredAsset) -> AssetDiscovered:
    return AssetDiscovered(str(row.id), row.segment, _texts(row.ips), _texts(row.macs), row.role)
