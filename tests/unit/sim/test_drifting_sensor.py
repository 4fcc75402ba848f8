"""The drifting-sensor attack: pump-skid-1 reports its discharge pressure drifting away from the
process while the process runs on unchanged, on the wire (read back by tshark) and in its
telemetry, with its frames labelled and its ledger record; and the live plant's runner sets and
removes the same bias in the plant's own simulation."""

from __future__ import annotations

import asyncio
import csv
import json
import random
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from plantwarden.alerts.attack.matrix import technique
from plantwarden.core.errors import InvalidInput
from plantwarden.sim import live_attacks
from plantwarden.sim.attacks import SCENARIOS, Scenario, SensorDrift, Step, scenario
from plantwarden.sim.live_attacks import LiveAttack, Targets
from plantwarden.sim.physics import PlantSimulation, PumpSkidModel
from plantwarden.sim.plant import Plant, default_plant
from plantwarden.sim.traffic.generator import Generated, generate
from tests.tshark_support import fields

RATE = 0.05 / 60
"""bar per second: 0.5 % of discharge_pressure's 0-10 bar safe range a minute."""
PUMP = "127.10.2.13"


def test_the_scenario_drifts_pump_pressure_half_a_percent_of_its_range_a_minute_for_30_minutes() -> None:
    drifting = scenario("drifting-sensor")
    assert drifting.technique == "T0832"
    known = technique(drifting.technique)
    assert known is not None and known.name == "Manipulation of View"
    (step,) = drifting.build(default_plant(), random.Random(1))  # noqa: S311 - not secrets
    assert isinstance(step, SensorDrift)
    assert (step.plc, step.variable, step.seconds) == ("pump-skid-1", "discharge_pressure", 1800.0)
    assert step.rate_per_second == pytest.approx(RATE)
    assert [step.offset(t) for t in (-5.0, 0.0, 600.0, 1800.0, 5000.0)] == pytest.approx(
        [0.0, 0.0, 0.5, 1.5, 1.5]
    )


def test_a_bias_changes_what_the_plc_reports_and_not_the_process() -> None:
    plant = default_plant()
    biased, honest = PlantSimulation(plant, 4), PlantSimulation(plant, 4)
    pump = biased.model("pump-skid-1")
    pump.set_bias("discharge_pressure", 1.25)
    for _ in range(120):
        biased.step(1.0)
        honest.step(1.0)
    truth = honest.model("pump-skid-1")
    assert pump.true_value("discharge_pressure") == truth.value("discharge_pressure")
    assert pump.value("discharge_pressure") == pytest.approx(truth.value("discharge_pressure") + 1.25)
    assert pump.values()["discharge_pressure"] == pump.value("discharge_pressure")
    assert pump.values()["flow"] == truth.value("flow")
    high, low = pump.registers()[100], pump.registers()[101]
    (reported,) = struct.unpack(">f", struct.pack(">HH", high, low))
    assert reported == pytest.approx(truth.value("discharge_pressure") + 1.25, rel=1e-6)
    pump.set_bias("discharge_pressure", 0.0)
    assert pump.bias("discharge_pressure") == 0.0
    assert pump.registers() == truth.registers()


@pytest.mark.parametrize(
    ("name", "offset"),
    [("speed_setpoint", 1.0), ("run", 1.0), ("discharge_pressure", float("nan")), ("flow", float("inf"))],
)
def test_only_a_measurement_takes_a_finite_bias(name: str, offset: float) -> None:
    pump = PlantSimulation(default_plant(), 1).model("pump-skid-1")
    with pytest.raises(InvalidInput):
        pump.set_bias(name, offset)
    assert pump.values() == {n: pump.true_value(n) for n in pump.values()}


# The generated capture ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PumpFrames:
    """What tshark reads of pump-skid-1 in a capture (one pass), and the capture's last frame time."""

    answers: list[tuple[int, float, dict[int, int]]]
    """(frame, time, {register: word}) of every frame completing an answer to FC 4 with register 100."""
    publishes: list[tuple[int, float, dict[str, float]]]
    """(frame, time, values) of every telemetry PUBLISH."""
    last_time: float


