"""`RegisterMap`: the register maps of a site's plant model as sorted numpy arrays.

The sensor turns the register values it sees on the wire into telemetry (`register_values`); for
that it must find, for many Modbus PDUs at once, the asset a server address and unit id name, and
the registers of that asset inside the range a PDU reads or writes. Python dictionaries would
cost an object per register; here an asset is found by bisection among sorted 18-byte keys
(address, unit id) and a PDU's registers are one contiguous slice of the registers sorted by
(asset, table, address), found with two `searchsorted`.

Tables are Modbus's four: holding registers (read by FC 3 and 23, written by FC 6, 16 and 23),
input registers (FC 4), coils (FC 1; written by FC 5 and 15) and discrete inputs (FC 2). An
asset that names no unit id answers to any unit id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.schema import TEXT, address
from plantwarden.zones.plant.model import SiteModel

TABLES: tuple[str, ...] = ("holding", "input", "coil", "discrete")
HOLDING, INPUT, COIL, DISCRETE = range(4)
FUNCTIONS = 24
READ_TABLE = np.full(FUNCTIONS, -1, dtype=np.int64)
"""Per function code: the table it reads, or -1."""
READ_TABLE[[1, 2, 3, 4, 23]] = (COIL, DISCRETE, HOLDING, INPUT, HOLDING)
WRITE_TABLE = np.full(FUNCTIONS, -1, dtype=np.int64)
"""Per function code: the table it writes, or -1."""
WRITE_TABLE[[5, 6, 15, 16, 23]] = (COIL, HOLDING, COIL, HOLDING, HOLDING)
TYPES: tuple[str, ...] = ("bool", "uint16", "int16", "uint32", "int32", "float32")
BOOL, UINT16, INT16, UINT32, INT32, FLOAT32 = range(6)
ANY_UNIT = 0xFFFF
"""The unit id of an asset that names none (above every real one, 0-255)."""
SERVER_KEY = np.dtype("S18")
"""A server's key: its 16-byte address, then its unit id as two big-endian bytes."""


def server_keys(
    addresses: npt.NDArray[np.bytes_], units: npt.NDArray[np.integer[Any]]
) -> npt.NDArray[np.bytes_]:
    """The keys of servers at `addresses` (16-byte, `core.records.schema.address`) and `units`."""
    count = len(addresses)
    octets = np.zeros((count, 18), dtype=np.uint8)
    octets[:, :16] = np.ascontiguousarray(addresses, dtype="S16").view(np.uint8).reshape(count, 16)
    unit = np.asarray(units).astype(np.uint16)
    octets[:, 16], octets[:, 17] = unit >> 8, unit & 0xFF
    keys: npt.NDArray[np.bytes_] = octets.view(SERVER_KEY).reshape(count)
    return keys


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """The registers of a site's assets, one row each, sorted by `keys`.

    `keys` is `(asset * 4 + table) << 16 | address` of each register's first address and `lasts`
    the same of its last (registers of one table never overlap, so both are sorted).
    """

    servers: npt.NDArray[np.bytes_]
    """Sorted server keys (`server_keys`), one per asset address."""
    server_asset: npt.NDArray[np.int64]
    """The asset of each server key."""
    keys: npt.NDArray[np.int64]
    lasts: npt.NDArray[np.int64]
    type_code: npt.NDArray[np.uint8]
    """One of `TYPES` by index."""
    little: npt.NDArray[np.bool_]
    """Whether a two-register value has its low word first."""
    scale: npt.NDArray[np.float64]
    device: npt.NDArray[Any]
    """The asset's id (text, the telemetry's `device`)."""
    variable: npt.NDArray[Any]
    """The register's name (text, the telemetry's `variable`)."""

    @classmethod
    def from_site(cls, site: SiteModel, segment: str | None = None) -> RegisterMap:
        """The register maps of `site`'s assets (of the zones on `segment` only, when given:
        addresses mean something only on their own network segment)."""
        zones = {zone.id: zone.segment for zone in site.zones}
        assets = [
            asset
            for asset in site.assets
            if asset.registers and (segment is None or zones.get(asset.zone) == segment)
        ]
        servers = [
            (address(str(where)), ANY_UNIT if asset.unit_id is None else asset.unit_id, index)
            for index, asset in enumerate(assets)
            for where in asset.addresses
        ]
        rows = sorted(
            (
                ((index * 4 + TABLES.index(register.kind)) << 16) | register.address,
                register.width - 1,
                TYPES.index(register.type),
                register.word_order == "little",
                register.scale,
                asset.id,
                register.name,
            )
            for index, asset in enumerate(assets)
            for register in asset.registers
        )
        keys = np.array([row[0] for row in rows], dtype=np.int64)
        text = np.empty((2, len(rows)), dtype=TEXT)
        text[0, :] = [row[5] for row in rows]
        text[1, :] = [row[6] for row in rows]
        keyed = server_keys(
            np.array([server[0] for server in servers], dtype="S16"),
            np.array([server[1] for server in servers], dtype=np.uint16),
        )
        order = np.argsort(keyed, kind="stable")
        return cls(
            servers=keyed[order],
            server_asset=np.array([server[2] for server in servers], dtype=np.int64)[order],
            keys=keys,
            lasts=keys + np.array([row[1] for row in rows], dtype=np.int64),
            type_code=np.array([row[2] for row in rows], dtype=np.uint8),
            little=np.array([row[3] for row in rows], dtype=bool),
            scale=np.array([row[4] for row in rows], dtype=np.float64),
            device=text[0],
            variable=text[1],
        )

    def __len__(self) -> int:
        """How many registers the map holds."""
        return len(self.keys)

    def assets(
        self, addresses: npt.NDArray[np.bytes_], units: npt.NDArray[np.integer[Any]]
    ) -> npt.NDArray[np.int64]:
        """Per server (16-byte address, unit id): its asset, or -1 when the plant model has none.

        An asset that names its unit id answers only to it; one that names none, to any.
        """
        found = self._find(server_keys(addresses, units))
        missing = np.flatnonzero(found < 0)
        if missing.size:
            found[missing] = self._find(server_keys(addresses[missing], np.full(missing.size, ANY_UNIT)))
        return found

    def _find(self, keys: npt.NDArray[np.bytes_]) -> npt.NDArray[np.int64]:
        if not len(self.servers):
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.servers, keys), len(self.servers) - 1)
        return np.where(self.servers[at] == keys, self.server_asset[at], -1)

    def span(
        self,
        asset: npt.NDArray[np.int64],
        table: npt.NDArray[np.int64],
        first: npt.NDArray[np.int64],
        count: npt.NDArray[np.int64],
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Per range of `count` addresses from `first` in `table` of `asset` (-1: none): the
        registers wholly inside it, as `[low, high)` rows of the map (empty when `high <= low`)."""
        base = (np.maximum(asset, 0) * 4 + table) << 16
        last = np.minimum(first + count - 1, 0xFFFF)  # a range past 65535 stays in its table
        low = np.searchsorted(self.keys, base + first, side="left")
        high = np.searchsorted(self.lasts, base + last, side="right")
        high = np.where((asset >= 0) & (count > 0), np.maximum(high, low), low)
        return low.astype(np.int64), high.astype(np.int64)
