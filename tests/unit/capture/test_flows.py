"""The flow table on hand-made packets: grouping, direction, counters, TCP state, timeouts, bounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.capture import flow_keys, flows
from plantwarden.capture.flows import ACK, FIN, RST, SYN, Flow, FlowTable, TcpState
from plantwarden.core.records.schema import address

HMI, PLC, OTHER = address("127.10.1.10"), address("127.10.2.11"), address("10.0.0.255")
S = 1_000_000_000


def feed(
    table: FlowTable,
    packets: list[tuple[int, bytes, bytes, int, int, int, int, int]],
    valid: list[bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Packets as (ts, src, dst, sport, dport, transport, ip length, tcp flags), all IP unless
    `valid` says which are."""
    columns = list(zip(*packets, strict=True))
    update = table.update(
        np.array(columns[0], dtype=np.int64),
        np.array(columns[1], dtype="S16"),
        np.array(columns[2], dtype="S16"),
        np.array(columns[3], dtype=np.uint16),
        np.array(columns[4], dtype=np.uint16),
        np.array(columns[5], dtype=np.uint8),
        np.array(columns[6], dtype=np.int32),
        np.array(columns[7], dtype=np.uint16),
        np.ones(len(packets), dtype=bool) if valid is None else np.array(valid, dtype=bool),
    )
    return update.flow_ids, update.from_client


def handshake(
    start: int, client: bytes = HMI, port: int = 50000
) -> list[tuple[int, bytes, bytes, int, int, int, int, int]]:
    return [
        (start, client, PLC, port, 502, 6, 60, SYN),
        (start + 1, PLC, client, 502, port, 6, 60, SYN | ACK),
        (start + 2, client, PLC, port, 502, 6, 52, ACK),
        (start + 3, client, PLC, port, 502, 6, 64, ACK),
        (start + 4, PLC, client, 502, port, 6, 75, ACK),
    ]


def only(table: FlowTable) -> Flow:
    (flow,) = list(table)
    return flow


def test_both_directions_are_one_flow_with_the_syn_sender_as_client() -> None:
    table = FlowTable()
    ids, forward = feed(table, handshake(10 * S))
    assert len(set(ids.tolist())) == 1 and forward.tolist() == [True, False, True, True, False]
    flow = only(table)
    assert (flow.client, flow.server, flow.client_port, flow.server_port) == (HMI, PLC, 50000, 502)
    assert flow.packets == [3, 2] and flow.bytes == [176, 135]
    assert flow.tcp_state == TcpState.ESTABLISHED and (flow.first_ns, flow.last_ns) == (10 * S, 10 * S + 4)


def test_a_flow_seen_from_the_middle_takes_the_service_port_s_side_as_server() -> None:
    table = FlowTable()
    feed(table, handshake(0)[4:] + handshake(0)[3:4])  # the PLC's answer first, no SYN
    flow = only(table)
    assert (flow.client, flow.client_port, flow.server, flow.server_port) == (HMI, 50000, PLC, 502)
    assert flow.packets == [1, 1] and flow.bytes == [64, 75]


