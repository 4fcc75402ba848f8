"""The flow table: one entry per conversation (site, segment, 5-tuple), updated a batch at a time.

A batch's packets are grouped by a 64-bit hash of their canonical 5-tuple (the lower endpoint
first) with numpy; the Python work is per flow of the batch, not per packet. A hash collision is
detected (the full key of every packet is compared with its group's) and the colliding packets
are handled apart, so no two conversations are ever merged. The client of a flow is the sender
of its first SYN without ACK, or else of its first packet. Flows end after an idle timeout
(shorter once TCP has closed them); the table never holds more than `max_flows`, evicting the
longest idle first and counting evictions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10
SECOND_NS = 1_000_000_000
MIX = (
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xC2B2AE3D27D4EB4F),
    np.uint64(0x165667B19E3779F9),
    np.uint64(0xD6E8FEB86659FD93),
    np.uint64(0xFF51AFD7ED558CCD),
)


class TcpState:
    """What the flow table knows of a TCP connection (other transports stay NONE)."""

    NONE = 0
    SYN_SENT = 1
    ESTABLISHED = 2
    CLOSING = 3
    CLOSED = 4
    RESET = 5
    NAMES = ("none", "syn_sent", "established", "closing", "closed", "reset")


@dataclass(slots=True)
class Flow:
    """One conversation: its endpoints (client first), counters each way, times and TCP state."""

    client: bytes
    server: bytes
    client_port: int
    server_port: int
    transport: int
    first_ns: int
    last_ns: int
    packets: list[int] = field(default_factory=lambda: [0, 0])
    bytes: list[int] = field(default_factory=lambda: [0, 0])
    tcp_state: int = TcpState.NONE
    fins: int = 0
    flow_id: int = -1

    @property
    def closed(self) -> bool:
        """Whether TCP has closed the connection (both FINs, or a reset)."""
        return self.tcp_state in (TcpState.CLOSED, TcpState.RESET)


@dataclass(frozen=True, slots=True)
class FlowUpdate:
    """Per packet of a batch: its flow's id (-1 if it has none) and whether it goes client to server."""

    flow_ids: npt.NDArray[np.int64]
    from_client: npt.NDArray[np.bool_]


@dataclass(slots=True)
class FlowTableStats:
    """Counters of the table's life."""

    started: int = 0
    ended: int = 0
    evicted: int = 0
    collisions: int = 0


Key = tuple[bytes, bytes, int, int, int]


