"""The process model on synthetic plants whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from plantwarden.core.errors import InvalidInput
from plantwarden.detection.process import alarm
from plantwarden.detection.process.config import ModelConfig
from plantwarden.detection.process.model import ProcessModel, _slow, explain

SECOND = 1_000_000_000
NAMES = ("flow", "pressure", "current")


def plant(rows: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Pressure and current follow the flow (with noise): relations a model must learn."""
    rng = np.random.default_rng(seed)
    flow = 30 + rng.normal(0, 2, rows)
    pressure = 0.05 * flow + rng.normal(0, 0.02, rows)
    current = 0.04 * flow + rng.normal(0, 0.05, rows)
    return np.arange(rows, dtype=np.int64) * SECOND, np.column_stack([flow, pressure, current])


def fitted(config: ModelConfig | None = None, rows: int = 600) -> ProcessModel:
    times, values = plant(rows)
    return ProcessModel.fit(values, NAMES, config or ModelConfig(), times)


def test_explanation_names_the_variable_that_moved_and_by_how_much() -> None:
    model = fitted()
    times, values = plant(50, seed=8)
    values[30, 1] += 0.3  # pressure 15 residual sd above what the flow implies, flow unchanged
    scores = model.scorer().score(times + 10_000 * SECOND, values)
    assert scores.top_variable()[30] == "pressure"
    first = explain(model, scores.measured[30], scores.deviation[30])[0]
    assert first.variable == "pressure"
    assert first.deviation is not None and first.deviation > 8
    assert first.expected == pytest.approx(values[30, 1] - 0.3, abs=0.06)
    assert "pressure" in first.describe() and "sd" in first.describe()
    assert scores.raw[30] > 10 * np.median(scores.raw)


def test_relations_matter_not_only_ranges() -> None:
    """A pressure inside its training range but wrong for the flow is still an outlier."""
    model = fitted()
    times, values = plant(1, seed=9)
    values[0, 0] = 34.0  # a high but normal flow
    values[0, 1] = 0.05 * 26.0  # the pressure of a low flow: in range, inconsistent
    scores = model.scorer().score(times, values)
    z = model.standardise(times, values)
    assert abs(z[0, 1]) < 3  # in range by itself
    assert scores.raw[0] > model.threshold


def test_deviations_are_in_residual_standard_deviations_whatever_the_shrinkage() -> None:
    """b follows a closely, c is independent noise. With shrinkage the raw residual of b (or a)
    reads far below its true size; the training spread brings each to 1 sd, so a broken a-b
    relation is told in its real size and ranks above the noise variable."""
    rng = np.random.default_rng(0)
    t = np.arange(1000)
    a = np.sin(t / 30) + rng.normal(0, 0.1, len(t))
    b = 2 * a + rng.normal(0, 0.1, len(t))
    c = rng.normal(5, 1, len(t))
    values, times = np.column_stack([a, b, c]), t.astype(np.int64) * SECOND
    model = ProcessModel.fit(values[:500], ("a", "b", "c"), ModelConfig(shrinkage=0.05), times[:500])
    _, training = model.residuals(times[:500], model.measure(times[:500], values[:500], None))
    assert np.sqrt(np.mean(training**2, axis=0)) == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)
    broken = values.copy()
    broken[700:730, 1] += 1.0  # b about 7 residual sd off what a implies
    scores = model.scorer().score(times, broken)
    assert np.median(np.abs(scores.deviation[700:730, 1])) > 4
    ranked = [explain(model, scores.measured[i], scores.deviation[i])[0].variable for i in range(700, 730)]
    assert ranked.count("c") <= 2, ranked
    again = ProcessModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert np.array_equal(again.spread, model.spread)


def test_a_missing_value_is_left_out_and_reported() -> None:
    model = fitted()
    times, values = plant(20, seed=10)
    values[5, 2] = np.nan
    values[5, 1] += 0.3
    scores = model.scorer().score(times, values)
    assert np.isnan(scores.deviation[5, 2]) and np.isfinite(scores.raw[5])
    assert scores.top_variable()[5] == "pressure"
    listed = explain(model, scores.measured[5], scores.deviation[5])
    assert listed[-1].variable == "current" and listed[-1].missing
    assert "missing" in listed[-1].describe()
    assert listed[-1].expected == pytest.approx(0.04 * values[5, 0], abs=0.2)


