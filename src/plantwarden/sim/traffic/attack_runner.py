"""Attack scenarios drawn into the capture: each step's frames carry the attack's label, and the
ledger keeps a record of what the attack did.

A probe of an open port is answered SYN-ACK and reset by the scanner; of a closed port on a live
host, RST-ACK; of an address nobody holds, nothing. Modbus sessions get the PLC's real answers
(writes change the process). Login attempts meet the console's answers (401, then 429 once the
console throttles). Forged telemetry is published under the device's client id and topic with
a tag that does not verify. A drifting sensor sends nothing of its own: its PLC reports the
measurement off the process by a bias set again every second (the served register image at once),
and the frames that carry the report are labelled while it lasts (`Output.tamper`). An attack
the capture ends before gets the capture's last frame time as its end and `clipped: true`.
"""

from __future__ import annotations

from typing import Any

from plantwarden.sim import mqtt
from plantwarden.sim.attacks import (
    LoginAttempts,
    ModbusSession,
    Pause,
    Probe,
    Scenario,
    SensorDrift,
    Step,
    TelemetryForgery,
)
from plantwarden.sim.behaviour import (
    CONSOLE_PORT,
    MODBUS_PORT,
    MQTT_PORT,
    READ_FUNCTION,
    image_tables,
    mqtt_client_id,
    telemetry_payload,
    telemetry_topic,
    telemetry_values,
)
from plantwarden.sim.traffic import payloads
from plantwarden.sim.traffic.modbus_link import ModbusLink
from plantwarden.sim.traffic.output import TamperedReports
from plantwarden.sim.traffic.run import Run
from plantwarden.sim.wire import Segment, TcpConnection

OPEN_PORTS = {"plc": {MODBUS_PORT}, "device": {80}}
OPEN_BY_HOST = {"broker-1": {MQTT_PORT}, "console-1": {CONSOLE_PORT}, "dc-1": {53, 88, 389, 445}}
THROTTLED_AFTER = 3
DRIFT_TICK = 1.0
"""Seconds between two settings of a drifting sensor's bias (the physics' step)."""