class FlowTable:
    """Flows by canonical 5-tuple; `update` a batch, `expire` what has gone idle."""

    def __init__(
        self,
        *,
        idle_timeout_s: float = 600.0,
        closed_timeout_s: float = 10.0,
        udp_timeout_s: float = 120.0,
        max_flows: int = 200_000,
    ) -> None:
        self.idle_ns = int(idle_timeout_s * SECOND_NS)
        self.closed_ns = int(closed_timeout_s * SECOND_NS)
        self.udp_ns = int(udp_timeout_s * SECOND_NS)
        self.max_flows = max_flows
        self.flows: dict[int, Flow] = {}
        self.ids: dict[Key, int] = {}
        self.stats = FlowTableStats()
        self._next_id = 0
        self._ended: list[Flow] = []

    def __len__(self) -> int:
        return len(self.flows)

    def update(
        self,
        ts_ns: npt.NDArray[np.int64],
        src_addr: npt.NDArray[np.bytes_],
        dst_addr: npt.NDArray[np.bytes_],
        src_port: npt.NDArray[np.uint16],
        dst_port: npt.NDArray[np.uint16],
        transport: npt.NDArray[np.uint8],
        ip_length: npt.NDArray[np.int32],
        tcp_flags: npt.NDArray[np.uint16],
        valid: npt.NDArray[np.bool_],
    ) -> FlowUpdate:
        """Count a batch's packets (those `valid`) into their flows; each packet's flow and direction."""
        count = len(ts_ns)
        flow_ids = np.full(count, -1, dtype=np.int64)
        from_client = np.zeros(count, dtype=bool)
        rows = np.flatnonzero(valid)
        if len(rows) == 0:
            return FlowUpdate(flow_ids, from_client)
        key = _CanonicalKeys(src_addr[rows], dst_addr[rows], src_port[rows], dst_port[rows], transport[rows])
        groups, inverse = np.unique(key.hashes(), return_inverse=True)
        first = np.zeros(len(groups), dtype=np.int64)
        first[inverse[::-1]] = np.arange(len(rows) - 1, -1, -1)  # each group's first packet
        same = key.equal_rows(first[inverse])
        columns = _Columns(ts_ns[rows], ip_length[rows], tcp_flags[rows], key.swapped)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(groups) + 1))
        for group in range(len(groups)):
            members = order[bounds[group] : bounds[group + 1]]
            self._group(members[same[members]], key, columns, rows, flow_ids, from_client)
        for index in np.flatnonzero(~same):  # hash collisions: rare, packet by packet
            self.stats.collisions += 1
            self._group(np.array([index]), key, columns, rows, flow_ids, from_client)
        self._bound()
        return FlowUpdate(flow_ids, from_client)

    def _group(
        self,
        members: npt.NDArray[np.int64],
        key: _CanonicalKeys,
        columns: _Columns,
        rows: npt.NDArray[np.int64],
        flow_ids: npt.NDArray[np.int64],
        from_client: npt.NDArray[np.bool_],
    ) -> None:
        """Count one flow's packets of the batch (`members`, indexes into `rows`)."""
        if len(members) == 0:
            return
        canonical = key.key(int(members[0]))
        flow_id, flow = self._flow(canonical, columns, members)
        client_is_high = flow.client != canonical[0]
        forward = columns.swapped[members] == client_is_high
        flow_ids[rows[members]] = flow_id
        from_client[rows[members]] = forward
        _count(flow, columns, members, forward)

    def _flow(self, canonical: Key, columns: _Columns, members: npt.NDArray[np.int64]) -> tuple[int, Flow]:
        flow_id = self.ids.get(canonical)
        if flow_id is not None:
            return flow_id, self.flows[flow_id]
        opener = _opener(columns, members)
        swapped = bool(columns.swapped[opener])
        low, high, low_port, high_port, transport = canonical
        client, server = (high, low) if swapped else (low, high)
        ports = (high_port, low_port) if swapped else (low_port, high_port)
        first_ns = int(columns.ts_ns[members].min())
        flow_id = self._next_id
        flow = Flow(client, server, ports[0], ports[1], transport, first_ns, first_ns, flow_id=flow_id)
        self._next_id += 1
        self.flows[flow_id] = flow
        self.ids[canonical] = flow_id
        self.stats.started += 1
        return flow_id, flow

    def expire(self, now_ns: int) -> list[Flow]:
        """Remove and return the flows idle past their timeout at `now_ns`, and those evicted since."""
        ended, self._ended = self._ended, []
        for flow_id, flow in list(self.flows.items()):
            if now_ns - flow.last_ns > self._timeout(flow):
                ended.append(self._remove(flow_id))
        self.stats.ended += len(ended)
        return ended

    def drain(self) -> list[Flow]:
        """Remove and return every flow (the end of a capture)."""
        ended = self._ended + [self._remove(flow_id) for flow_id in list(self.flows)]
        self._ended = []
        self.stats.ended += len(ended)
        return ended

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows.values())

    def _timeout(self, flow: Flow) -> int:
        if flow.closed:
            return self.closed_ns
        return self.udp_ns if flow.transport != 6 else self.idle_ns

    def _remove(self, flow_id: int) -> Flow:
        flow = self.flows.pop(flow_id)
        del self.ids[_flow_key(flow)]
        return flow

    def _bound(self) -> None:
        excess = len(self.flows) - self.max_flows
        if excess <= 0:
            return
        oldest = sorted(self.flows, key=lambda flow_id: self.flows[flow_id].last_ns)[:excess]
        for flow_id in oldest:
            self._ended.append(self._remove(flow_id))
        self.stats.evicted += excess


def _flow_key(flow: Flow) -> Key:
    if (flow.client, flow.client_port) <= (flow.server, flow.server_port):
        return (flow.client, flow.server, flow.client_port, flow.server_port, flow.transport)
    return (flow.server, flow.client, flow.server_port, flow.client_port, flow.transport)


@dataclass(frozen=True, slots=True)
class _Columns:
    ts_ns: npt.NDArray[np.int64]
    ip_length: npt.NDArray[np.int32]
    tcp_flags: npt.NDArray[np.uint16]
    swapped: npt.NDArray[np.bool_]


def _opener(columns: _Columns, members: npt.NDArray[np.int64]) -> int:
    """The packet that opened the flow: its first SYN without ACK, else its first packet."""
    flags = columns.tcp_flags[members]
    syns = np.flatnonzero((flags & SYN != 0) & (flags & ACK == 0))
    return int(members[syns[0]] if len(syns) else members[0])