INDUSTRIAL = 2404
"""A port the tests' tables take as a service port (IEC 104's)."""
Sent = tuple[bytes, int, bytes, int, int]
"""A packet as (source, source port, destination, destination port, TCP flags)."""
SIDE_CASES: dict[str, tuple[list[Sent], Endpoint, Endpoint | None]] = {
    # name: (packets, the client over TCP, over UDP where the case applies to UDP)
    "the SYN sender, whatever its port": ([(OTHER, 502, HMI, 40000, SYN)], (OTHER, 502), None),
    "the receiver of the SYN-ACK": (
        [(HMI, 40000, PLC, 41000, ACK), (PLC, 41000, HMI, 40000, SYN | ACK)],
        (HMI, 40000),
        None,
    ),
    "below 1024 is a server": ([(PLC, 502, HMI, 50000, ACK)], (HMI, 50000), (HMI, 50000)),
    "a known industrial port is a server": ([(PLC, INDUSTRIAL, HMI, 1500, 0)], (HMI, 1500), (HMI, 1500)),
    "two service ports: the lower is the server": (
        [(PLC, 502, HMI, INDUSTRIAL, ACK)],
        (HMI, INDUSTRIAL),
        (PLC, 502),  # UDP: the first sender
    ),
    "no service port: the lower is the server": (
        [(PLC, 40000, HMI, 41000, ACK)],
        (HMI, 41000),
        (PLC, 40000),  # UDP: the first sender
    ),
    "equal ports: the first sender": ([(PLC, 502, HMI, 502, ACK)], (PLC, 502), (PLC, 502)),
}
SIDE_RUNS = [
    (case, transport) for case in SIDE_CASES for transport in (6, 17) if transport == 6 or SIDE_CASES[case][2]
]


@pytest.mark.parametrize(("case", "transport"), SIDE_RUNS, ids=[f"{case}, {t}" for case, t in SIDE_RUNS])
def test_the_client_of_a_flow_seen_without_its_opening(case: str, transport: int) -> None:
    sent, tcp_client, udp_client = SIDE_CASES[case]
    client = tcp_client if transport == 6 else udp_client
    packets = [
        (i, src, dst, sport, dport, transport, 60, flags if transport == 6 else 0)
        for i, (src, sport, dst, dport, flags) in enumerate(sent)
    ]
    table = FlowTable(service_ports=[INDUSTRIAL])
    _, from_client = feed(table, packets)
    flow = only(table)
    assert (flow.client, flow.client_port) == client
    assert from_client.tolist() == [(src, sport) == client for src, sport, *_ in sent]


def test_only_the_ports_it_is_given_beside_the_well_known_ones_are_service_ports() -> None:
    table = FlowTable()
    feed(table, [(0, PLC, HMI, INDUSTRIAL, 1500, 6, 60, ACK)])
    assert (only(table).client, only(table).client_port) == (PLC, INDUSTRIAL)  # 1500 is the lower port


def test_batches_add_up_and_addresses_ending_in_zero_bytes_stay_whole() -> None:
    table = FlowTable()
    zero_ended = address("127.10.2.0")
    packets = handshake(0, client=zero_ended)
    first, _ = feed(table, packets[:2])
    second, forward = feed(table, packets[2:])
    assert set(first.tolist()) == set(second.tolist()) and forward.tolist() == [True, True, False]
    assert only(table).client == zero_ended and only(table).packets == [3, 2]


def test_fin_from_both_sides_closes_and_the_short_timeout_ends_it() -> None:
    table = FlowTable(idle_timeout_s=600, closed_timeout_s=10)
    feed(table, handshake(0))
    feed(
        table,
        [
            (5 * S, HMI, PLC, 50000, 502, 6, 52, FIN | ACK),
            (5 * S + 1, PLC, HMI, 502, 50000, 6, 52, FIN | ACK),
        ],
    )
    assert only(table).tcp_state == TcpState.CLOSED
    assert table.expire(14 * S) == []
    (ended,) = table.expire(16 * S)
    assert ended.packets == [4, 3] and len(table) == 0 and table.stats.ended == 1


def test_a_reset_ends_the_connection_and_idle_flows_expire() -> None:
    table = FlowTable(idle_timeout_s=60, udp_timeout_s=30)
    feed(table, [*handshake(0), (2 * S, PLC, HMI, 502, 50000, 6, 40, RST)])
    feed(table, [(0, HMI, OTHER, 53, 53, 17, 60, 0)])
    assert {flow.tcp_state for flow in table} == {TcpState.RESET, TcpState.NONE}
    assert [flow.transport for flow in table.expire(31 * S)] == [6, 17]