def pump_frames(generated: Generated) -> PumpFrames:
    names = ["frame.number", "frame.time_epoch", "modbus.regnum16", "modbus.regval_uint16", "mqtt.msg"]
    wanted = f"ip.src=={PUMP} && (modbus.func_code==4 || mqtt.msgtype==3)"
    last = generated.ledger["packets"]
    rows = fields(generated.capture, names, f"({wanted}) || frame.number=={last}")
    answers, publishes = [], []
    for number, time, registers, words, message in rows:
        if message:
            publishes.append((int(number), float(time), json.loads(bytes.fromhex(message))["values"]))
        elif registers:
            image = dict(zip(map(int, registers.split(",")), map(int, words.split(",")), strict=True))
            if 100 in image:
                answers.append((int(number), float(time), image))
    return PumpFrames(answers, publishes, float(rows[-1][1]))


def readings(image: dict[int, int]) -> tuple[float, float, float]:
    """Discharge pressure (bar), flow (m3/h) and pump speed (%) of a pump-skid-1 input image."""
    pressure, flow = struct.unpack(">ff", struct.pack(">HHHH", *(image[a] for a in range(100, 104))))
    return pressure, flow, image[105] / 10


def unexplained(pressure: float, speed: float) -> float:
    """Pressure beyond what the pump's speed gives (its curve: rated pressure times speed squared)."""
    return pressure - PumpSkidModel.rated_pressure * (speed / 100) ** 2


def labelled(generated: Generated, attack: str) -> dict[int, float]:
    with generated.labels.open(encoding="utf-8") as handle:
        return {int(r["frame"]): float(r["time"]) for r in csv.DictReader(handle) if r["attack"] == attack}


