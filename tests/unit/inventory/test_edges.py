"""Communication edges and request statistics: hand-built records with known periods and answer
times, the read-aggregate path, batching that changes nothing, and the simulated plant against
its generator's ledger and behaviour."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.capture.pcap import read_capture
from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.policy import apply_policy
from plantwarden.core.records.schema import (
    FLOWS,
    PROTOCOL_RECORDS,
    TELEMETRY,
    Operation,
    Protocol,
    address,
)
from plantwarden.inventory.edges import EdgeBook, FunctionStatistics
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.sensor import Sensor, SensorOptions
from plantwarden.sim.behaviour import HISTORIAN_PERIOD, HMI_POLL_PERIOD, TELEMETRY_PERIOD
from plantwarden.sim.plant import default_plant
from plantwarden.sim.traffic.generator import generate
from plantwarden.sim.traffic.run import PLC_DELAY
from tests.functional.test_sensor_protocol_records import Kept

MS = 1_000_000
S = 1_000_000_000
T0 = 1_767_600_000 * S
HMI, PLC, OTHER_PLC = "10.0.0.9", "10.0.0.10", "10.0.1.5"
READ_HOLDING = 3


def records(rows: list[dict[str, Any]]) -> RecordBatch:
    """A protocol-record batch; each row names what differs from a Modbus read HMI -> PLC."""
    base: dict[str, Any] = {
        "site": "riverside",
        "segment": "cell-a",
        "src_addr": HMI,
        "dst_addr": PLC,
        "src_port": 40000,
        "dst_port": 502,
        "transport": 6,
        "protocol": Protocol.MODBUS,
        "operation": Operation.READ,
        "function": READ_HOLDING,
        "unit": 1,
        "address": 0,
        "quantity": 10,
        "status": 0,
        "value": float("nan"),
        "response_ns": 3 * MS,
    }
    full = [base | row for row in rows]
    columns = {name: [row[name] for row in full] for name in PROTOCOL_RECORDS.names}
    columns["src_addr"] = [address(text) for text in columns["src_addr"]]
    columns["dst_addr"] = [address(text) for text in columns["dst_addr"]]
    return RecordBatch.build(PROTOCOL_RECORDS, columns, length=len(full))


def polling(count: int, period_ns: int, **fields: Any) -> list[dict[str, Any]]:
    return [{"ts": T0 + index * period_ns, **fields} for index in range(count)]


def only(book: EdgeBook, function: int = READ_HOLDING) -> FunctionStatistics:
    found = [stats for stats in book.statistics() if stats.function == function]
    assert len(found) == 1
    return found[0]


def test_a_client_polling_every_250_ms_with_3_ms_answers() -> None:
    rows = polling(240, 250 * MS, address=0) + polling(240, 250 * MS, address=100)
    for index in range(0, 240, 20):  # 12 exceptions and 6 unanswered among the 480
        rows[index] |= {"status": 2, "response_ns": 1 * MS}
    for index in range(250, 480, 40):
        rows[index] |= {"status": -1, "response_ns": -1}
    book = EdgeBook()
    book.add(records(rows))
    stats = only(book)
    assert (stats.client, stats.server, stats.protocol) == (HMI, PLC, Protocol.MODBUS)
    assert (stats.requests, stats.detailed, stats.exceptions, stats.unanswered) == (480, 480, 12, 6)
    assert stats.exception_rate == pytest.approx(12 / 480)
    assert stats.unanswered_rate == pytest.approx(6 / 480)
    assert stats.error_rate == pytest.approx(18 / 480)
    assert stats.responses == 474  # exceptions are answers too
    assert stats.response_median_ns == 3 * MS
    assert stats.response_p95_ns == 3 * MS
    assert stats.period_ns == 250 * MS  # two items, interleaved in time: each keeps its period
    assert stats.intervals == 2 * 239


def test_response_time_quantiles_are_nearest_rank() -> None:
    rows = [{"ts": T0 + index * S, "response_ns": (20 - index) * MS} for index in range(20)]
    stats = only(_book(records(rows)))
    assert (stats.response_median_ns, stats.response_p95_ns) == (10 * MS, 19 * MS)


def test_the_period_is_the_median_interval_of_each_item_not_of_the_function() -> None:
    fast = polling(21, 100 * MS, address=0)
    slow = polling(5, 1 * S, address=50, quantity=2)
    jittered = [{"ts": T0 + 5 * S + offset * MS, "address": 7} for offset in (0, 100, 205, 300, 400)]
    stats = only(_book(records(fast + slow + jittered)))
    assert stats.intervals == 20 + 4 + 4
    assert stats.period_ns == 100 * MS  # 20 fast intervals outweigh the slow ones
    assert only(_book(records(jittered))).period_ns == 100 * MS  # 100, 105, 95, 100: lower median


def test_no_period_and_no_response_time_without_the_data() -> None:
    stats = only(_book(records([{"ts": T0, "status": -1, "response_ns": -1}])))
    assert (stats.period_ns, stats.response_median_ns, stats.response_p95_ns) == (None, None, None)
    assert (stats.responses, stats.intervals, stats.unanswered_rate) == (0, 0.0, 1.0)


def test_one_way_requests_are_requests_but_never_unanswered() -> None:
    rows = polling(20, S)
    for index in range(10):  # status -2: no answer expected (an MQTT QoS 0 PUBLISH, ...)
        rows[index] |= {"status": -2, "response_ns": -1}
    rows[10] |= {"status": -1, "response_ns": -1}
    rows[11] |= {"status": -1, "response_ns": -1}
    rows[12] |= {"status": 2}
    stats = only(_book(records(rows)))
    assert (stats.requests, stats.detailed, stats.one_way, stats.awaiting_answers) == (20, 20, 10, 10)
    assert (stats.unanswered, stats.exceptions, stats.responses) == (2, 1, 8)
    assert stats.unanswered_rate == pytest.approx(2 / 10)  # of the requests that expected an answer
    assert stats.exception_rate == pytest.approx(1 / 10)
    assert stats.error_rate == pytest.approx(3 / 10)
    assert (stats.period_ns, stats.intervals) == (S, 19)  # they are polled requests all the same
    silent = only(_book(records(rows[:10])))
    assert (silent.one_way, silent.unanswered, silent.error_rate) == (10, 0, 0.0)
    assert (silent.unanswered_rate, silent.exception_rate, silent.response_median_ns) == (None, None, None)
    aggregated = only(_book(*apply_policy(records(rows))))  # the storage policy: no error either
    assert (aggregated.aggregated_errors, aggregated.one_way, aggregated.error_rate) == (3, 0, 3 / 20)


def test_edges_carry_operations_counts_and_times_sorted_by_address() -> None:
    rows = [
        *polling(4, S),
        {"ts": T0 + 10 * S, "operation": Operation.WRITE, "function": 6},
        {"ts": T0 - 5 * S, "dst_addr": OTHER_PLC},
        {"ts": T0 + 2 * S, "src_addr": PLC, "dst_addr": OTHER_PLC, "protocol": Protocol.S7COMM},
    ]
    edges = _book(records(rows)).edges()
    assert [(e.client, e.server) for e in edges] == [(HMI, PLC), (HMI, OTHER_PLC), (PLC, OTHER_PLC)]
    first = edges[0]
    assert first.operations == {"READ", "WRITE"}
    assert (first.requests, first.first_ns, first.last_ns) == (5, T0, T0 + 10 * S)
    assert (first.flows, first.packets, first.bytes, first.services) == (0, 0, 0, ((6, 502),))
    assert edges[2].protocol is Protocol.S7COMM


def test_flows_make_edges_without_requests_and_add_to_those_with() -> None:
    book = EdgeBook()
    book.add(records(polling(3, S)))
    book.add(_flows([(HMI, PLC, 6, 502, Protocol.MODBUS, 40, 4000), (HMI, "10.0.0.53", 17, 53, 0, 2, 150)]))
    book.add(_flows([(HMI, PLC, 6, 502, Protocol.MODBUS, 10, 900)]))
    dns, modbus = sorted(book.edges(), key=lambda e: e.protocol)
    assert (dns.protocol, dns.operations, dns.requests, dns.services) == (
        Protocol.UNKNOWN,
        frozenset(),
        0,
        ((17, 53),),
    )
    assert (dns.flows, dns.packets, dns.bytes) == (1, 2, 150)
    assert (modbus.requests, modbus.flows, modbus.packets, modbus.bytes) == (3, 2, 50, 4900)
    assert (modbus.first_ns, modbus.last_ns) == (T0 - S, T0 + 2 * S)
    assert book.statistics()[0].requests == 3  # flows add no request statistics


def test_reads_kept_as_minute_aggregates_give_counts_and_periods_but_no_response_times() -> None:
    rows = polling(960, 250 * MS, address=0)  # four minutes
    for index in range(0, 960, 96):
        rows[index] |= {"status": 2}
    for index in range(48, 960, 192):
        rows[index] |= {"status": -1, "response_ns": -1}
    raw = only(_book(records(rows)))
    aggregated = only(_book(*apply_policy(records(rows))))
    assert (aggregated.requests, aggregated.detailed, aggregated.aggregated_errors) == (960, 0, 15)
    assert (aggregated.exceptions, aggregated.unanswered) == (0, 0)
    assert aggregated.error_rate == raw.error_rate == pytest.approx(15 / 960)
    assert (aggregated.exception_rate, aggregated.response_median_ns, aggregated.responses) == (None, None, 0)
    assert aggregated.period_ns == raw.period_ns == 250 * MS
    assert aggregated.intervals == raw.intervals == 959  # 4 x 239 within minutes, 3 across
    [edge] = _book(*apply_policy(records(rows))).edges()
    assert (edge.operations, edge.requests, edge.first_ns, edge.last_ns) == (
        frozenset({"READ"}),
        960,
        T0,
        T0 + 959 * 250 * MS,
    )


def test_polling_slower_than_a_minute_is_measured_across_minute_rows() -> None:
    rows = polling(6, 90 * S)
    assert only(_book(*apply_policy(records(rows)))).period_ns == 90 * S


def test_aggregates_of_one_minute_from_several_batches_are_merged() -> None:
    rows = polling(240, 250 * MS)  # one minute, stored by two writers taking turns
    book = _book(*(part for cut in (rows[::2], rows[1::2]) for part in apply_policy(records(cut))))
    stats = only(book)
    assert (stats.requests, stats.period_ns, stats.intervals) == (240, 250 * MS, 239)


def test_other_record_kinds_are_refused_and_empty_batches_ignored() -> None:
    book = EdgeBook()
    book.add(RecordBatch.empty(PROTOCOL_RECORDS))
    assert (book.edges(), book.statistics()) == ([], [])
    with pytest.raises(InvalidInput):
        book.add(_telemetry())


RANDOM_ROW = st.fixed_dictionaries(
    {
        "ts": st.integers(0, 400).map(lambda tick: T0 + tick * 250 * MS),
        "src_addr": st.sampled_from((HMI, PLC)),
        "dst_addr": st.sampled_from((PLC, OTHER_PLC)),
        "protocol": st.sampled_from((Protocol.MODBUS, Protocol.DNP3)),
        "operation": st.sampled_from((Operation.READ, Operation.READ, Operation.WRITE)),
        "function": st.sampled_from((3, 4)),
        "address": st.sampled_from((0, 10)),
        "status": st.sampled_from((0, 0, 0, 2, -1, -2)),
        "response_ns": st.integers(0, 20).map(lambda ms: ms * MS),
    }
)


@st.composite
def batched(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Rows, and the same rows cut into batches that come in any order."""
    rows = draw(st.lists(RANDOM_ROW.map(_unanswered_without_delay), min_size=1, max_size=60))
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=5)))
    pieces = [rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True) if b > a]
    return rows, draw(st.permutations(pieces))