def test_the_table_stays_bounded_and_evicts_the_longest_idle() -> None:
    table = FlowTable(max_flows=3)
    for port in range(5):
        feed(table, [(port * S, HMI, PLC, 40000 + port, 502, 6, 60, SYN)])
    assert len(table) == 3 and table.stats.evicted == 2
    assert sorted(flow.client_port for flow in table) == [40002, 40003, 40004]
    assert sorted(flow.client_port for flow in table.expire(0)) == [40000, 40001]


@pytest.mark.parametrize("count", [1, 7, 500])
def test_many_flows_in_one_batch_are_each_counted(count: int) -> None:
    table = FlowTable()
    packets = [(i, HMI, PLC, 1024 + i, 502, 6, 60 + i, ACK) for i in range(count)] * 2
    ids, _ = feed(table, packets)
    assert len(table) == count and len(set(ids.tolist())) == count
    assert sorted(flow.bytes[0] for flow in table) == [2 * (60 + i) for i in range(count)]


Packet = tuple[int, bytes, bytes, int, int, int, int, int]
Endpoint = tuple[bytes, int]
FlowKey = tuple[Endpoint, Endpoint, int]


@dataclass
class _ReferenceFlow:
    client: Endpoint
    first_ns: int
    last_ns: int
    packets: list[int] = field(default_factory=lambda: [0, 0])
    bytes: list[int] = field(default_factory=lambda: [0, 0])
    tcp_state: int = TcpState.NONE
    fins: int = 0


class _Reference:
    """The flow table's meaning, packet by packet in plain Python (slow, obviously right)."""

    def __init__(self, idle_s: int, closed_s: int, udp_s: int, service_ports: set[int]) -> None:
        self.idle, self.closed, self.udp = idle_s * S, closed_s * S, udp_s * S
        self.service_ports = service_ports
        self.flows: dict[FlowKey, _ReferenceFlow] = {}

    def client(self, key: FlowKey, members: list[Packet]) -> Endpoint:
        """The flow's client: the SYN's sender, the SYN-ACK's receiver, the side of the port that
        is no service port, the higher TCP port, or the first packet's sender, in that order."""
        for packet in members:
            if packet[7] & (SYN | ACK) == SYN:
                return (packet[1], packet[3])
        for packet in members:
            if packet[7] & (SYN | ACK) == SYN | ACK:
                return (packet[2], packet[4])
        low, high, transport = key
        low_service, high_service = (port < 1024 or port in self.service_ports for port in (low[1], high[1]))
        if low_service != high_service:
            return high if low_service else low
        if transport == 6 and low[1] != high[1]:
            return high if low[1] < high[1] else low
        return (members[0][1], members[0][3])

    @staticmethod
    def key(packet: Packet) -> FlowKey:
        _, src, dst, sport, dport, transport, _, _ = packet
        low, high = sorted([(src, sport), (dst, dport)])
        return (low, high, transport)

    def update(self, packets: list[Packet], valid: list[bool]) -> list[tuple[FlowKey, bool] | None]:
        """Per packet: its flow's key and whether it goes client to server (None if not valid)."""
        groups: dict[FlowKey, list[Packet]] = {}
        for packet, ok in zip(packets, valid, strict=True):
            if ok:
                groups.setdefault(self.key(packet), []).append(packet)
        for key, members in groups.items():
            if key not in self.flows:
                first = min(p[0] for p in members)
                self.flows[key] = _ReferenceFlow(self.client(key, members), first, first)
            self._count(self.flows[key], key, members)
        return [
            (self.key(p), (p[1], p[3]) == self.flows[self.key(p)].client) if ok else None
            for p, ok in zip(packets, valid, strict=True)
        ]

    def _count(self, flow: _ReferenceFlow, key: FlowKey, members: list[Packet]) -> None:
        for packet in members:
            way = 0 if (packet[1], packet[3]) == flow.client else 1
            flow.packets[way] += 1
            flow.bytes[way] += packet[6]
            flow.first_ns = min(flow.first_ns, packet[0])
            flow.last_ns = max(flow.last_ns, packet[0])
        if key[2] != 6:
            return
        seen = 0
        for packet in members:
            seen |= packet[7]
        if seen & RST:
            flow.tcp_state = TcpState.RESET
            return
        if flow.tcp_state == TcpState.NONE:
            flow.tcp_state = TcpState.SYN_SENT if seen & SYN and not seen & ACK else TcpState.ESTABLISHED
        if flow.tcp_state == TcpState.SYN_SENT and seen & ACK:
            flow.tcp_state = TcpState.ESTABLISHED
        if seen & FIN:
            flow.fins += sum(1 for p in members if p[7] & FIN)
            flow.tcp_state = TcpState.CLOSED if flow.fins >= 2 else TcpState.CLOSING

    def expire(self, now: int) -> set[FlowKey]:
        ended = set()
        for key, flow in list(self.flows.items()):
            if flow.tcp_state in (TcpState.CLOSED, TcpState.RESET):
                timeout = self.closed
            else:
                timeout = self.idle if key[2] == 6 else self.udp
            if now - flow.last_ns > timeout:
                ended.add(key)
                del self.flows[key]
        return ended


