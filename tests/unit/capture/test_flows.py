"""The flow table on hand-made packets: grouping, direction, counters, TCP state, timeouts, bounds."""

from __future__ import annotations

import numpy as np
import pytest

from plantwarden.capture.flows import ACK, FIN, RST, SYN, Flow, FlowTable, TcpState
from plantwarden.core.records.schema import address

HMI, PLC, OTHER = address("127.10.1.10"), address("127.10.2.11"), address("10.0.0.255")
S = 1_000_000_000


def feed(
    table: FlowTable, packets: list[tuple[int, bytes, bytes, int, int, int, int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Packets as (ts, src, dst, sport, dport, transport, ip length, tcp flags)."""
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
        np.ones(len(packets), dtype=bool),
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


def test_a_flow_seen_from_the_middle_takes_its_first_sender_as_client() -> None:
    table = FlowTable()
    feed(table, handshake(0)[4:] + handshake(0)[3:4])
    assert only(table).client == PLC  # no SYN seen: the first packet's sender


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
