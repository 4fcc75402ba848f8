"""Learning facts from batches, then deviations from them, for each kind of fact."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from plantwarden.core.records.batch import RecordBatch
from plantwarden.detection.baselines.alerting import draft
from plantwarden.detection.baselines.checker import POLL_INTERVALS_KEPT, Deviation, merge_value
from plantwarden.detection.baselines.facts import FactKey, FactKind, observe
from plantwarden.detection.baselines.grouping import merge_intervals
from plantwarden.detection.baselines.learner import DAY_NS, LEARNING, PROTECTING, Baseline
from plantwarden.detection.baselines.scoping import Scoper
from plantwarden.zones.plant.model import Register
from tests.unit.detection.baselines.batches import SECOND, polls, records, write
from tests.unit.detection.plant_models import SITE, WEDNESDAY_NOON, flows, plant_site, read_minutes

LATER = WEDNESDAY_NOON + 8 * DAY_NS


def learnt(*batches: RecordBatch) -> tuple[Baseline, Scoper]:
    baseline, scoper = Baseline(), Scoper([plant_site()])
    for batch in batches:
        assert baseline.observe(observe(batch), scoper) == []
    baseline.protect(SITE)
    return baseline, scoper


def check(baseline: Baseline, scoper: Scoper, batch: RecordBatch) -> dict[FactKind, Deviation]:
    return {d.key.kind: d for d in baseline.observe(observe(batch), scoper)}


def test_facts_of_a_batch_are_keyed_by_site_and_fields() -> None:
    found = {(o.key.kind, o.key.text): o for o in observe(records([{}, {}, write()]))}
    assert found[(FactKind.ASSET, "10.1.0.5")].count == 3
    edge = found[(FactKind.EDGE, "10.1.0.5|10.2.0.10|6|502|1")]
    assert edge.count == 3 and edge.key.site == SITE
    assert found[(FactKind.SERVICE, "10.1.0.5|10.2.0.10|6|502|1|3")].value == {"operation": "read"}
    assert found[(FactKind.SERVICE, "10.1.0.5|10.2.0.10|6|502|1|6")].value == {"operation": "write"}
    assert found[(FactKind.WRITTEN_RANGE, "10.2.0.10|1|1|holding")].value == {"ranges": [[100, 100]]}
    assert found[(FactKind.SETPOINT, "10.2.0.10|1|100|holding")].value["max"] == 50.0


def test_intervals_merge_where_they_overlap_or_touch() -> None:
    starts, ends = np.array([10, 0, 4, 20]), np.array([12, 3, 6, 20])
    assert merge_intervals(starts, ends) == [[0, 6], [10, 12], [20, 20]]


def test_a_new_asset_edge_and_function_are_deviations_with_their_keys() -> None:
    baseline, scoper = learnt(records([{}]))
    found = check(baseline, scoper, records([{"src": "10.1.0.66", "function": 43}]))
    assert found[FactKind.ASSET].key.parts == ("10.1.0.66",) and found[FactKind.ASSET].learned is None
    assert "new communication edge 10.1.0.66 -> 10.2.0.10" in found[FactKind.EDGE].reason
    assert found[FactKind.SERVICE].key.named()["function"] == 43
    assert found[FactKind.EDGE].scopes == ("asset:10.2.0.10", "conduit:scada-cell")
    assert check(baseline, scoper, records([{}])) == {}


def test_a_flow_to_a_new_port_is_a_new_edge() -> None:
    baseline, scoper = learnt(flows([{"port": 445, "dst": "10.2.0.10"}]))
    assert check(baseline, scoper, flows([{"port": 445, "dst": "10.2.0.10"}])) == {}
    found = check(baseline, scoper, flows([{"port": 139, "dst": "10.2.0.10"}]))
    assert set(found) == {FactKind.EDGE} and found[FactKind.EDGE].key.named()["port"] == 139


def test_a_write_outside_the_learned_register_ranges() -> None:
    baseline, scoper = learnt(records([write(address=100, quantity=4), write(address=104, value=60)]))
    assert baseline.facts[next(k for k in baseline.facts if k.kind is FactKind.WRITTEN_RANGE)].value == {
        "ranges": [[100, 104]]
    }
    found = check(baseline, scoper, records([write(address=200, value=55)]))
    deviation = found[FactKind.WRITTEN_RANGE]
    assert deviation.learned == {"ranges": [[100, 104]]} and deviation.observed == {"ranges": [[200, 200]]}
    assert "outside the learned ranges [100-104]: [200]" in deviation.reason


def test_a_setpoint_outside_its_learned_range_and_the_plant_safe_range() -> None:
    baseline, scoper = learnt(records([write(value=40), write(value=60)]))
    assert check(baseline, scoper, records([write(value=55)])) == {}
    found = check(baseline, scoper, records([write(value=75)]))
    assert found[FactKind.SETPOINT].learned == {"min": 40.0, "max": 60.0}
    assert found[FactKind.SETPOINT].observed["max"] == 75.0
    assert "outside the learned range [40, 60]" in found[FactKind.SETPOINT].reason

    site = plant_site()
    register = Register(100, "speed", "holding", "uint16", safe_range=(0.0, 70.0))
    plc = replace(site.assets[1], registers=(register,))
    guarded = replace(site, assets=(site.assets[0], plc, *site.assets[2:]))
    scoper = Scoper([guarded])
    baseline = Baseline()
    batch = records([write(value=40), write(value=65)])
    baseline.observe(observe(batch, scoper.outside_safe(batch)), scoper)
    baseline.protect(SITE)
    within = records([write(value=69)])  # outside the learned [40, 65], inside the safe range
    assert baseline.observe(observe(within, scoper.outside_safe(within)), scoper) == []
    beyond = records([write(value=71)])
    (deviation,) = baseline.observe(observe(beyond, scoper.outside_safe(beyond)), scoper)
    assert "outside the register map's safe range [0, 70]" in deviation.reason


def test_a_polling_period_change_past_the_tolerance() -> None:
    baseline, scoper = learnt(polls(20, 10.0))
    fact = next(f for k, f in baseline.facts.items() if k.kind is FactKind.POLLING)
    assert fact.value == {"median_ns": 10 * SECOND, "intervals": 19}
    assert check(baseline, scoper, polls(10, 12.0, start=WEDNESDAY_NOON + 300 * SECOND)) == {}
    found = check(baseline, scoper, polls(10, 2.0, start=WEDNESDAY_NOON + 600 * SECOND))
    deviation = found[FactKind.POLLING]
    assert deviation.learned == {"median_ns": 10 * SECOND, "intervals": 19}
    assert deviation.observed["median_ns"] == 2 * SECOND and "learned 10 s" in deviation.reason


def test_polling_spread_over_batches_of_one_read_each() -> None:
    baseline = Baseline()
    scoper = Scoper()
    for i in range(8):
        baseline.observe(observe(polls(1, 0, start=WEDNESDAY_NOON + i * 10 * SECOND)), scoper)
    fact = next(f for k, f in baseline.facts.items() if k.kind is FactKind.POLLING)
    assert fact.value == {"median_ns": 10 * SECOND, "intervals": 7}


def test_read_aggregates_give_polling_periods() -> None:
    (found,) = [o for o in observe(read_minutes([{"requests": 4}])) if o.key.kind is FactKind.POLLING]
    assert found.value == {"median_ns": 10 * SECOND, "intervals": 3}


def test_scopes_learn_for_seven_days_of_record_time_then_protect() -> None:
    baseline, scoper = Baseline(), Scoper([plant_site()])
    baseline.observe(observe(records([{}])), scoper)
    assert {s.state for s in baseline.scopes.values()} == {LEARNING}
    assert baseline.promote(WEDNESDAY_NOON + DAY_NS) == []
    assert {s.name for s in baseline.promote(LATER)} == {"site", "asset:10.2.0.10", "conduit:scada-cell"}
    assert {s.state for s in baseline.scopes.values()} == {PROTECTING}


def test_protecting_by_hand_one_scope_leaves_the_others_learning() -> None:
    baseline, scoper = Baseline(), Scoper()
    baseline.observe(observe(records([{}, {"dst": "10.2.0.11"}])), scoper)
    assert [s.name for s in baseline.protect(SITE, "asset:10.2.0.10")] == ["asset:10.2.0.10"]
    found = baseline.observe(observe(records([{"function": 4}, {"dst": "10.2.0.11", "function": 4}])), scoper)
    assert [d.key.named()["server"] for d in found] == ["10.2.0.10"]


def test_a_long_flow_that_began_while_learning_is_learned_when_it_ends_after() -> None:
    """Flows are written when they end: an NTP flow that began in the learning window and ends
    days after the scope protects is part of what the scope learned, not a new edge."""
    baseline, scoper = Baseline(), Scoper([plant_site()])
    assert baseline.observe(observe(records([{}])), scoper) == []
    baseline.promote(LATER)  # the window (7 days) is over: the scopes protect
    ntp = {"dst": "10.2.0.10", "port": 123, "transport": "udp"}
    late = flows([{**ntp, "ts": WEDNESDAY_NOON + SECOND}])  # began in learning, reported now
    assert check(baseline, scoper, late) == {}
    fresh = flows([{**ntp, "port": 161, "ts": LATER + SECOND}])  # began after: a deviation
    assert set(check(baseline, scoper, fresh)) == {FactKind.EDGE}


def test_a_scope_protected_by_hand_judges_what_comes_after_the_newest_record_it_saw() -> None:
    baseline, scoper = Baseline(), Scoper([plant_site()])
    assert baseline.observe(observe(records([{}])), scoper) == []
    baseline.promote(WEDNESDAY_NOON + 60 * SECOND)  # nothing due yet; the newest record time
    baseline.protect(SITE)
    before = flows([{"dst": "10.2.0.10", "port": 123, "transport": "udp", "ts": WEDNESDAY_NOON + SECOND}])
    assert check(baseline, scoper, before) == {}
    after = flows([{"dst": "10.2.0.10", "port": 161, "transport": "udp", "ts": WEDNESDAY_NOON + 61 * SECOND}])
    assert set(check(baseline, scoper, after)) == {FactKind.EDGE}


def test_a_learnt_polling_period_counts_a_bounded_number_of_intervals() -> None:
    full = {"median_ns": 10 * SECOND, "intervals": POLL_INTERVALS_KEPT}
    merged = merge_value(FactKind.POLLING, full, {"median_ns": 20 * SECOND, "intervals": 10})
    assert merged["intervals"] == POLL_INTERVALS_KEPT and 10 * SECOND < merged["median_ns"] < 11 * SECOND
    huge = {"median_ns": SECOND, "intervals": 10**4000}  # a store that saves doubled for days
    assert merge_value(FactKind.POLLING, huge, {})["intervals"] == POLL_INTERVALS_KEPT


def test_coils_and_holding_registers_are_two_address_spaces() -> None:
    coils = {"operation": "write", "function": 15, "address": 5, "quantity": 2, "value": 1}
    baseline, scoper = learnt(records([coils, write(address=100)]))
    found = check(baseline, scoper, records([write(address=5, value=9000)]))  # holding register 5
    deviation = found[FactKind.WRITTEN_RANGE]
    assert deviation.key.named()["table"] == "holding" and deviation.learned == {"ranges": [[100, 100]]}
    alert = draft(deviation)
    assert alert.title == "New registers written: 10.2.0.10 unit 1 holding registers 5"
    assert check(baseline, scoper, records([coils])) == {}  # the coils learnt
    tables = {k.text for k in baseline.facts if k.kind in (FactKind.SETPOINT, FactKind.WRITTEN_RANGE)}
    assert tables >= {"10.2.0.10|1|1|coil", "10.2.0.10|1|1|holding", "10.2.0.10|1|5|coil"}


def test_keys_stored_without_a_table_still_parse() -> None:
    assert FactKey.parse("setpoint", SITE, "10.2.0.10|1|100").text == "10.2.0.10|1|100|holding"
    assert FactKey.parse("written_range", SITE, "10.2.0.10|1|1").text == "10.2.0.10|1|1|holding"
    assert FactKey.parse("written_range", SITE, "10.2.0.10|1|3").text == "10.2.0.10|1|3|-"  # S7comm