def _state(flow: Flow) -> _ReferenceFlow:
    return _ReferenceFlow(
        (flow.client, flow.client_port),
        flow.first_ns,
        flow.last_ns,
        flow.packets,
        flow.bytes,
        flow.tcp_state,
        flow.fins,
    )


def _key(flow: Flow) -> FlowKey:
    low, high = sorted([(flow.client, flow.client_port), (flow.server, flow.server_port)])
    return (low, high, flow.transport)


ENDPOINTS = [
    (HMI, 50000),
    (PLC, 502),
    (OTHER, 53),
    (address("127.10.2.0"), 502),
    (HMI, 502),
    (PLC, INDUSTRIAL),
    (OTHER, 40001),
]
Draw = tuple[int, Endpoint, Endpoint, int, int, int, bool, bool]
IPV6_ENDPOINTS = [
    (address("fd00::11"), 502),
    (address("2001:db8::ffff:7f0a:10a"), 50000),  # bytes 8-11 as in ::ffff:a.b.c.d
    (address("::ffff:0:7f0a:10a"), 50000),  # the IPv4-translated prefix, not the mapped one
]


def packets(endpoints: list[Endpoint]) -> st.SearchStrategy[Draw]:
    return st.tuples(
        st.integers(0, 4_000_000_000),  # time step
        st.sampled_from(endpoints),
        st.sampled_from(endpoints),
        st.sampled_from([6, 6, 17]),
        st.integers(28, 1500),
        st.sampled_from([SYN, SYN | ACK, ACK, ACK, ACK, FIN | ACK, RST, 0]),
        st.integers(0, 9).map(lambda draw: draw == 0),  # not an IP packet (not valid)
        st.integers(0, 9).map(lambda draw: draw == 0),  # the last of its batch
    )


PACKETS = packets(ENDPOINTS)
MIXED_PACKETS = packets(ENDPOINTS + IPV6_ENDPOINTS)


