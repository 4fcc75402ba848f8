"""Rules compiled to numpy over a `RecordBatch`: each field test a boolean mask, the condition mask
algebra over the selections.

`BatchView` holds one batch with what the rules derive from it (address words, roles,
maintenance, writes out of their safe range), computed once and only when a rule asks; masks of
the same test are shared by every rule that makes it. Addresses are compared as two big-endian
64-bit words (the 16-byte column, IPv4 mapped), so an IP is a one-address range and a CIDR block a
range of the same kind.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import Operation
from plantwarden.detection.rules.condition import evaluate
from plantwarden.detection.rules.fields import ROLE_CODES, UNKNOWN_ROLE, FieldType
from plantwarden.detection.rules.model import Match, Rule
from plantwarden.detection.rules.values import Network

Array = npt.NDArray[Any]
_LOW64 = (1 << 64) - 1
_ISIN_ABOVE = 8  # more values than this: np.isin, else a chain of equalities


class RoleLookup(Protocol):
    def __call__(self, sites: Array, addresses: Array) -> Array:
        """Each address's role code (`fields.ROLES`; unknown when not known) at its record's site."""
        ...


MaintenanceCheck = Callable[[RecordBatch], Array]
"""Per record of a batch: True inside a maintenance window of a channel that carries it."""
RangeCheck = Callable[[RecordBatch], Array]
"""Per protocol record of a batch: True when it writes a declared register outside its safe range."""


@dataclass(frozen=True)
class Providers:
    """What the engine derives from outside the batch; None: every role unknown, never maintenance,
    never out of range."""

    roles: RoleLookup | None = None
    maintenance: MaintenanceCheck | None = None
    out_of_range: RangeCheck | None = None


class BatchView:
    """A batch with its derived columns and test masks, computed on first use."""

    def __init__(
        self, batch: RecordBatch, providers: Providers, derived: Mapping[str, Array] | None = None
    ) -> None:
        self.batch = batch
        self.providers = providers
        self._columns: dict[str, Array] = dict(derived or {})
        self._words: dict[str, tuple[Array, Array]] = {}
        self._masks: dict[tuple[Any, ...], Array] = {}

    def __len__(self) -> int:
        return len(self.batch)

    def column(self, name: str) -> Array:
        """A column of the batch or a derived field (role codes, booleans)."""
        if name in self._columns:
            return self._columns[name]
        if name in self.batch.kind.names:
            return self.batch[name]
        self._columns[name] = self._derive(name)
        return self._columns[name]

    def _derive(self, name: str) -> Array:
        batch, providers = self.batch, self.providers
        if name == "malformed":
            return np.asarray(batch["operation"] == int(Operation.MALFORMED))
        if name in ("maintenance", "out_of_range"):
            check = providers.maintenance if name == "maintenance" else providers.out_of_range
            if check is None:
                return np.zeros(len(batch), dtype=bool)
            return np.asarray(check(batch), dtype=bool)
        addresses = batch["src_addr" if name == "src_role" else "dst_addr"]
        if providers.roles is None:
            return np.full(len(batch), UNKNOWN_ROLE, dtype=np.uint8)
        return np.asarray(providers.roles(batch["site"], addresses), dtype=np.uint8)

    def words(self, name: str) -> tuple[Array, Array]:
        """An address column as (high, low) big-endian 64-bit words."""
        if name not in self._words:
            raw = np.ascontiguousarray(self.batch[name]).view(np.uint8).reshape(-1, 16)
            pairs = np.ascontiguousarray(raw).view(">u8").reshape(-1, 2)
            self._words[name] = (pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64))
        return self._words[name]

    def mask(self, match: Match) -> Array:
        """The records passing one test (shared between rules)."""
        key = match.key
        if key not in self._masks:
            self._masks[key] = test_mask(self, match)
        return self._masks[key]


def test_mask(view: BatchView, match: Match) -> Array:
    """The boolean mask of one field test over the view's batch."""
    field, test, values = match.field, match.test, match.values
    if field.type is FieldType.ADDRESS:
        hit = reduce(np.logical_or, (_in_network(view, field.name, net) for net in values))
        return ~hit if test == "not" else hit
    column = view.column(field.name)
    if field.type is FieldType.ROLE:
        values = tuple(ROLE_CODES[v] for v in values)
    if test in ("eq", "not"):
        hit = _any_equal(column, values)
        return ~hit if test == "not" else hit
    return _ordered(column, test, values)


def _any_equal(column: Array, values: tuple[Any, ...]) -> Array:
    if len(values) > _ISIN_ABOVE and column.dtype.kind in "iub":
        return np.isin(column, np.array(values))
    found: Array = reduce(np.logical_or, (np.asarray(column == v, dtype=bool) for v in values))
    return found


def _ordered(column: Array, test: str, values: tuple[Any, ...]) -> Array:
    if test == "range":
        return np.asarray((column >= values[0]) & (column <= values[1]))
    compare = {"gte": np.greater_equal, "gt": np.greater, "lte": np.less_equal, "lt": np.less}[test]
    return np.asarray(compare(column, values[0]))


def network_range(net: Network) -> tuple[int, int, int, int]:
    """The first and last 16-byte address of a network as (high, low) words each (IPv4 mapped)."""
    if isinstance(net, ipaddress.IPv4Network):
        first = (0xFFFF << 32) | int(net.network_address)
        last = (0xFFFF << 32) | int(net.broadcast_address)
    else:
        first, last = int(net.network_address), int(net.broadcast_address)
    return first >> 64, first & _LOW64, last >> 64, last & _LOW64


def _in_network(view: BatchView, name: str, net: Network) -> Array:
    high, low = view.words(name)
    first_high, first_low, last_high, last_low = (np.uint64(w) for w in network_range(net))
    if first_high == last_high:
        inside = (high == first_high) & (low >= first_low) & (low <= last_low)
        return np.asarray(inside)
    above = (high > first_high) | ((high == first_high) & (low >= first_low))
    below = (high < last_high) | ((high == last_high) & (low <= last_low))
    return np.asarray(above & below)


_MASK_OPS: dict[str, Callable[..., Array]] = {
    "not": np.logical_not,
    "and": np.logical_and,
    "or": np.logical_or,
}


class CompiledRule:
    """A rule's condition as a function from a `BatchView` to the mask of matching records."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.needs_maintenance = rule.severity_in_maintenance is not None or "maintenance" in rule.fields

    def mask(self, view: BatchView) -> Array:
        """The records of the view that the rule's condition selects."""
        selected: dict[str, Array] = {}

        def selection(name: str) -> Array:
            if name not in selected:
                masks = [view.mask(m) for m in self.rule.selections[name]]
                selected[name] = reduce(np.logical_and, masks) if len(masks) > 1 else masks[0]
            return selected[name]

        found: Array = evaluate(self.rule.condition, selection, _MASK_OPS)
        return found
