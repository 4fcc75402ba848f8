"""The flow table: one entry per conversation (site, segment, 5-tuple), updated a batch at a time.

A batch's packets are grouped by a 64-bit hash of their canonical 5-tuple (the lower endpoint
first) with numpy, and each group's counters (packets and bytes each way, first and last time,
TCP flags) are summed with numpy too; the Python work is per flow of the batch (find or start
the flow, add the sums), not per packet. A hash collision is detected (the full key of every
packet is compared with its group's) and that batch is grouped by the full keys instead, so no
two conversations are ever merged. Flows end after an idle timeout (shorter once TCP has closed
them), found through a heap of deadlines rather than a walk over every flow; the table never
holds more than `max_flows`, evicting the longest idle first and counting evictions.

Which side is the client is decided once, from the packets of the batch that starts the flow
(`flow_sides`): the sender of its first SYN, else the receiver of its first SYN-ACK, else (a
capture that starts in the middle of a connection, or UDP) by its ports: the server is the side
of a service port (below 1024, or one of the table's `service_ports`), else for TCP the side of
the lower port, else the sender of its first packet is the client.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from plantwarden.capture.flow_keys import CanonicalKeys, Key
from plantwarden.capture.flow_sides import WELL_KNOWN_PORTS, Openings, high_clients
from plantwarden.capture.layers.columns import PROTO_TCP
from plantwarden.core.clock import SECOND_NS

SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10
STALE_DEADLINES = 4096
"""Stale entries the deadline heap may hold beyond two per flow before it is rebuilt."""


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

    def protocol_ports(
        self, src_port: npt.NDArray[np.uint16], dst_port: npt.NDArray[np.uint16], known: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.uint16]:
        """Per packet, given the batch's port columns and the ports protocols are `known` on (a
        table of 65,536): the port that says what its conversation speaks. That is its server's
        port when known, so a client's source port never outbids it, else its client's when
        known (a device that opened the connection from its protocol's port), else a port no
        protocol is known on."""
        from_source, from_destination = known[src_port], known[dst_port]
        ports: npt.NDArray[np.uint16] = np.where(from_source, src_port, dst_port)  # a known one, if any
        both = np.flatnonzero(from_source & from_destination)  # rare: the server's, then
        ports[both] = np.where(self.from_client[both], dst_port[both], src_port[both])
        return ports


@dataclass(slots=True)
class FlowTableStats:
    """Counters of the table's life."""

    started: int = 0
    ended: int = 0
    evicted: int = 0
    collisions: int = 0


class FlowTable:
    """Flows by canonical 5-tuple; `update` a batch, `expire` what has gone idle."""

    def __init__(
        self,
        *,
        idle_timeout_s: float = 600.0,
        closed_timeout_s: float = 10.0,
        udp_timeout_s: float = 120.0,
        max_flows: int = 200_000,
        service_ports: Iterable[int] = (),
    ) -> None:
        self.idle_ns = int(idle_timeout_s * SECOND_NS)
        self.service_ports = np.zeros(1 << 16, dtype=bool)
        """Per port: whether a server listens there (below 1024, or one of `service_ports`)."""
        self.service_ports[:WELL_KNOWN_PORTS] = True
        self.service_ports[list(service_ports)] = True
        self.closed_ns = int(closed_timeout_s * SECOND_NS)
        self.udp_ns = int(udp_timeout_s * SECOND_NS)
        self.max_flows = max_flows
        self.flows: dict[int, Flow] = {}
        self.ids: dict[Key, int] = {}
        self.stats = FlowTableStats()
        self._next_id = 0
        self._ended: list[Flow] = []
        self._keys: dict[int, tuple[Key, bool]] = {}
        """Per flow id: its key, and whether its client is the key's higher endpoint."""
        self._deadlines: list[tuple[int, int]] = []
        """A heap of (time after which a flow may have expired, flow id): each flow has an entry
        no later than its true deadline; stale entries are skipped or pushed back when they come
        up, and the heap is rebuilt when they outnumber the flows (evictions leave them behind)."""

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
        key = CanonicalKeys(src_addr, dst_addr, src_port, dst_port, transport, rows)
        groups = self._groups(key)
        sums = _GroupSums(groups, ts_ns[rows], ip_length[rows], tcp_flags[rows], key.swapped)
        flow_of, high_of = self._count(key, groups, sums, tcp_flags[rows])
        flow_ids[rows] = flow_of[groups.inverse]
        from_client[rows] = key.swapped == high_of[groups.inverse]
        self._bound()
        return FlowUpdate(flow_ids, from_client)

    def _groups(self, key: CanonicalKeys) -> _Groups:
        """The batch's packets by flow: by hash, or by full key where two flows' hashes collide."""
        groups = _Groups.by_hash(key.hashes())
        same = key.equal_rows(groups.order[groups.starts][groups.inverse])
        if same.all():
            return groups
        self.stats.collisions += int(np.count_nonzero(~same))
        return _Groups.by_key(key)

    def _count(
        self, key: CanonicalKeys, groups: _Groups, sums: _GroupSums, tcp_flags: npt.NDArray[np.uint16]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Add each group's sums to its flow (started if new); per group, the flow id and whether
        its client is the higher endpoint."""
        canonical = key.keys(groups.order[groups.starts])
        self._start_new(canonical, key, groups, sums, tcp_flags)
        flow_of = [self.ids[one] for one in canonical]
        high_of = [self._keys[flow_id][1] for flow_id in flow_of]
        rows = zip(
            flow_of,
            high_of,
            sums.packets.tolist(),
            sums.high_packets.tolist(),
            sums.bytes.tolist(),
            sums.high_bytes.tolist(),
            sums.first_ns.tolist(),
            sums.last_ns.tolist(),
            sums.flags.tolist(),
            sums.fins.tolist(),
            strict=True,
        )
        for flow_id, high, packets, high_packets, size, high_size, first_ns, last_ns, flags, fins in rows:
            flow = self.flows[flow_id]
            forward_packets = high_packets if high else packets - high_packets
            forward_bytes = high_size if high else size - high_size
            flow.packets[0] += forward_packets
            flow.packets[1] += packets - forward_packets
            flow.bytes[0] += forward_bytes
            flow.bytes[1] += size - forward_bytes
            flow.last_ns = max(flow.last_ns, last_ns)
            flow.first_ns = min(flow.first_ns, first_ns)
            if flow.transport == PROTO_TCP and _tcp_state(flow, flags, fins):
                heapq.heappush(self._deadlines, (flow.last_ns + self.closed_ns, flow_id))
        return np.array(flow_of, dtype=np.int64), np.array(high_of, dtype=bool)

    def _start_new(
        self,
        canonical: list[Key],
        key: CanonicalKeys,
        groups: _Groups,
        sums: _GroupSums,
        tcp_flags: npt.NDArray[np.uint16],
    ) -> None:
        """Start a flow for each group whose key has none, in the order of their first packets."""
        new = [group for group, one in enumerate(canonical) if one not in self.ids]
        if not new:
            return
        rows = np.array(new, dtype=np.int64)
        rows = rows[np.argsort(groups.order[groups.starts[rows]])]
        new = rows.tolist()
        opened = Openings(groups.order, groups.starts, tcp_flags, key.swapped, rows)
        high_opened = high_clients(opened, self.service_ports, [canonical[group] for group in new]).tolist()
        low, high = key.addresses(groups.order[groups.starts[rows]])
        first_ns = sums.first_ns[rows].tolist()
        for index, group in enumerate(new):
            ports = canonical[group][4]
            transport, low_port, high_port = ports & 0xFF, ports >> 24, ports >> 8 & 0xFFFF
            low_end = (low[16 * index : 16 * index + 16], low_port)
            high_end = (high[16 * index : 16 * index + 16], high_port)
            (client, client_port), (server, server_port) = (
                (high_end, low_end) if high_opened[index] else (low_end, high_end)
            )
            flow_id = self._next_id
            start = first_ns[index]
            flow = Flow(client, server, client_port, server_port, transport, start, start, flow_id=flow_id)
            self._next_id += 1
            self.flows[flow_id] = flow
            self.ids[canonical[group]] = flow_id
            self._keys[flow_id] = (canonical[group], high_opened[index])
            heapq.heappush(self._deadlines, (start + self._timeout(flow), flow_id))
        self.stats.started += len(new)

    def expire(self, now_ns: int) -> list[Flow]:
        """Remove and return the flows idle past their timeout at `now_ns`, and those evicted since."""
        ended, self._ended = self._ended, []
        deadlines, due = self._deadlines, []
        while deadlines and deadlines[0][0] < now_ns:
            _, flow_id = heapq.heappop(deadlines)
            flow = self.flows.get(flow_id)
            if flow is None:  # ended already
                continue
            deadline = flow.last_ns + self._timeout(flow)
            if now_ns > deadline:
                due.append(flow_id)
            else:
                heapq.heappush(deadlines, (deadline, flow_id))
        ended += [self._remove(flow_id) for flow_id in sorted(set(due))]
        self.stats.ended += len(ended)
        return ended

    def drain(self) -> list[Flow]:
        """Remove and return every flow (the end of a capture)."""
        ended = self._ended + [self._remove(flow_id) for flow_id in list(self.flows)]
        self._ended = []
        self._deadlines.clear()
        self.stats.ended += len(ended)
        return ended

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows.values())

    def _timeout(self, flow: Flow) -> int:
        if flow.closed:
            return self.closed_ns
        return self.udp_ns if flow.transport != PROTO_TCP else self.idle_ns

    def _remove(self, flow_id: int) -> Flow:
        canonical, _ = self._keys.pop(flow_id)
        del self.ids[canonical]
        return self.flows.pop(flow_id)

    def _bound(self) -> None:
        if len(self._deadlines) > 2 * len(self.flows) + STALE_DEADLINES:
            self._deadlines = [
                (flow.last_ns + self._timeout(flow), flow.flow_id) for flow in self.flows.values()
            ]
            heapq.heapify(self._deadlines)
        excess = len(self.flows) - self.max_flows
        if excess <= 0:
            return
        oldest = sorted(self.flows, key=lambda flow_id: self.flows[flow_id].last_ns)[:excess]
        for flow_id in oldest:
            self._ended.append(self._remove(flow_id))
        self.stats.evicted += excess


def _tcp_state(flow: Flow, seen: int, fins: int) -> bool:
    """Move a TCP flow's state on by a batch's packets (`seen`: their flags OR-ed, `fins`: how
    many had FIN); whether the connection has just closed."""
    was_closed = flow.closed
    if seen & RST:
        flow.tcp_state = TcpState.RESET
        return not was_closed
    if flow.tcp_state == TcpState.NONE:
        flow.tcp_state = TcpState.SYN_SENT if seen & SYN and not seen & ACK else TcpState.ESTABLISHED
    if flow.tcp_state == TcpState.SYN_SENT and seen & ACK:
        flow.tcp_state = TcpState.ESTABLISHED
    if seen & FIN:
        flow.fins += fins
        flow.tcp_state = TcpState.CLOSED if flow.fins >= 2 else TcpState.CLOSING
    return flow.closed and not was_closed


class _Groups:
    """A batch's packets grouped by flow: `order` lists them group by group (in capture order
    within a group), group `g` being `order[starts[g]:starts[g + 1]]`; `inverse` is each packet's group."""

    def __init__(self, order: npt.NDArray[np.int64], starts: npt.NDArray[np.int64]) -> None:
        self.order, self.starts = order, starts
        self.sizes = np.diff(np.append(starts, len(order)))
        self.inverse = np.empty(len(order), dtype=np.int64)
        self.inverse[order] = np.repeat(np.arange(len(starts), dtype=np.int64), self.sizes)

    @classmethod
    def by_hash(cls, hashes: npt.NDArray[np.uint64]) -> _Groups:
        """Groups of equal hashes, in hash order; a stable sort as a plain one: each hash's low
        bits give way to the packet's index (so hashes equal but in those bits fall together,
        which the collision check sees)."""
        count = len(hashes)
        bits = np.uint64(max(count - 1, 1).bit_length())
        packed = (hashes >> bits << bits) | np.arange(count, dtype=np.uint64)
        packed.sort()
        order = (packed & ((np.uint64(1) << bits) - np.uint64(1))).astype(np.int64)
        high = packed >> bits
        starts = np.flatnonzero(np.concatenate(([True], high[1:] != high[:-1])))
        return cls(order, starts)

    @classmethod
    def by_key(cls, key: CanonicalKeys) -> _Groups:
        """Groups of equal full keys (slower: the batches where two flows' hashes collide)."""
        _, inverse = np.unique(np.column_stack(key.columns), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable").astype(np.int64)
        starts = np.flatnonzero(np.concatenate(([True], inverse[order][1:] != inverse[order][:-1])))
        return cls(order, starts)


class _GroupSums:
    """Per group of a batch: packets and bytes (all, and those sent by the higher endpoint),
    first and last time, TCP flags OR-ed and FIN count."""

    def __init__(
        self,
        groups: _Groups,
        ts_ns: npt.NDArray[np.int64],
        ip_length: npt.NDArray[np.int32],
        tcp_flags: npt.NDArray[np.uint16],
        swapped: npt.NDArray[np.bool_],
    ) -> None:
        order, starts = groups.order, groups.starts
        times, sizes, flags = ts_ns[order], ip_length[order].astype(np.int64), tcp_flags[order]
        from_high = swapped[order]
        self.packets = groups.sizes
        self.high_packets = np.add.reduceat(from_high.astype(np.int64), starts)
        self.bytes = np.add.reduceat(sizes, starts)
        self.high_bytes = np.add.reduceat(np.where(from_high, sizes, 0), starts)
        self.first_ns = np.minimum.reduceat(times, starts)
        self.last_ns = np.maximum.reduceat(times, starts)
        self.flags = np.bitwise_or.reduceat(flags, starts)
        self.fins = np.add.reduceat((flags & FIN != 0).astype(np.int64), starts)