@settings(max_examples=150, deadline=None)
@given(batched())
def test_adding_batch_by_batch_equals_adding_everything_at_once(drawn: Any) -> None:
    rows, pieces = drawn
    whole = _book(records(rows))
    cut = _book(*(records(piece) for piece in pieces))
    assert cut.edges() == whole.edges()
    assert cut.statistics() == whole.statistics()
    stored_whole = _book(*apply_policy(records(rows)))  # the stored form, aggregated per batch
    stored_cut = _book(*(part for piece in pieces for part in apply_policy(records(piece))))
    assert stored_cut.edges() == stored_whole.edges()
    assert stored_cut.statistics() == stored_whole.statistics()


@pytest.fixture(scope="module")
def plant_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[RecordBatch]]:
    """The simulated plant (20,000 packets) through the sensor: its ledger and its record batches."""
    generated = generate(tmp_path_factory.mktemp("plant") / "plant.pcap", seed=11, packets=20_000)
    kept = Kept()
    sensor = Sensor(SensorOptions(site="riverside"), kept, protocols=tuple(PROTOCOLS.values()))
    for batch in read_capture(generated.capture, batch_size=256):
        sensor.process(batch)
    sensor.finish()
    return json.loads(Path(generated.ledger_path).read_text(encoding="utf-8")), kept.batches