def _run_against_reference(draws: list[Draw]) -> FlowTable:
    """Feed the draws to a table and to the reference, batch by batch, expiring after each."""
    table = FlowTable(idle_timeout_s=20, closed_timeout_s=3, udp_timeout_s=8, service_ports=[INDUSTRIAL])
    reference = _Reference(20, 3, 8, {INDUSTRIAL})
    batches: list[list[tuple[Packet, bool]]] = [[]]
    now = 0
    for step, (src, sport), (dst, dport), transport, length, flags, not_ip, last in draws:
        now += step
        batches[-1].append(((now, src, dst, sport, dport, transport, length, flags), not not_ip))
        if last:
            batches.append([])
    ids: dict[int, FlowKey] = {}
    for batch in batches:
        if not batch:
            continue
        packets = [packet for packet, _ in batch]
        valid = [ok for _, ok in batch]
        flow_ids, from_client = feed(table, packets, valid)
        expected = reference.update(packets, valid)
        for flow_id, forward, want in zip(flow_ids.tolist(), from_client.tolist(), expected, strict=True):
            if want is None:
                assert flow_id == -1
                continue
            assert ids.setdefault(flow_id, want[0]) == want[0] and forward == want[1]
        assert {_key(flow): _state(flow) for flow in table} == reference.flows
        assert len(table) == len(reference.flows)
        now = max(packet[0] for packet in packets)
        assert {_key(flow) for flow in table.expire(now)} == reference.expire(now)
        assert {_key(flow): _state(flow) for flow in table} == reference.flows
    return table


@settings(max_examples=150, deadline=None)
@given(st.lists(PACKETS, min_size=1, max_size=60))
def test_the_vectorised_counters_equal_a_packet_by_packet_reading(draws: list[Draw]) -> None:
    table = _run_against_reference(draws)
    assert table.stats.collisions == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(MIXED_PACKETS, min_size=1, max_size=60))
def test_ipv6_and_ipv4_in_one_batch_count_as_packet_by_packet(draws: list[Draw]) -> None:
    """Batches with any IPv6 address key flows on full addresses, IPv4-only ones on short keys:
    a flow's packets are counted together whichever kind of batch they come in."""
    table = _run_against_reference(draws)
    assert table.stats.collisions == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(MIXED_PACKETS, min_size=2, max_size=40))
def test_colliding_hashes_never_merge_two_conversations(draws: list[Draw]) -> None:
    def collide(keys: flow_keys.CanonicalKeys) -> np.ndarray:
        return np.zeros(len(keys), dtype=np.uint64)  # every flow's hash the same

    one_batch: list[Draw] = [(*draw[:7], False) for draw in draws]
    with patch.object(flow_keys.CanonicalKeys, "hashes", collide):
        table = _run_against_reference(one_batch)
    keys = {
        (*sorted([src, dst]), transport)
        for _, src, dst, transport, _, _, not_ip, _ in one_batch
        if not not_ip
    }
    assert (table.stats.collisions > 0) == (len(keys) > 1)


def test_expiry_skips_flows_that_were_seen_again_and_keeps_them_due_later() -> None:
    table = FlowTable(idle_timeout_s=10, closed_timeout_s=1)
    feed(table, [(0, HMI, PLC, 40000, 502, 6, 60, ACK), (0, HMI, PLC, 40001, 502, 6, 60, ACK)])
    feed(table, [(8 * S, HMI, PLC, 40000, 502, 6, 60, ACK)])  # the first is seen again at 8 s
    assert [flow.client_port for flow in table.expire(11 * S)] == [40001]
    assert table.expire(18 * S) == []  # due after 18 s, not at the first deadline (10 s)
    feed(table, [(19 * S, HMI, PLC, 40000, 502, 6, 60, RST)])  # closed: its deadline comes closer
    assert table.expire(20 * S) == []
    assert [flow.client_port for flow in table.expire(20 * S + 1)] == [40000]
    assert len(table) == 0 and table.stats.ended == 2


def test_evicted_flows_leave_no_unbounded_trail_of_deadlines() -> None:
    table = FlowTable(max_flows=10)
    for batch in range(100):
        feed(table, [(batch * S + i, HMI, PLC, 1024 + batch * 100 + i, 502, 6, 60, SYN) for i in range(100)])
    assert len(table) == 10 and table.stats.evicted == 9990
    assert len(table._deadlines) <= 2 * len(table) + flows.STALE_DEADLINES
    (survivor,) = [flow for flow in table if flow.client_port == 1024 + 9999]
    assert survivor in table.expire(99 * S + 601 * S)  # the rebuilt heap still expires what is left