def test_threshold_is_fixed_from_training_rows_only() -> None:
    times, values = plant(600)
    config = ModelConfig(quantile=0.95, factor=2.0)
    model = ProcessModel.fit(values, NAMES, config, times)
    raw, _ = model.residuals(times, model.measure(times, values, None))
    smoothed, _, _ = alarm.run(
        raw,
        times,
        smoothing=config.smoothing,
        gap_ns=model.gap_ns,
        threshold=np.inf,
        hold_ns=0,
        state=alarm.AlarmState(),
    )
    assert model.threshold == pytest.approx(2.0 * np.quantile(smoothed, 0.95))
    before = model.threshold
    model.scorer().score(times + 1000 * SECOND, values * 3)  # wild test data
    assert model.threshold == before


def test_rows_out_of_order_within_the_allowance_are_put_back_in_order() -> None:
    model = fitted(ModelConfig(reorder_seconds=5))
    times, values = plant(40, seed=11)
    in_order = model.scorer()
    expected = [in_order.score(times, values), in_order.flush()]
    shuffled = np.array([1, 0, 3, 2, 4, 6, 5, *list(range(7, 40))])
    scorer = model.scorer()
    got = [
        scorer.score(times[shuffled[:20]], values[shuffled[:20]]),
        scorer.score(times[shuffled[20:]], values[shuffled[20:]]),
        scorer.flush(),
    ]
    got_times = np.concatenate([g.times_ns for g in got])
    got_scores = np.concatenate([g.score for g in got])
    assert np.array_equal(got_times, times)
    assert np.allclose(got_scores, np.concatenate([e.score for e in expected]))
    assert scorer.late == 0
    late = scorer.score(times[:1], values[:1])  # older than every released row
    assert len(late) == 0 and scorer.flush().times_ns.size == 0 and scorer.late == 1


def test_a_gap_longer_than_the_learned_period_resets_the_short_term_state() -> None:
    model = fitted(ModelConfig(hold_seconds=600, gap_periods=10))
    times, values = plant(30, seed=12)
    values[10:13, 1] += 0.5
    scorer = model.scorer()
    first = scorer.score(times, values)
    assert first.flag[-1]  # still held after the fault
    later = times[-1] + 11 * SECOND + np.arange(5) * SECOND
    after = scorer.score(later, plant(5, seed=13)[1])
    assert after.reset[0] and not after.reset[1:].any()
    assert not after.flag.any()
    assert after.score[0] == pytest.approx(after.raw[0])  # average restarted


def test_model_survives_a_restart_as_json() -> None:
    model = fitted(ModelConfig(slow_autocorrelation=0.9))
    copy = ProcessModel.from_dict(json.loads(json.dumps(model.to_dict())))
    times, values = plant(30, seed=14)
    a, b = model.scorer().score(times, values), copy.scorer().score(times, values)
    assert np.allclose(a.score, b.score) and np.array_equal(a.flag, b.flag)
    assert copy.names == model.names and copy.threshold == model.threshold
    broken = model.to_dict() | {"mean": [0.0]}
    with pytest.raises(InvalidInput, match="shapes"):
        ProcessModel.from_dict(broken)
    with pytest.raises(InvalidInput, match="kind"):
        ProcessModel.from_dict({"kind": "other"})


def test_a_drifting_state_is_judged_by_its_change() -> None:
    rng = np.random.default_rng(3)
    times, values = plant(600)
    temperature = 60 + np.cumsum(rng.normal(0.01, 0.02, 600))
    data = np.column_stack([values, temperature])
    names = (*NAMES, "temperature")
    model = ProcessModel.fit(data, names, ModelConfig(slow_autocorrelation=0.9), times)
    assert model.slow.tolist() == [False, False, False, True]
    more_times, more = plant(40, seed=15)
    drift = temperature[-1] + 2 + np.cumsum(rng.normal(0.01, 0.02, 40))  # warmer, drifting as before
    drift[25:] += 1.5  # a sudden jump
    scores = model.scorer().score(more_times + 600 * SECOND, np.column_stack([more, drift]))
    assert scores.top_variable()[25] == "temperature"
    assert abs(scores.deviation[25, 3]) > 20 and np.nanmax(np.abs(scores.deviation[1:25, 3])) < 5
    assert explain(model, scores.measured[25], scores.deviation[25])[0].measure == "change"


def test_slow_variables_are_judged_over_the_pairs_both_present() -> None:
    rng = np.random.default_rng(11)
    walk = np.cumsum(rng.normal(0, 1, 500))  # lag-1 autocorrelation near 1
    noise = rng.normal(0, 1, 500)  # near 0
    sparse = walk.copy()
    sparse[rng.random(500) < 0.3] = np.nan  # still slow, over the pairs left
    lonely = np.full(500, np.nan)
    lonely[[10, 11, 40]] = (1.0, 2.0, 3.0)  # one pair only: too few to judge
    data = np.column_stack([walk, noise, sparse, lonely])
    for limit in (0.5, 0.9):
        expected = []
        for column in data.T:
            pairs = ~np.isnan(column[:-1]) & ~np.isnan(column[1:])
            a, b = column[:-1][pairs], column[1:][pairs]
            expected.append(len(a) > 2 and bool(np.corrcoef(a, b)[0, 1] >= limit))
        assert _slow(data, limit).tolist() == expected == [True, False, True, False]
    assert not _slow(data, None).any()
    assert not _slow(data[:1], 0.9).any()