def test_the_plant_s_edges_are_its_polling_and_telemetry_links(plant_capture: Any) -> None:
    ledger, batches = plant_capture
    book = _book(*batches)
    names = {host.address: host.name for host in default_plant().hosts}
    plcs = {plc.name for plc in default_plant().plcs}
    industrial = {
        (names[e.client], names[e.server], e.protocol)
        for e in book.edges()
        if e.protocol is not Protocol.UNKNOWN
    }
    pollers = {(poller, plc, Protocol.MODBUS) for poller in ("hmi-1", "historian-1") for plc in plcs}
    publishers = {(plc, "broker-1", Protocol.MQTT) for plc in plcs}
    engineering = industrial - pollers - publishers
    assert pollers | publishers <= industrial
    assert engineering and {(client, protocol) for client, _, protocol in engineering} == {
        ("eng-ws-1", Protocol.MODBUS)
    }
    # The ledger counts what the generator wrote: connections per protocol, Modbus PDUs by function.
    flows: Counter[str] = Counter()
    for edge in book.edges():
        flows[edge.protocol.name.lower()] += edge.flows
    assert {name: flows[name] for name in ("modbus", "mqtt")} == {
        name: ledger["flows"][name] for name in ("modbus", "mqtt")
    }
    # The devices publish telemetry at QoS 0: one-way requests, none of them unanswered.
    publishes = [s for s in book.statistics() if s.protocol is Protocol.MQTT and s.function == 3]
    assert publishes and sum(s.requests for s in publishes) > 0
    for stats in publishes:
        assert (stats.one_way, stats.unanswered, stats.unanswered_rate) == (stats.requests, 0, None)
        assert stats.error_rate == 0.0
    modbus = [s for s in book.statistics() if s.protocol is Protocol.MODBUS]
    written = {int(code): kinds for code, kinds in ledger["modbus_function_codes"].items()}
    for code, kinds in written.items():
        mine = [s for s in modbus if s.function == code]
        assert sum(s.requests for s in mine) == kinds["request"]
        assert sum(s.exceptions for s in mine) == kinds.get("exception", 0)
        assert sum(s.responses for s in mine) == kinds.get("response", 0) + kinds.get("exception", 0)