def _count(
    flow: Flow, columns: _Columns, members: npt.NDArray[np.int64], forward: npt.NDArray[np.bool_]
) -> None:
    sizes = columns.ip_length[members]
    forward_count = int(forward.sum())
    flow.packets[0] += forward_count
    flow.packets[1] += len(members) - forward_count
    flow.bytes[0] += int(sizes[forward].sum())
    flow.bytes[1] += int(sizes[~forward].sum())
    flow.last_ns = max(flow.last_ns, int(columns.ts_ns[members].max()))
    flow.first_ns = min(flow.first_ns, int(columns.ts_ns[members].min()))
    if flow.transport == 6:
        _tcp_state(flow, columns.tcp_flags[members])


def _tcp_state(flow: Flow, flags: npt.NDArray[np.uint16]) -> None:
    seen = int(np.bitwise_or.reduce(flags)) if len(flags) else 0
    if seen & RST:
        flow.tcp_state = TcpState.RESET
        return
    if flow.tcp_state == TcpState.NONE:
        flow.tcp_state = TcpState.SYN_SENT if seen & SYN and not seen & ACK else TcpState.ESTABLISHED
    if flow.tcp_state == TcpState.SYN_SENT and seen & ACK:
        flow.tcp_state = TcpState.ESTABLISHED
    if seen & FIN:
        flow.fins += int(np.count_nonzero(flags & FIN))
        flow.tcp_state = TcpState.CLOSED if flow.fins >= 2 else TcpState.CLOSING


class _CanonicalKeys:
    """The canonical (lower endpoint first) 5-tuples of some packets, and their 64-bit hashes."""

    def __init__(
        self,
        src: npt.NDArray[np.bytes_],
        dst: npt.NDArray[np.bytes_],
        src_port: npt.NDArray[np.uint16],
        dst_port: npt.NDArray[np.uint16],
        transport: npt.NDArray[np.uint8],
    ) -> None:
        src_words = src.view(">u8").reshape(-1, 2)
        dst_words = dst.view(">u8").reshape(-1, 2)
        src_key = (src_words[:, 0], src_words[:, 1], src_port.astype(np.uint64))
        dst_key = (dst_words[:, 0], dst_words[:, 1], dst_port.astype(np.uint64))
        self.swapped = _greater(src_key, dst_key)
        self.low = np.where(self.swapped, dst, src)
        self.high = np.where(self.swapped, src, dst)
        self.low_port = np.where(self.swapped, dst_port, src_port)
        self.high_port = np.where(self.swapped, src_port, dst_port)
        self.transport = transport

    def hashes(self) -> npt.NDArray[np.uint64]:
        low = self.low.view(">u8").reshape(-1, 2).astype(np.uint64)
        high = self.high.view(">u8").reshape(-1, 2).astype(np.uint64)
        ports = (self.low_port.astype(np.uint64) << np.uint64(24)) | (
            self.high_port.astype(np.uint64) << np.uint64(8)
        )
        ports |= self.transport.astype(np.uint64)
        with np.errstate(over="ignore"):
            mixed = low[:, 0] * MIX[0] ^ low[:, 1] * MIX[1] ^ high[:, 0] * MIX[2] ^ high[:, 1] * MIX[3]
            mixed ^= ports * MIX[4]
            mixed ^= mixed >> np.uint64(31)
        hashed: npt.NDArray[np.uint64] = mixed
        return hashed

    def equal_rows(self, other: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Whether each packet's full key equals that of packet `other[i]` (collision check)."""
        equal: npt.NDArray[np.bool_] = (
            (self.low == self.low[other])
            & (self.high == self.high[other])
            & (self.low_port == self.low_port[other])
            & (self.high_port == self.high_port[other])
            & (self.transport == self.transport[other])
        )
        return equal

    def key(self, index: int) -> Key:
        """The canonical 5-tuple of packet `index`."""
        # numpy drops trailing NUL bytes of an S16 item: pad them back.
        return (
            bytes(self.low[index]).ljust(16, b"\0"),
            bytes(self.high[index]).ljust(16, b"\0"),
            int(self.low_port[index]),
            int(self.high_port[index]),
            int(self.transport[index]),
        )


def _greater(
    left: tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.uint64]],
    right: tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.uint64]],
) -> npt.NDArray[np.bool_]:
    """Element-wise lexicographic `left > right` over three columns."""
    greater = np.zeros(len(left[0]), dtype=bool)
    decided = np.zeros(len(left[0]), dtype=bool)
    for a, b in zip(left, right, strict=True):
        greater |= ~decided & (a > b)
        decided |= a != b
    return greater