def test_the_top_variable_of_a_row_with_nothing_present_is_empty() -> None:
    model = fitted()
    times, values = plant(5, seed=3)
    values[2] = np.nan
    values[3, 0] = np.nan
    top = model.scorer().score(times + 600 * SECOND, values).top_variable()
    assert top[2] == "" and top[3] in NAMES[1:] and all(top[i] in NAMES for i in (0, 1, 4))


def test_rows_with_nothing_measured_neither_hide_a_fault_nor_count_as_normal() -> None:
    """Every other row of a fault arrives empty (a device answering with nothing): those rows leave
    the smoothed score as it was, so the fault is flagged as if they were simply absent."""
    model = fitted()
    times, values = plant(60, seed=14)
    times = times + 1000 * SECOND
    values[20:50, 1] += 0.12  # pressure 6 residual sd off for 30 s
    emptied = values.copy()
    emptied[20:50:2] = np.nan
    with_empty = model.scorer().score(times, emptied)
    present = ~np.isnan(emptied).all(axis=1)
    without = model.scorer().score(times[present], emptied[present])
    assert np.isnan(with_empty.raw[20]) and not with_empty.reset[21]
    assert np.array_equal(with_empty.flag[present], without.flag)
    assert np.allclose(with_empty.score[present], without.score)
    assert with_empty.flag[21:50:2].sum() >= 10
    assert with_empty.score[22] == with_empty.score[21]  # the empty row carries the level


def test_an_empty_row_after_a_gap_carries_nothing_over() -> None:
    """A held alarm before a gap does not cover an empty row after it, nor lend it its level."""
    times = np.array([0, 1, 20, 21], dtype=np.int64) * SECOND
    smoothed, flags, resets = alarm.run(
        np.array([5.0, 5.0, np.nan, 1.0]),
        times,
        smoothing=1.0,
        gap_ns=10 * SECOND,
        threshold=2.0,
        hold_ns=30 * SECOND,
        state=alarm.AlarmState(),
    )
    assert list(flags) == [True, True, False, False]
    assert np.isnan(smoothed[2]) and smoothed[3] == 1.0 and list(resets) == [False, False, True, True]


def test_an_hourly_baseline_absorbs_the_daily_cycle() -> None:
    hours = np.arange(24 * 60)
    rng = np.random.default_rng(4)
    demand = 10 + 5 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.3, len(hours))
    level = 3 + rng.normal(0, 0.3, len(hours))
    values = np.column_stack([demand, level])
    times = hours.astype(np.int64) * 3600 * SECOND
    plain = ProcessModel.fit(values, ("demand", "level"), ModelConfig(), times)
    seasonal = ProcessModel.fit(values, ("demand", "level"), ModelConfig(seasonal=True), times)
    day = 100 * 24 * 3600 * SECOND
    probe_times = np.array([day + 6 * 3600 * SECOND, day + 18 * 3600 * SECOND])  # demand peak, trough
    probe = np.array([[15.0, 3.0], [15.0, 3.0]])  # the peak demand, at both hours
    _, seasonal_dev = seasonal.residuals(probe_times, probe)
    _, plain_dev = plain.residuals(probe_times, probe)
    assert abs(seasonal_dev[0, 0]) < 3 and abs(seasonal_dev[1, 0]) > 10
    assert plain_dev[0, 0] == pytest.approx(plain_dev[1, 0])
    with pytest.raises(InvalidInput, match="times"):
        ProcessModel.fit(values, ("demand", "level"), ModelConfig(seasonal=True))


def test_bad_training_input_is_refused_with_a_reason() -> None:
    times, values = plant(50)
    with pytest.raises(InvalidInput, match="variables"):
        ProcessModel.fit(values[:, :2], NAMES, ModelConfig(), times)
    values[:, 1] = np.nan
    with pytest.raises(InvalidInput, match="pressure"):
        ProcessModel.fit(values, NAMES, ModelConfig(), times)
    with pytest.raises(InvalidInput, match="smoothing"):
        ModelConfig(smoothing=0)
    with pytest.raises(InvalidInput, match="unknown"):
        ModelConfig.from_dict({"colour": 1})