class AttackRunner:
    """One instance of a scenario, carried out step by step (a pause ends a wake)."""

    def __init__(self, run: Run, scenario: Scenario, instance: str) -> None:
        self.run = run
        self.scenario = scenario
        self.rng = run.rng(f"attack:{instance}")
        self.steps = scenario.build(run.plant, self.rng)
        self.position = 0
        self.label = (scenario.name, instance, scenario.technique)
        self.scan_port = run.network.ephemeral_port("office-ws-1")
        self.record: dict[str, Any] = {
            "attack": scenario.name,
            "instance": instance,
            "technique": scenario.technique,
            "description": scenario.description,
            "sources": [],
            "targets": [],
            "actions": [],
        }
        run.out.ledger.attacks.append(self.record)
        run.out.at_finish(self._clip)
        self.drift: tuple[SensorDrift, float, TamperedReports] | None = None

    def wake(self, now: float) -> float | None:
        if self.position == 0:
            self.record["start"] = round(now, 6)
        time = now
        if self.drift is not None and self._drifting(now):
            return now + DRIFT_TICK
        while self.position < len(self.steps):
            step = self.steps[self.position]
            self.position += 1
            if isinstance(step, Pause):
                return time + step.seconds
            if isinstance(step, SensorDrift):
                self._begin_drift(step, time)
                return time + DRIFT_TICK
            time = self._step(step, time) + self.rng.uniform(0.001, 0.01)
        self.record["end"] = round(time, 6)
        return None

    def _clip(self, last: float) -> None:
        """The capture ended before the attack did: it ends with the capture."""
        if "end" in self.record:
            return
        self.record["clipped"] = True
        if "start" in self.record:
            self.record["end"] = round(max(last, self.record["start"]), 6)
        if self.drift is not None:
            step = self.drift[0]
            final = self.run.simulation.model(step.plc).bias(step.variable)
            self.record["drift"].update(end=self.record["end"], final_offset=round(final, 6))

    def _note(self, source: str, target: str, action: str) -> None:
        if source not in self.record["sources"]:
            self.record["sources"].append(source)
        if target not in self.record["targets"]:
            self.record["targets"].append(target)
        self.record["actions"].append(action)

    def _add(self, segments: list[Segment]) -> None:
        for segment in segments:
            self.run.out.add(segment, label=self.label)

    def _step(self, step: Step, time: float) -> float:
        if isinstance(step, Probe):
            return self._probe(step, time)
        if isinstance(step, ModbusSession):
            return self._modbus(step, time)
        if isinstance(step, LoginAttempts):
            return self._logins(step, time)
        assert isinstance(step, TelemetryForgery)
        return self._forge(step, time)

    def _probe(self, step: Probe, time: float) -> float:
        network = self.run.network
        host = network.host_at(step.address)
        connection = network.tcp(step.source, host.name, step.port, source_port=self.scan_port)
        self._add([connection.syn(time)])
        rtt = self.run.rtt(step.source, host.name)
        if host.name.startswith("unknown-"):
            self._note(step.source, step.address, f"probe {step.address}:{step.port}: no answer")
            return time
        if step.port in OPEN_PORTS.get(host.role, set()) | OPEN_BY_HOST.get(host.name, set()):
            self._add(
                [
                    connection.syn_ack(time + rtt, time + rtt / 2, time),
                    connection.reset(time + rtt + 0.00005, True),
                ]
            )
            self._note(step.source, step.address, f"probe {step.address}:{step.port}: open")
        else:
            self._add([connection.refuse(time + rtt)])
            self._note(step.source, step.address, f"probe {step.address}:{step.port}: closed")
        return time

    def _modbus(self, step: ModbusSession, time: float) -> float:
        link = ModbusLink(self.run, step.source, step.plc, self.rng, self.label)
        time = link.open(time)
        for request in step.requests:
            time = link.exchange(time + self.rng.uniform(0.01, 0.1), [request], pipelined=False)
            detail = (
                f"values {list(request.values)}" if request.values else f"sub-function {request.sub_function}"
            )
            self._note(step.source, step.plc, f"{request.name} at {request.address} ({detail})")
        return link.close(time + 0.05)

    def _logins(self, step: LoginAttempts, time: float) -> float:
        connection = self.run.network.tcp(step.source, step.target, CONSOLE_PORT)
        rtt = self.run.rtt(step.source, step.target)
        self._add(connection.handshake(time, rtt))
        time += rtt + 0.001
        host = f"{step.target}:{CONSOLE_PORT}"
        csrf = self.rng.randbytes(24).hex()
        page = payloads.http_request("GET", "/login", host)
        form_page = payloads.http_response(
            200,
            "OK",
            b"<form method=post action=/login></form>",
            (("set-cookie", f"pw_login_csrf={csrf}; HttpOnly; Path=/; SameSite=strict"),),
        )
        time = self._http(connection, time, rtt, page, form_page)
        for number, password in enumerate(step.passwords, start=1):
            body = f"username={step.username}&password={password}&csrf_token={csrf}&next=%2F".encode()
            headers = (
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Cookie", f"pw_login_csrf={csrf}"),
            )
            request = payloads.http_request("POST", "/login", host, headers, body)
            status, reason = (
                (401, "Unauthorized") if number <= THROTTLED_AFTER else (429, "Too Many Requests")
            )
            answer = payloads.http_response(
                status, reason, b"<p class=error>Invalid username or password.</p>"
            )
            time = self._http(connection, time + self.rng.uniform(0.2, 0.6), rtt, request, answer)
            self._note(step.source, step.target, f"login as {step.username!r}: {status}")
        self._add(connection.close(time + 0.01, rtt))
        return time + rtt

    def _http(
        self, connection: TcpConnection, time: float, rtt: float, request: bytes, answer: bytes
    ) -> float:
        self._add([connection.send(time, True, request)])
        time += rtt + self.rng.uniform(0.02, 0.3)
        self._add([connection.send(time, False, answer)])
        return time

    def _forge(self, step: TelemetryForgery, time: float) -> float:
        run = self.run
        plc = run.plant.plc(step.plc)
        values = telemetry_values(plc, run.simulation.model(plc.name).values())
        values.update(step.changes)
        # The attacker has no device key: the tag is made with one of its own and does not verify.
        forged = telemetry_payload(plc.name, 1, time, values, self.rng.randbytes(32))
        connection = run.network.tcp(step.source, "broker-1", MQTT_PORT)
        rtt = run.rtt(step.source, "broker-1")
        self._add(connection.handshake(time, rtt))
        time += rtt + 0.001
        self._add(
            [
                connection.send(time, True, mqtt.connect(mqtt_client_id(run.plant, plc))),
                connection.send(time + rtt, False, mqtt.connack()),
            ]
        )
        time += rtt + 0.002
        self._add([connection.send(time, True, mqtt.publish(telemetry_topic(run.plant, plc), forged))])
        self._add([connection.send(time + 0.001, True, mqtt.disconnect())])
        self._add(connection.close(time + 0.002, rtt))
        self._note(step.source, "broker-1", f"telemetry as {plc.name} with {step.changes}")
        return time + rtt

    def _begin_drift(self, step: SensorDrift, time: float) -> None:
        run = self.run
        plc = run.plant.plc(step.plc)
        register = plc.register(step.variable)
        run.simulation.model(plc.name).set_bias(register.name, 0.0)  # refuses what is no measurement
        reports = TamperedReports(
            plc.host.address,
            READ_FUNCTION[register.kind],
            register.addresses,
            telemetry_topic(run.plant, plc),
            self.label,
        )
        run.out.tamper(reports)
        self.drift = (step, time, reports)
        self.record["drift"] = {
            "plc": plc.name,
            "variable": register.name,
            "address": register.address,
            "read_function": reports.read_function,
            "unit": register.unit,
            "rate_per_second": step.rate_per_second,
            "seconds": step.seconds,
            "start": round(time, 6),
        }
        self._note(
            plc.name,
            plc.name,
            f"{register.name} reported drifting by {step.rate_per_second:g} {register.unit}/s",
        )

    def _drifting(self, now: float) -> bool:
        """Set the drifting sensor's bias for `now`; False (the report true again) once it is over."""
        assert self.drift is not None
        step, begun, reports = self.drift
        plc = self.run.plant.plc(step.plc)
        model = self.run.simulation.model(plc.name)
        over = now - begun >= step.seconds
        final = model.bias(step.variable)
        model.set_bias(step.variable, 0.0 if over else step.offset(now - begun))
        self.run.tables[plc.name] = image_tables(plc, model.registers())
        if not over:
            return True
        self.run.out.untamper(reports)
        self.drift = None
        self.record["drift"].update(end=round(now, 6), final_offset=round(final, 6))
        self._note(plc.name, plc.name, f"{step.variable} reported true again (was {final:+.6g} off)")
        return False
