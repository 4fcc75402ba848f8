"""What the sensor tells the asset inventory, as it runs.

An `InventoryFeed` sits beside the sensor: after each batch, `observe(sensor, batch)` turns what
the sensor decoded into sightings (identity frames, plain IP traffic, and the devices'
self-descriptions in the industrial protocols) for an `AssetBook`; and as the records sink in
front of the records plane (`write(batch)`), it hands every protocol and flow record to an
`EdgeBook` on the way, before the storage policy folds reads into minute aggregates, so the
response times are there. `snapshot()` gives the assets, edges, per-function statistics and the
inferred roles, which `inventory.store.save_inventory` keeps.

The asset book lives in memory for the whole run. The edge book keeps the raw response times and
intervals its medians need, so `sensor run` saves every few minutes and then starts a new edge
book (`new_period`): each save carries that period's communications, which the store adds up.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from plantwarden.capture.batch import PacketBatch
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import WriteReport
from plantwarden.core.records.schema import FLOWS, PROTOCOL_RECORDS
from plantwarden.inventory import Asset, AssetBook, Edge, EdgeBook, FunctionStatistics
from plantwarden.inventory.roles import RoleGuess, infer_roles
from plantwarden.monitoring.modbus_streams import ModbusBatch
from plantwarden.monitoring.protocol_sightings import ProtocolSightings
from plantwarden.monitoring.requests import RecordSink
from plantwarden.monitoring.sensor import Sensor
from plantwarden.monitoring.sightings import sightings


@dataclass(frozen=True)
class InventorySnapshot:
    """The inventory one feed has built so far."""

    assets: tuple[Asset, ...]
    edges: list[Edge]
    statistics: list[FunctionStatistics]
    roles: dict[uuid.UUID, RoleGuess]


class InventoryFeed:
    """Sightings into an asset book, records into an edge book; records passed on to `inner`."""

    def __init__(self, site: str, segment: str, inner: RecordSink | None = None) -> None:
        self.site = site
        self.segment = segment
        self.inner = inner
        self.book = AssetBook()
        self.edges = EdgeBook()
        self.protocol_sightings = ProtocolSightings(site, segment)
        self.sightings = 0

    def write(self, batch: RecordBatch) -> WriteReport:
        """Take the sensor's records: protocol records and flows go to the edge book too."""
        if batch.kind in (PROTOCOL_RECORDS, FLOWS):
            # layer-2 records (PROFINET DCP) name MACs, not hosts' IPs: no communication edge
            ip = np.asarray(batch["transport"]) != 0
            self.edges.add(batch if ip.all() else batch.take(np.flatnonzero(ip)))
        if self.inner is None:
            return WriteReport()
        return self.inner.write(batch)

    def observe(self, sensor: Sensor, batch: PacketBatch, modbus: ModbusBatch) -> None:
        """The sightings of the batch the sensor has just processed (`modbus`: what `process`
        returned)."""
        layers = sensor.last_layers
        if layers is None:
            return
        found = sightings(batch, layers, sensor.last_identity, self.site, self.segment)
        found.extend(self.protocol_sightings.process(batch, layers, modbus, sensor.last_protocols))
        self.sightings += len(found)
        self.book.add_many(found)

    def new_period(self) -> None:
        """Start counting communications afresh (after a save: the store adds each save's
        counts). The asset book goes on: assets, bindings and router MACs are the run's."""
        self.edges = EdgeBook()

    def snapshot(self) -> InventorySnapshot:
        """The assets, edges, statistics and roles as they stand."""
        assets = self.book.assets()
        edges = self.edges.edges()
        statistics = self.edges.statistics()
        roles = infer_roles(assets, edges, statistics, router_macs=self.book.router_macs())
        return InventorySnapshot(assets, edges, statistics, roles)
