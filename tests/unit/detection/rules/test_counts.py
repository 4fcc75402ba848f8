"""Count rules: tumbling windows, group-by and distinct counts kept across batch boundaries."""

from __future__ import annotations

from plantwarden.detection.rules.engine import RuleEngine
from tests.unit.detection.rules.rule_support import batch, rule, second

SCAN = """\
detection:
  s: {protocol: modbus}
  condition: s
  count: {window: 60s, by: [src_addr], distinct: dst_addr, min: 3}
"""
BURST = """\
detection:
  s: {operation: malformed}
  condition: s
  count: {window: 10s, min: 4}
"""


def hits(src: str, dsts: list[str], t: float, step: float = 1.0) -> list[dict[str, object]]:
    return [
        {"protocol": "modbus", "src_addr": src, "dst_addr": d, "ts": second(t + i * step)}
        for i, d in enumerate(dsts)
    ]


def test_a_distinct_count_reaches_its_minimum_across_batches_and_fires_once_per_window() -> None:
    engine = RuleEngine([rule(SCAN)])
    assert engine.check(batch(hits("10.0.9.4", ["10.0.1.1", "10.0.1.2", "10.0.1.1"], 0))) == []
    assert engine.check(batch(hits("10.0.2.4", ["10.0.1.1", "10.0.1.2"], 5))) == []
    (fired,) = engine.check(batch(hits("10.0.9.4", ["10.0.1.2", "10.0.1.3", "10.0.1.4"], 10)))
    # the count is the group's at the end of the batch that reached the minimum
    assert fired.group == (("src_addr", "10.0.9.4"),) and fired.count == 4 and fired.records == 6
    assert (fired.first_ns, fired.last_ns) == (second(0), second(12))
    assert fired.window_start_ns == 0 and len(fired.samples) == 3  # samples: the firing batch's records
    assert fired.samples[0]["dst_addr"] == "10.0.1.2" and fired.samples[-1]["dst_addr"] == "10.0.1.4"
    assert engine.check(batch(hits("10.0.9.4", ["10.0.1.5", "10.0.1.6"], 20))) == []  # fired already
    (again,) = engine.check(batch(hits("10.0.9.4", ["10.0.1.1", "10.0.1.2", "10.0.1.3"], 60)))
    assert again.window_start_ns == second(60) and again.count == 3


def test_windows_are_tumbling_a_burst_split_by_a_window_edge_counts_in_two_windows() -> None:
    engine = RuleEngine([rule(SCAN)])
    assert engine.check(batch(hits("10.0.9.4", ["10.0.1.1", "10.0.1.2"], 58))) == []
    assert engine.check(batch(hits("10.0.9.4", ["10.0.1.3", "10.0.1.4"], 60))) == []


def test_groups_are_per_site_and_segment_too() -> None:
    engine = RuleEngine([rule(BURST)])
    records = [{"operation": "malformed", "ts": second(i), "site": "a" if i % 2 else "b"} for i in range(6)]
    assert engine.check(batch(records)) == []
    (fired,) = engine.check(batch([{"operation": "malformed", "ts": second(7), "site": "a"}]))
    assert (fired.site, fired.count, fired.group) == ("a", 4, ())


def test_old_windows_are_forgotten_and_a_group_cap_counts_what_it_drops() -> None:
    engine = RuleEngine([rule(SCAN)])
    tracker = engine.trackers["pw-test"]
    engine.check(batch(hits("10.0.9.4", ["10.0.1.1"], 0)))
    engine.check(batch(hits("10.0.9.5", ["10.0.1.1"], 61)))
    assert len(tracker) == 2 and len(tracker.pairs) == 2
    engine.check(batch(hits("10.0.9.6", ["10.0.1.1"], 125)))
    assert sorted(tracker.state["window"].tolist()) == [1, 2] and len(tracker.pairs) == 2
    tracker.max_groups = 2
    engine.check(batch(hits("10.0.9.7", ["10.0.1.1", "10.0.1.2"], 126)))
    assert engine.dropped() == 2 and len(tracker) == 2


def test_many_groups_in_one_batch_each_fire_on_their_own() -> None:
    records = [
        {"protocol": "modbus", "src_addr": f"10.0.{i}.1", "dst_addr": f"10.1.0.{j}", "ts": second(i)}
        for i in range(50)
        for j in range(i % 4)
    ]
    fired = RuleEngine([rule(SCAN)]).check(batch(records))
    assert sorted(d.group[0][1] for d in fired) == sorted(f"10.0.{i}.1" for i in range(50) if i % 4 == 3)


def test_plain_rules_report_one_detection_per_dedup_group_with_maintenance_severity() -> None:
    stop = rule(
        "detection:\n  s: {protocol: s7comm, function: 0x29}\n  condition: s\n",
        header="severity_in_maintenance: low\ndedup: [dst_addr]\n",
    )
    records = [
        {"protocol": "s7comm", "function": 0x29, "dst_addr": dst, "ts": second(t)}
        for t, dst in enumerate(["10.0.1.1", "10.0.1.2", "10.0.1.1"])
    ]
    derived = {"maintenance": __import__("numpy").array([True, False, True])}
    found = RuleEngine([stop]).check(batch(records), derived)
    by_dst = {d.group: d for d in found}
    one = by_dst[(("dst_addr", "10.0.1.1"),)]
    two = by_dst[(("dst_addr", "10.0.1.2"),)]
    assert (one.count, one.severity.name, one.first_ns, one.last_ns) == (2, "LOW", 0, second(2))
    assert (two.count, two.severity.name, two.outside) == (1, "HIGH", 1)