@pytest.fixture(scope="module")
def clipped(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """40,000 packets (about 13 simulated minutes): the drift starts halfway and is clipped."""
    folder = tmp_path_factory.mktemp("drift")
    return generate(folder / "drift.pcapng", seed=3, packets=40_000, attacks=["drifting-sensor"])


@pytest.fixture(scope="module")
def seen(clipped: Generated) -> PumpFrames:
    return pump_frames(clipped)


def test_the_pressure_on_the_wire_drifts_at_the_rate_while_flow_and_speed_do_not(
    clipped: Generated, seen: PumpFrames
) -> None:
    (record,) = clipped.ledger["attacks"]
    start = record["drift"]["start"]
    before: list[tuple[float, float]] = []
    during: list[tuple[float, float]] = []
    for _, time, image in seen.answers:
        pressure, flow, speed = readings(image)
        assert flow == pytest.approx(speed, abs=3.0)  # 100 m3/h at 100 %: flow still follows speed
        (during if time > start + 1.5 else before if time < start else []).append(
            (time - start, unexplained(pressure, speed))
        )
    assert len(before) > 300 and len(during) > 300
    assert max(abs(residual) for _, residual in before) < 0.1
    times = [t for t, _ in during]
    mean_t, mean_r = sum(times) / len(times), sum(r for _, r in during) / len(during)
    slope = sum((t - mean_t) * (r - mean_r) for t, r in during) / sum((t - mean_t) ** 2 for t in times)
    assert slope == pytest.approx(RATE, rel=0.05)
    assert max(abs(residual - RATE * t) for t, residual in during) < 0.1
    assert max(residual for _, residual in during) > 0.25


def test_the_telemetry_reports_the_drifted_pressure_too(clipped: Generated, seen: PumpFrames) -> None:
    start = clipped.ledger["attacks"][0]["drift"]["start"]
    late = []
    for _, time, values in seen.publishes:
        residual = unexplained(values["discharge_pressure"], values["pump_speed"])
        expected = RATE * (time - start) if time > start + 1.5 else 0.0
        assert residual == pytest.approx(expected, abs=0.1)
        late.append(expected)
    assert max(late) > 0.25


def test_the_ledger_and_labels_of_a_clipped_drift(clipped: Generated, seen: PumpFrames) -> None:
    (record,) = clipped.ledger["attacks"]
    drift = record["drift"]
    assert (drift["plc"], drift["variable"], drift["address"], drift["unit"]) == (
        "pump-skid-1",
        "discharge_pressure",
        100,
        "bar",
    )
    assert record["clipped"] is True and record["sources"] == record["targets"] == ["pump-skid-1"]
    assert record["end"] == drift["end"] == pytest.approx(seen.last_time, abs=1e-6)
    assert drift["final_offset"] == pytest.approx(RATE * (drift["end"] - drift["start"]), abs=2 * RATE)
    marked = labelled(clipped, "drifting-sensor")
    assert len(marked) == clipped.ledger["attack_packets"]
    carriers = {frame: time for frame, time, _ in seen.answers + seen.publishes}
    assert set(marked) <= set(carriers)
    assert {frame for frame, time in carriers.items() if time > drift["start"] + 0.1} <= set(marked)
    assert min(marked.values()) >= drift["start"]


def test_a_drift_that_ends_is_reported_true_again_and_labelled_no_longer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def short(plant: Plant, rng: random.Random) -> list[Step]:
        return [SensorDrift("pump-skid-1", "discharge_pressure", 0.01, 120.0)]

    known = SCENARIOS["drifting-sensor"]
    monkeypatch.setitem(SCENARIOS, known.name, Scenario(known.name, known.technique, "120 s", short))
    generated = generate(tmp_path / "short.pcap", seed=5, packets=20_000, attacks=["drifting-sensor"])
    (record,) = generated.ledger["attacks"]
    drift = record["drift"]
    assert "clipped" not in record and record["end"] == drift["end"]
    assert drift["end"] - drift["start"] == pytest.approx(120.0, abs=1.0)
    assert drift["final_offset"] == pytest.approx(1.19, abs=0.011)
    marked = labelled(generated, "drifting-sensor")
    assert marked and all(drift["start"] <= time <= drift["end"] + 0.05 for time in marked.values())
    answers = pump_frames(generated).answers
    after = [readings(image) for _, time, image in answers if time > drift["end"] + 1]
    assert len(after) > 50 and max(abs(unexplained(p, s)) for p, _, s in after) < 0.1


# The live plant -----------------------------------------------------------------------------------


async def drive(simulation: PlantSimulation, attack: LiveAttack, seconds_per_step: float) -> list[float]:
    """Run `attack` while stepping the simulation, one step per turn of the event loop; the
    biases seen after each step."""
    pump = simulation.model("pump-skid-1")
    running = asyncio.create_task(attack.run())
    seen: list[float] = []
    while not running.done():
        simulation.step(seconds_per_step)
        seen.append(pump.bias("discharge_pressure"))
        await asyncio.sleep(0)
    await running
    return seen


def test_the_live_runner_drifts_the_plants_own_report_and_then_removes_the_bias(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The runner sets the bias once per tick; with no real time between ticks it takes turns with
    # the simulation's steps, so what it reports does not depend on how busy the host is.
    monkeypatch.setattr(live_attacks, "DRIFT_TICK", 0.0)
    plant = default_plant()
    simulation = PlantSimulation(plant, 2)
    attack = LiveAttack(plant, scenario("drifting-sensor"), Targets({}), simulation=simulation)
    drift = scenario("drifting-sensor").build(plant, random.Random(0))[0]  # noqa: S311 - no secret
    assert isinstance(drift, SensorDrift)
    seen = asyncio.run(drive(simulation, attack, 15.0))
    pump = simulation.model("pump-skid-1")
    assert pump.bias("discharge_pressure") == 0.0
    assert pump.value("discharge_pressure") == pump.true_value("discharge_pressure")
    # one setting per 15 simulated seconds, growing until the last step before the drift's end
    rising = [bias for bias in seen if bias > 0]
    assert rising == sorted(rising) and len(set(rising)) == len(rising)
    assert len(rising) >= drift.seconds / 15 - 2
    last = drift.offset(drift.seconds - 15)
    assert max(seen) == pytest.approx(last) and max(seen) < drift.offset(drift.seconds)
    results = [action["result"] for action in attack.actions]
    assert results[0] == "started" and results[-1] == f"was {last:+.6g} off"


def test_a_cancelled_live_drift_leaves_no_bias_and_a_standalone_one_says_it_cannot_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live_attacks, "DRIFT_TICK", 0.0)  # a setting per step, however busy the host
    plant = default_plant()
    simulation = PlantSimulation(plant, 2)
    attack = LiveAttack(plant, scenario("drifting-sensor"), Targets({}), simulation=simulation)
    pump = simulation.model("pump-skid-1")

    async def cancel_midway() -> float:
        running = asyncio.create_task(attack.run())
        while simulation.elapsed < 300:
            simulation.step(10.0)
            await asyncio.sleep(0)
        midway = pump.bias("discharge_pressure")
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        return midway

    assert asyncio.run(cancel_midway()) > 0.1
    assert pump.bias("discharge_pressure") == 0.0
    standalone = asyncio.run(LiveAttack(plant, scenario("drifting-sensor"), Targets({})).run())
    (action,) = standalone["actions"]
    assert action["result"].startswith("not carried out")
