"""The running plant: its clients, the software tap, the attacks over real sockets.

Each test runs its own plant on ports the system chooses (the PLCs listen on their own 127.10.x.y
addresses) and a site name of its own, so that its telemetry has its own topics and MQTT client
ids on the machine's Mosquitto (127.0.0.1:1883).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from plantwarden.sim import mqtt, runtime
from plantwarden.sim.attacks import scenario
from plantwarden.sim.behaviour import device_key, telemetry_topic, verify_telemetry
from plantwarden.sim.live_attacks import LiveAttack, Targets
from plantwarden.sim.live_net import LiveConnection
from plantwarden.sim.plant import Plant, default_plant
from plantwarden.sim.runtime import LiveOptions, LivePlant
from plantwarden.sim.tap import Tap
from tests.helpers import free_port, plantwarden, start_plantwarden, wait_for
from tests.tshark_support import SEVERITY_ERROR, counts, fields, tshark

T = TypeVar("T")
BROKER = ("127.0.0.1", 1883)


def run(work: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(work)


def own_plant() -> Plant:
    return Plant.from_dict({**default_plant().to_dict(), "site": f"test-{uuid.uuid4().hex[:10]}"})


def options(**changes: Any) -> LiveOptions:
    return LiveOptions(
        **{"port": 0, "poll_period": 0.2, "telemetry_period": 0.3, "broker": BROKER, **changes}
    )


def decode_as_modbus(live: LivePlant) -> list[str]:
    """tshark's decode-as rules for the PLCs' ports (ask while the plant runs)."""
    ports = sorted({port for _, port in live.servers.endpoints().values()})
    return [f"tcp.port=={port},mbtcp" for port in ports]


def test_the_tap_streams_what_the_plant_sends_and_tshark_reads_it(tmp_path: Path) -> None:
    capture = tmp_path / "tap.pcapng"

    async def scenario_() -> tuple[LivePlant, list[str]]:
        plant = own_plant()
        with capture.open("wb") as stream:
            tap = Tap(plant, stream)
            live = LivePlant(plant, options(engineering_gap=0.4), tap)
            await live.start()
            rules = decode_as_modbus(live)
            await asyncio.sleep(3.0)
            await live.stop()
            tap.close()
        return live, rules

    live, rules = run(scenario_())
    assert live.counters["polls"] >= 20 and live.counters["unanswered"] == 0
    assert live.counters["setpoint_changes"] >= 1 and live.counters["telemetry"] >= 6
    rows = _tshark_rows(capture, rules)
    assert rows, "the tap wrote no frames"
    assert not [row for row in rows if any(int(s) >= SEVERITY_ERROR for s in row[1].split(",") if s)]
    codes: Counter[str] = Counter()
    for row in rows:
        codes += counts(row[0])
    assert {"1", "2", "3", "4"} <= set(codes) and ({"6"} & set(codes) or {"16"} & set(codes))
    sources = {row[2] for row in rows}
    assert {"127.10.1.10", "127.10.1.30", "127.10.2.11", "127.10.3.13"} <= sources
    assert any("mqtt" in row[3] for row in rows)


def _tshark_rows(capture: Path, decode_as: list[str]) -> list[list[str]]:
    names = ["modbus.func_code", "_ws.expert.severity", "ip.src", "frame.protocols"]
    return fields(capture, names, decode_as=tuple(decode_as))


async def _attack(live: LivePlant, name: str, pause_scale: float = 0.02, **targets: Any) -> dict[str, Any]:
    ports = {plc: port for plc, (_, port) in live.servers.endpoints().items()}
    targeted = Targets(ports, **targets)
    attack = LiveAttack(
        live.plant, scenario(name), targeted, simulation=live.simulation, pause_scale=pause_scale
    )
    return await attack.run()


def test_writes_from_the_attacks_change_the_process() -> None:
    async def scenario_() -> tuple[dict[str, Any], dict[str, Any], LivePlant]:
        live = LivePlant(own_plant(), options(broker=None))
        await live.start()
        try:
            write = await _attack(live, "unauthorized-write")
            setpoint = await _attack(live, "out-of-range-setpoint")
        finally:
            await live.stop()
        return write, setpoint, live

    write, setpoint, live = run(scenario_())
    assert [action["result"] for action in write["actions"]] == ["answered", "answered"]
    tank = live.simulation.model("tank-1")
    assert tank.value("level_high_setpoint") == pytest.approx(92.0)
    assert tank.value("outlet_pump_on") == 0.0
    assert live.simulation.model("boiler-1").value("pressure_setpoint") == pytest.approx(14.0)
    assert setpoint["actions"][-1]["result"] == "answered [1400]"
    sources = {entry["client"].split("'")[1] for entry in live.writes if "'" in entry["client"]}
    assert {"127.10.0.10", "127.10.1.20"} <= sources


def broker_lines(
    grace: float, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> list[logging.LogRecord]:
    """What the plant logs of telemetry while its broker does not answer, `grace` s after its start."""
    monkeypatch.setattr(runtime, "BROKER_GRACE_SECONDS", grace)

    async def scenario_() -> None:
        live = LivePlant(own_plant(), options(broker=("127.0.0.1", free_port())))
        await live.start()
        try:
            await asyncio.sleep(0.5)
        finally:
            await live.stop()

    with caplog.at_level(logging.DEBUG, logger="plantwarden.sim.runtime"):
        run(scenario_())
    return [
        r for r in caplog.records if r.name == "plantwarden.sim.runtime" and "telemetry" in r.getMessage()
    ]


def test_a_broker_not_up_yet_at_the_start_is_one_info_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """At the demo's start the broker comes up beside the plant: a warning (six, one per PLC, at
    first) greeted every start for what is no fault."""
    lines = broker_lines(30.0, monkeypatch, caplog)
    assert [r.levelno for r in lines].count(logging.INFO) == 1
    assert "telemetry waits for the MQTT broker at 127.0.0.1:" in next(
        r.getMessage() for r in lines if r.levelno == logging.INFO
    )
    assert [r.levelno for r in lines].count(logging.DEBUG) == 5  # every PLC tried
    assert not [r for r in lines if r.levelno >= logging.WARNING]


def test_a_broker_still_away_after_the_start_is_one_warning_not_one_per_plc(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    lines = broker_lines(0.0, monkeypatch, caplog)
    off = [r for r in lines if "is off" in r.getMessage()]
    assert len(off) == 6  # every PLC tried
    assert [r.levelno for r in off].count(logging.WARNING) == 1


def test_an_attack_a_gateway_refuses_at_connect_is_recorded_not_an_error() -> None:
    """A security gateway closes the session of a client it knows no role for: the attack
    stopped with the error 'the PLC closed the connection in the middle of an answer' and no
    record."""

    async def scenario_() -> dict[str, Any]:
        async def refuse(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        gateway = await asyncio.start_server(refuse, "127.0.0.1", 0)
        live = LivePlant(own_plant(), options(broker=None))
        await live.start()
        try:
            return await _attack(live, "unauthorized-write", gateway=gateway.sockets[0].getsockname()[:2])
        finally:
            await live.stop()
            gateway.close()

    record = run(scenario_())
    results = [action["result"] for action in record["actions"]]
    assert results and all(r == "connection closed by the gateway" for r in results), results


def test_plc_stop_silences_the_plc_until_it_is_restarted() -> None:
    async def scenario_() -> tuple[dict[str, Any], dict[str, int]]:
        live = LivePlant(own_plant(), options(broker=None))
        await live.start()
        try:
            await asyncio.sleep(0.5)
            before = live.counters["unanswered"]
            attack = asyncio.create_task(_attack(live, "plc-stop", pause_scale=0.15))  # 4.5 s stopped
            await asyncio.sleep(3.5)  # the HMI gives up on an answer after 2 s
            during = live.counters["unanswered"] - before
            record = await attack
            await asyncio.sleep(2.5)  # a poll sent just before the restart still times out
            settled = live.counters["unanswered"]
            await asyncio.sleep(1.5)
            return record, {"during": during, "after_restart": live.counters["unanswered"] - settled}
        finally:
            await live.stop()

    record, unanswered = run(scenario_())
    assert [action["result"] for action in record["actions"]] == ["no answer", "no answer"]
    assert unanswered["during"] > 0, "the HMI's polls of mixer-1 should go unanswered while it listens only"
    assert unanswered["after_restart"] == 0


def test_the_scan_finds_the_plcs_and_identifies_them() -> None:
    async def scenario_() -> dict[str, Any]:
        live = LivePlant(own_plant(), options(broker=None))
        await live.start()
        try:
            return await _attack(live, "scan")
        finally:
            await live.stop()

    record = run(scenario_())
    probes = [action for action in record["actions"] if action["action"] == "probe"]
    assert len(probes) == 160
    assert sum(action["result"] == "open" for action in probes) == 6
    identified = [a for a in record["actions"] if a["action"].startswith("encapsulated_interface")]
    assert len(identified) == 6 and all(a["result"] == "answered" for a in identified)


def test_tampered_telemetry_reaches_subscribers_and_does_not_verify() -> None:
    plant = own_plant()
    tank = plant.plc("tank-1")

    async def scenario_() -> list[bytes]:
        subscriber = await LiveConnection.open("127.0.0.1", *BROKER)
        async with subscriber:
            await subscriber.send(mqtt.connect(f"{plant.site}.test-subscriber"))
            await subscriber.receive_exactly(4)
            await subscriber.send(mqtt.subscribe(1, telemetry_topic(plant, tank)))
            await subscriber.receive_exactly(5)
            live = LivePlant(plant, options(seed=9))
            await live.start()
            try:
                await asyncio.sleep(0.8)
                await _attack(live, "tampered-telemetry", broker=BROKER)
                await asyncio.sleep(0.3)
            finally:
                await live.stop()
            return await _drain_publishes(subscriber)

    payloads = run(scenario_())
    key = device_key(9, "tank-1")
    verdicts = Counter(verify_telemetry(payload, key) for payload in payloads)
    assert verdicts[True] >= 2 and verdicts[False] == 3
    forged = [json.loads(p) for p in payloads if not verify_telemetry(p, key)]
    assert all(message["values"]["level"] == 50.0 for message in forged)


async def _drain_publishes(connection: LiveConnection) -> list[bytes]:
    payloads: list[bytes] = []
    while True:
        try:
            first = await connection.receive_exactly(1, timeout=0.5)
        except TimeoutError:
            return payloads
        length_bytes = b""
        while not length_bytes or length_bytes[-1] & 0x80:
            length_bytes += await connection.receive_exactly(1)
        length, _ = mqtt.read_remaining_length(first + length_bytes)
        packet = first + length_bytes + await connection.receive_exactly(length)
        payloads.append(mqtt.parse_publish(packet)[1])


def test_brute_force_against_the_real_console_is_refused_then_throttled(tmp_path: Path) -> None:
    added = plantwarden("--data-dir", str(tmp_path), "user", "add", "admin", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    port = free_port()
    server = start_plantwarden("--data-dir", str(tmp_path), "serve", "--port", str(port), cwd=tmp_path)
    try:
        wait_for(lambda: True if _listening(port) else None, what="the console")
        record = run(_brute_force(port))
    finally:
        server.terminate()
        server.wait(timeout=20)
    statuses = [action["result"] for action in record["actions"]]
    assert len(statuses) == 25
    assert statuses[0] == "401" and "429" in statuses
    assert set(statuses) <= {"401", "429"}


async def _brute_force(port: int) -> dict[str, Any]:
    plant = default_plant()
    targets = Targets.on_port(plant, 502, ("127.0.0.1", port), BROKER)
    return await LiveAttack(plant, scenario("console-brute-force"), targets).run()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="capturing on lo needs root (CI and sessions here run as root)")
def test_a_real_capture_on_loopback_sees_the_plant(tmp_path: Path) -> None:
    dumpcap = shutil.which("dumpcap") or tshark()
    capture = tmp_path / "lo.pcapng"

    async def scenario_() -> list[str]:
        live = LivePlant(own_plant(), options(broker=None))
        await live.start()
        rules = decode_as_modbus(live)
        try:
            ports = sorted({port for _, port in live.servers.endpoints().values()})
            capture_filter = "net 127.10.0.0/16 and (" + " or ".join(f"port {p}" for p in ports) + ")"
            command = [
                dumpcap,
                "-q",
                "-i",
                "lo",
                "-f",
                capture_filter,
                "-a",
                "duration:3",
                "-w",
                str(capture),
            ]
            process = await asyncio.create_subprocess_exec(*command, stderr=asyncio.subprocess.DEVNULL)
            await process.wait()
        finally:
            await live.stop()
        return rules

    decoded = _tshark_rows(capture, run(scenario_()))
    codes: Counter[str] = Counter()
    for row in decoded:
        codes += counts(row[0])
    assert codes["3"] > 0 and codes["4"] > 0
    assert "127.10.1.10" in {row[2] for row in decoded}
