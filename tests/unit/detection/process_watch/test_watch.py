"""Process models on telemetry: rows from samples, learning then watching, episodes, saved models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from sqlalchemy.exc import OperationalError

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.core.migrate import ensure_ready
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import TELEMETRY
from plantwarden.detection.process_watch.alerts import draft
from plantwarden.detection.process_watch.episodes import Episode
from plantwarden.detection.process_watch.frames import DeviceFrames
from plantwarden.detection.process_watch.limits import WatchedModel, counters, settling, smoothed
from plantwarden.detection.process_watch.saved import forget_model, load_models, save_model
from plantwarden.detection.process_watch.watch import PLANT_CONFIG, ProcessWatch

START = 1_767_600_000 * SECOND_NS
VARIABLES = ("pump_speed", "flow", "discharge_pressure")


def pump(seconds: int, *, seed: int = 1, start: int = 0, drift_from: int | None = None) -> dict[str, Any]:
    """A pump skid at 1 Hz: speed wanders, flow follows speed, pressure follows speed squared;
    from `drift_from` on, the pressure transmitter reads high by 0.02 bar more every second."""
    rng = np.random.default_rng(seed)
    t = np.arange(start, start + seconds)
    speed = 60 + 10 * np.sin(2 * np.pi * t / 300) + rng.normal(0, 0.5, len(t))
    flow = 1.2 * speed + rng.normal(0, 0.4, len(t))
    pressure = 0.001 * speed**2 + rng.normal(0, 0.05, len(t))
    if drift_from is not None:
        pressure += np.clip(t - drift_from, 0, None) * 0.02
    return {"t": t, "pump_speed": speed, "flow": flow, "discharge_pressure": pressure}


def samples(data: dict[str, Any], *, device: str = "pump-skid-1", site: str = "riverside") -> RecordBatch:
    """The data as telemetry samples, one per variable and second, shuffled a little within 2 s."""
    t = data["t"]
    ts = np.concatenate([START + t * SECOND_NS + 1000 * k for k in range(len(VARIABLES))])
    values = np.concatenate([data[name] for name in VARIABLES])
    variables = np.array([name for name in VARIABLES for _ in t], dtype=object)
    jitter = np.random.default_rng(7).integers(0, 2 * SECOND_NS, len(ts))
    order = np.argsort(ts + jitter, kind="stable")
    return RecordBatch.build(
        TELEMETRY,
        {
            "ts": ts[order],
            "site": site,
            "device": device,
            "variable": variables[order],
            "value": values[order],
            "quality": 0,
        },
        length=len(ts),
    )


def blocks(batch: RecordBatch, size: int = 500) -> list[RecordBatch]:
    return [batch.take(slice(i, i + size)) for i in range(0, len(batch), size)]


class Kept:
    def __init__(self) -> None:
        self.models: dict[str, WatchedModel] = {}
        self.episodes: list[Episode] = []

    def save(
        self, device: str, model: WatchedModel, _step: int, _rows: int, _window: tuple[int, int]
    ) -> None:
        self.models[device] = model


def watch(kept: Kept, **options: Any) -> ProcessWatch:
    return ProcessWatch(
        "riverside", None, kept.episodes.extend, kept.save, learn_ns=600 * SECOND_NS, **options
    )


def test_rows_put_late_samples_in_their_second_and_leave_missing_ones_nan() -> None:
    frames = DeviceFrames(site="riverside", lateness_ns=3 * SECOND_NS)
    data = pump(20)
    batch = samples(data)
    keep = ~((batch["variable"] == "flow") & (batch["ts"] // SECOND_NS == START // SECOND_NS + 5))
    rows = [r for b in blocks(batch.take(keep), 7) for r in frames.add(b)] + frames.drain()
    times = np.concatenate([r.times for r in rows])
    assert list(times) == [START + s * SECOND_NS for s in range(20)]
    flows = np.concatenate([r.values[:, r.variables.index("flow")] for r in rows])
    assert np.isnan(flows[5]) and np.allclose(np.delete(flows, 5), np.delete(data["flow"], 5))
    assert frames.late == 0


def test_a_sample_for_a_second_already_handed_on_is_dropped_and_counted() -> None:
    frames = DeviceFrames(site="riverside", lateness_ns=0)
    batch = samples(pump(10)).sorted_by_time()
    frames.add(batch)
    frames.add(batch.take(slice(0, 1)))
    assert frames.late == 1


def test_other_sites_and_bad_quality_samples_are_left_out() -> None:
    frames = DeviceFrames(site="riverside")
    assert frames.add(samples(pump(30), site="elsewhere")) == [] and frames.drain() == []


def test_a_device_learns_then_names_the_drifting_variable() -> None:
    kept = Kept()
    process = watch(kept)
    for block in blocks(samples(pump(3600, drift_from=1800))):
        process.write(block)
    process.close()
    assert list(kept.models) == ["pump-skid-1"]
    assert sorted(kept.models["pump-skid-1"].names) == sorted(VARIABLES)
    assert kept.episodes, process.summary()
    first = kept.episodes[0]
    assert first.top is not None and first.top.variable == "discharge_pressure"
    assert first.top.deviation is not None and first.top.deviation > 0
    assert first.start_ns > START + 1800 * SECOND_NS  # nothing before the drift
    alert = draft("riverside", first)
    assert "discharge_pressure" in alert.title and alert.dedup_key is not None
    assert alert.evidence[1]["variable"] == "discharge_pressure"


def test_a_start_from_standstill_in_the_learning_window_does_not_hide_later_faults() -> None:
    """The capture begins as the pump starts: its first second reads zero speed, flow and pressure.
    That second is settling, not learned, so the threshold stays where normal operation puts it
    and a blocked line (flow down by a third at full speed) half an hour later is flagged."""
    data = pump(3600, seed=5)
    data["pump_speed"][0] = data["flow"][0] = data["discharge_pressure"][0] = 0.0
    data["flow"][1800:2100] *= 0.66
    kept = Kept()
    process = watch(kept)
    for block in blocks(samples(data)):
        process.write(block)
    process.close()
    model = kept.models["pump-skid-1"]
    assert model.model.threshold < 5, model.model.threshold
    assert kept.episodes, process.summary()
    first = kept.episodes[0]
    assert START + 1800 * SECOND_NS <= first.start_ns < START + 1830 * SECOND_NS
    assert first.top is not None and first.top.variable == "flow"


def test_a_stop_and_a_start_while_protecting_settle_and_raise_nothing() -> None:
    """The pump stops for two minutes and starts again from standstill: the start settles as it
    did in learning, so nothing is raised; a blocked line that persists past the settling is."""
    data = pump(3600, seed=5)
    for name in VARIABLES:
        data[name][0] = data[name][1920] = 0.0  # standstill at the capture's start and the restart
    data["flow"][2500:2800] *= 0.66
    running = (data["t"] < 1800) | (data["t"] >= 1920)
    kept = Kept()
    process = watch(kept)
    for block in blocks(samples({key: values[running] for key, values in data.items()})):
        process.write(block)
    process.close()
    assert len(kept.episodes) == 1, [(e.start_ns - START) // SECOND_NS for e in kept.episodes]
    assert " rows flagged (30 settling)" in process.summary(), process.summary()  # the restart's
    blocked = kept.episodes[0]
    assert START + 2500 * SECOND_NS <= blocked.start_ns < START + 2530 * SECOND_NS
    assert blocked.top is not None and blocked.top.variable == "flow"


def test_a_variable_seen_only_while_settling_is_not_modelled_and_the_device_trains() -> None:
    data = pump(1500, seed=2)
    batch = samples(data)
    early = RecordBatch.build(
        TELEMETRY,
        {
            "ts": START + np.arange(20) * SECOND_NS + 5000,
            "site": "riverside",
            "device": "pump-skid-1",
            "variable": np.array(["setpoint"] * 20, dtype=object),
            "value": 60.0,
            "quality": 0,
        },
        length=20,
    )
    kept = Kept()
    process = watch(kept)
    process.write(early)
    for block in blocks(batch):
        process.write(block)
    process.close()
    assert sorted(kept.models["pump-skid-1"].names) == sorted(VARIABLES)
    assert process.not_trained == {}


def test_a_device_whose_rows_all_settle_says_why_it_is_not_trained() -> None:
    """Bursts of 20 s every 40 s: each burst follows a gap, so every row is settling."""
    data = pump(2400)
    bursts = data["t"] % 40 < 20
    process = watch(Kept(), min_rows=300)
    process.write(samples({key: values[bursts] for key, values in data.items()}))
    assert process.fit_now() == []
    assert "once the first 30 s after the start and after each gap" in process.not_trained["pump-skid-1"]


def test_counters_are_whole_numbers_or_rise_across_the_window() -> None:
    rows = 600
    items = np.concatenate([np.zeros(400), np.arange(1, 201)])  # a belt jammed for 400 s, then counting
    meter = np.linspace(1000.0, 1003.7, rows)  # an energy total in tenths
    speed = np.full(rows, 18.8)
    speed[300:303] = [18.85, 18.88, 18.9]  # a speed following a raised setpoint: three small rises
    speed[303:] = 18.9
    falls = items.copy()
    falls[500] = 0  # goes down once: no counter
    rpm = np.full(rows, 1000.0)
    rpm[300:305] = [1040, 1080, 1120, 1160, 1200]  # whole rpm following a raised setpoint
    rpm[305:] = 1200
    found = counters(np.column_stack([items, meter, speed, falls, rpm]))
    assert list(found) == [True, True, False, False, False]


def test_the_plant_model_s_marks_decide_over_the_values() -> None:
    """A count reset while learning goes down once, so its values call it no counter, and a level
    filling across the whole window rises in fractions, so they call it one: `counter: true` and
    `counter: false` in the register map say what each is."""
    data = pump(900)
    t = data["t"]
    batches = np.where(t < 450, t // 10, (t - 450) // 10)  # reset at the shift change
    level = 20.0 + t / 100  # a silo filling all the learning long
    names = [*VARIABLES, "batches", "level"]
    values = np.column_stack([*(data[name] for name in VARIABLES), batches, level])
    times = START + t * SECOND_NS
    judged = WatchedModel.fit(times, values, names, PLANT_CONFIG)
    assert judged.left_out == ["level"] and "batches" in judged.names
    marked = WatchedModel.fit(times, values, names, PLANT_CONFIG, {"batches": True, "level": False})
    assert marked.left_out == ["batches"] and "level" in marked.names
    assert marked.names == (*VARIABLES, "level")


def test_a_watch_fits_each_device_with_its_own_marks() -> None:
    data = pump(900)
    data["discharge_pressure"] = 1.0 + data["t"] / 1000  # rising all the learning long
    kept = Kept()
    process = watch(kept, marks={"pump-skid-1": {"discharge_pressure": False}})
    for device in ("pump-skid-1", "pump-skid-2"):
        process.write(samples(data, device=device))
    assert sorted(process.fit_now()) == ["pump-skid-1", "pump-skid-2"]
    assert kept.models["pump-skid-1"].left_out == [] and kept.models["pump-skid-2"].left_out == [
        "discharge_pressure"
    ]


def test_a_fresh_per_variable_level_starts_from_no_deviation() -> None:
    """At the start of the watch, one row 3.5 sd off is not judged as a 3.5 sd average."""
    level, after = smoothed(np.array([[3.5], [3.5]]), np.array([True, False]), 0.1, None)
    assert level[:, 0] == pytest.approx([0.35, 0.665]) and after[0] == pytest.approx(0.665)


def test_settling_rows_follow_the_start_and_each_gap() -> None:
    times = np.concatenate([np.arange(0, 100), np.arange(200, 300)]) * SECOND_NS
    found = settling(times, 10.0)
    assert list(np.flatnonzero(found)) == [*range(0, 30), *range(100, 130)]
    assert not settling(times[:0], 10.0).any()


def test_too_few_rows_once_settled_is_a_clear_error() -> None:
    data = pump(35)
    values = np.column_stack([data[name] for name in VARIABLES])
    with pytest.raises(InvalidInput, match="fewer than 10 training rows once the first 30 s"):
        WatchedModel.fit(START + data["t"] * SECOND_NS, values, list(VARIABLES), PLANT_CONFIG)


def test_normal_operation_raises_nothing() -> None:
    kept = Kept()
    process = watch(kept)
    for block in blocks(samples(pump(3600, seed=3))):
        process.write(block)
    process.close()
    assert kept.models and kept.episodes == []


def test_without_learning_a_device_with_no_model_is_only_counted() -> None:
    kept = Kept()
    process = watch(kept, learn=False)
    for block in blocks(samples(pump(1200))):
        process.write(block)
    process.close()
    assert kept.models == {} and "still learning: pump-skid-1" in process.summary()


def test_a_saved_model_watches_from_the_first_row_after_a_restart() -> None:
    kept = Kept()
    learner = watch(kept)
    for block in blocks(samples(pump(900))):
        learner.write(block)
    restored = WatchedModel.from_dict(kept.models["pump-skid-1"].to_dict())
    again = Kept()
    process = watch(again, models={"pump-skid-1": restored})
    for block in blocks(samples(pump(1200, start=900, drift_from=1000))):
        process.write(block)
    process.close()
    assert again.models == {}  # nothing learned again
    assert again.episodes and again.episodes[0].top is not None
    assert again.episodes[0].top.variable == "discharge_pressure"


def test_models_are_kept_per_site_and_device(store: Store, ctx: Context) -> None:
    ensure_ready(store)
    kept = Kept()
    learner = watch(kept)
    for block in blocks(samples(pump(900))):
        learner.write(block)
    model = kept.models["pump-skid-1"]
    with store.transaction() as session:
        for site in ("riverside", "lakeside"):
            save_model(
                session,
                ctx,
                site=site,
                device="pump-skid-1",
                model=model,
                step_ns=SECOND_NS,
                rows=600,
                trained_ns=(START, START + 600 * SECOND_NS),
                created_by="test",
            )
        save_model(  # a second save replaces the first
            session,
            ctx,
            site="riverside",
            device="pump-skid-1",
            model=model,
            step_ns=SECOND_NS,
            rows=700,
            trained_ns=(START, START + 700 * SECOND_NS),
            created_by="test",
        )
    with store.transaction() as session:
        found = load_models(session, "riverside")
        assert list(found) == ["pump-skid-1"] and found["pump-skid-1"].rows == 700
        assert found["pump-skid-1"].model.limits == pytest.approx(model.limits)
        forget_model(session, "riverside", "pump-skid-1")
    with store.transaction() as session:
        assert load_models(session, "riverside") == {}
        assert list(load_models(session, "lakeside")) == ["pump-skid-1"]


def test_one_big_batch_trains_only_on_the_learning_window_and_scores_the_rest() -> None:
    """A capture hands the sensor long batches: what lies past the window is watched, not learned."""
    windows: list[tuple[int, int]] = []
    kept = Kept()

    def save(device: str, model: WatchedModel, step: int, rows: int, window: tuple[int, int]) -> None:
        kept.save(device, model, step, rows, window)
        windows.append(window)

    process = ProcessWatch("riverside", None, kept.episodes.extend, save, learn_ns=600 * SECOND_NS)
    process.write(samples(pump(3600, drift_from=900)))  # one batch: an hour, the drift after 15 min
    process.close()
    assert windows and windows[0][1] < START + 601 * SECOND_NS, windows
    assert kept.episodes and kept.episodes[0].top is not None
    assert kept.episodes[0].top.variable == "discharge_pressure"


def test_a_failing_store_keeps_the_model_and_the_episodes_for_the_next_flush() -> None:
    kept = Kept()
    failing = {"save": True, "report": True}

    def save(device: str, model: WatchedModel, step: int, rows: int, window: tuple[int, int]) -> None:
        if failing["save"]:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        kept.save(device, model, step, rows, window)

    def report(found: Sequence[Episode]) -> None:
        if failing["report"]:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        kept.episodes.extend(found)

    process = ProcessWatch("riverside", None, report, save, learn_ns=600 * SECOND_NS)
    for block in blocks(samples(pump(3600, drift_from=1800))):
        process.write(block)
    process.close()  # the store is down: nothing lost, nothing raised
    assert kept.models == {} and kept.episodes == [] and "pump-skid-1" in process.protecting
    failing.update(save=False, report=False)
    assert process.flush() >= 1
    assert list(kept.models) == ["pump-skid-1"] and kept.episodes[0].top is not None