def test_the_plant_s_polling_periods_and_response_times_match_the_simulator(plant_capture: Any) -> None:
    """The ledger carries no periods or delays: they come from the simulator's behaviour (HMI
    every second, historian every five, telemetry every ten, PLCs answering in 2-12 ms)."""
    _, batches = plant_capture
    names = {host.address: host.name for host in default_plant().hosts}
    expected = {"hmi-1": HMI_POLL_PERIOD, "historian-1": HISTORIAN_PERIOD}
    stored = [part for batch in batches for part in apply_policy(batch)]
    for book in (_book(*batches), _book(*stored)):  # raw records, then as the records plane keeps them
        checked = 0
        for stats in book.statistics():
            client = names[stats.client]
            period = expected.get(client) if stats.protocol is Protocol.MODBUS else None
            if stats.protocol is Protocol.MQTT and stats.function == 3:  # PUBLISH
                period = TELEMETRY_PERIOD
            if period is not None:
                assert stats.period_ns == pytest.approx(period * S, rel=0.05), stats
                checked += 1
        assert checked == 6 * 4 + 6 + 6  # the HMI's four functions per PLC, historian, telemetry
    polled = [s for s in _book(*batches).statistics() if names[s.client] in expected]
    low, high = (bound * S for bound in PLC_DELAY)
    medians = sorted(s.response_median_ns for s in polled if s.response_median_ns is not None)
    # One function's ~80-400 answers scatter its median by several percent; their median does not.
    assert medians[len(medians) // 2] == pytest.approx((low + high) / 2, rel=0.05)
    p95 = low + 0.95 * (high - low)
    tails = sorted(s.response_p95_ns for s in polled if s.response_p95_ns is not None)
    assert tails[len(tails) // 2] == pytest.approx(p95, rel=0.05)
    for stats in polled:  # the HMI's functions, ~400 answers each (the historian's 80 can miss by 7 %)
        if stats.responses >= 300:
            assert stats.response_p95_ns == pytest.approx(p95, rel=0.05)


def _unanswered_without_delay(row: dict[str, Any]) -> dict[str, Any]:
    return row | {"response_ns": -1} if row["status"] < 0 else row


def _book(*batches: RecordBatch) -> EdgeBook:
    book = EdgeBook()
    book.add_many(batches)
    return book


def _flows(rows: list[tuple[str, str, int, int, int, int, int]]) -> RecordBatch:
    columns = {
        "ts": T0 - S,
        "ts_end": T0 + S,
        "site": "riverside",
        "segment": "cell-a",
        "src_addr": [address(row[0]) for row in rows],
        "dst_addr": [address(row[1]) for row in rows],
        "src_port": 40000,
        "transport": [row[2] for row in rows],
        "dst_port": [row[3] for row in rows],
        "protocol": [row[4] for row in rows],
        "packets": [row[5] for row in rows],
        "bytes": [row[6] for row in rows],
    }
    return RecordBatch.build(FLOWS, columns, length=len(rows))


def _telemetry() -> RecordBatch:
    columns = {
        "ts": T0,
        "site": "riverside",
        "device": "tank-1",
        "variable": "level",
        "value": 1.0,
        "quality": 0,
    }
    return RecordBatch.build(TELEMETRY, columns, length=1)
