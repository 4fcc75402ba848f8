"""Which path a CIP connection was opened to, so that connected messages resolve to it.

A connected message (SendUnitData, class 1 I/O) names only a connection id. The Forward_Open
request carries the connection path and the T->O id the originator chose; its reply carries the
O->T id the target chose; both carry the connection triad (serial, vendor, originator serial),
which the Forward_Close names. The tracker is state over a conversation, so it lives with the
caller of the exact path (one tracker per pair of hosts): the stateless decoders and the column
extractor do not use it, and a record's `Summary` never depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plantwarden.protocols.enip.cip import CipMessage, CipPath
from plantwarden.protocols.enip.messages import EnipMessage

Triad = tuple[int, int, int]
MAX_CONNECTIONS = 4096
"""Open and pending connections kept; the oldest are forgotten beyond it."""


@dataclass(slots=True)
class ConnectionTracker:
    """Connection ids to the connection path they were opened to."""

    pending: dict[Triad, CipPath] = field(default_factory=dict)
    """Forward_Open requests not answered yet: their connection path."""
    opened: dict[Triad, tuple[int, int]] = field(default_factory=dict)
    """Open connections: their O->T and T->O ids."""
    paths: dict[int, CipPath] = field(default_factory=dict)

    def observe(self, message: EnipMessage) -> None:
        """Learn from one message (a Forward_Open, its reply, a Forward_Close; the rest pass)."""
        if message.cip is not None:
            for cip in message.cip.chain():
                self._observe(cip)

    def resolve(self, message: EnipMessage) -> CipPath | None:
        """The connection path of a connected message's connection (None when unknown)."""
        return self.paths.get(message.connection_id) if message.connection_id >= 0 else None

    def opened_path(self, triad: Triad) -> CipPath | None:
        """The path of the open connection named by `triad` (what a Forward_Close closes)."""
        ids = self.opened.get(triad)
        return None if ids is None else self.paths.get(ids[0])

    def target(self, message: EnipMessage) -> str:
        """The text of that path ("" when unknown): what a connected message is about."""
        path = self.resolve(message)
        return "" if path is None else path.text()

    def _observe(self, cip: CipMessage) -> None:
        connection = cip.connection
        if connection is None:
            return
        triad = connection.triad
        if not cip.is_response and connection.kind in ("forward_open", "large_forward_open"):
            self.pending[triad] = connection.connection_path or CipPath()
            _bound(self.pending)
        elif cip.is_response and cip.general_status == 0 and triad in self.pending:
            path = self.pending.pop(triad)
            self.opened[triad] = (connection.o_t_connection_id, connection.t_o_connection_id)
            self.paths[connection.o_t_connection_id] = path
            self.paths[connection.t_o_connection_id] = path
            _bound(self.opened)
            _bound(self.paths)
        elif not cip.is_response and connection.kind == "forward_close" and triad in self.opened:
            for connection_id in self.opened.pop(triad):
                self.paths.pop(connection_id, None)


def _bound(table: dict[Any, Any]) -> None:
    while len(table) > MAX_CONNECTIONS:
        del table[next(iter(table))]
