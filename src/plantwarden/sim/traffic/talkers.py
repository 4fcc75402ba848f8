"""The plant's hosts as talkers: each wakes at a time, draws its exchange into the output and says
when it wakes next (None: never again). Every talker draws from its own random stream, so the
same seed gives the same traffic.
"""

from __future__ import annotations

from typing import Protocol

from plantwarden.sim import mqtt
from plantwarden.sim.behaviour import (
    CONSOLE_PORT,
    DNS_PORT,
    ENGINEERING_MEAN_GAP,
    HISTORIAN_PERIOD,
    HMI_POLL_PERIOD,
    MQTT_PORT,
    NTP_PORT,
    TELEMETRY_PERIOD,
    device_key,
    engineering_change,
    historian_poll,
    hmi_poll,
    mqtt_client_id,
    telemetry_payload,
    telemetry_topic,
    telemetry_values,
)
from plantwarden.sim.modbus_messages import read_device_identification
from plantwarden.sim.plant import Host
from plantwarden.sim.traffic import payloads
from plantwarden.sim.traffic.modbus_link import ModbusLink
from plantwarden.sim.traffic.network import BROADCAST, INTERNET, mac_of
from plantwarden.sim.traffic.run import PHYSICS_STEP, Run
from plantwarden.sim.traffic.truth import Poll
from plantwarden.sim.wire import (
    LLDP_BRIDGE,
    Link,
    LldpAnnouncement,
    TcpConnection,
    arp_frame,
    ip_bytes,
    lldp_frame,
    udp_frame,
)

PIPELINE_RATE = 0.3
"""How often the HMI sends a poll cycle's requests in one segment (and the PLC answers in one)."""
LLDP_PERIOD = 30.0
"""LLDP's default transmit interval (IEEE 802.1AB msgTxInterval)."""
SWITCH_DESCRIPTION = "Industrial managed Ethernet switch, 8 ports, firmware 3.2.1"


class Talker(Protocol):
    """A host's behaviour: act at `now`, return when to act next."""

    def wake(self, now: float) -> float | None:
        """Draw what happens at `now`; the time of the next wake, or None to stop."""


class PhysicsClock:
    """Steps the process once a simulated second."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def wake(self, now: float) -> float:
        self.run.step_physics()
        return now + PHYSICS_STEP


class ModbusPoller:
    """A client polling one PLC on a persistent connection (the HMI, the historian)."""

    def __init__(self, run: Run, source: str, plc: str, period: float, pipeline_rate: float) -> None:
        self.run = run
        self.source = source
        self.plc = run.plant.plc(plc)
        self.period = period
        self.pipeline_rate = pipeline_rate
        self.rng = run.rng(f"{source}:{plc}")
        self.requests = hmi_poll(self.plc) if source.startswith("hmi") else historian_poll(self.plc)
        self.link: ModbusLink | None = None

    def wake(self, now: float) -> float:
        if self.link is None:
            self.link = ModbusLink(self.run, self.source, self.plc.name, self.rng)
            self.run.out.ledger.flows["modbus"] += 1
            return self.link.open(now) + self.rng.uniform(0.01, 0.2)
        pipelined = self.rng.random() < self.pipeline_rate
        end = self.link.exchange(now, self.requests, pipelined=pipelined)
        self.link.ack(end + self.rng.uniform(0.0005, 0.2))
        return now + self.period + self.rng.uniform(-0.004, 0.004)


class EngineeringWorkstation:
    """The engineer now and then identifies a PLC and changes a setpoint, on a new connection."""

    def __init__(self, run: Run, source: str = "eng-ws-1") -> None:
        self.run = run
        self.source = source
        self.rng = run.rng(source)
        self.candidates = [
            plc for plc in run.plant.plcs if any("engineer" in r.writable_by for r in plc.registers)
        ]

    def wake(self, now: float) -> float:
        plc = self.rng.choice(self.candidates)
        change = engineering_change(plc, self.rng)
        link = ModbusLink(self.run, self.source, plc.name, self.rng)
        self.run.out.ledger.flows["modbus"] += 1
        time = link.open(now)
        if self.rng.random() < 0.3:
            time = link.exchange(time + 0.05, [read_device_identification(1)], pipelined=False)
        time = link.exchange(time + self.rng.uniform(0.5, 3.0), change.requests, pipelined=False)
        link.close(time + self.rng.uniform(0.5, 2.0))
        return now + self.rng.expovariate(1 / ENGINEERING_MEAN_GAP)


class TelemetryPublisher:
    """A PLC publishing its measurements to the broker every period, on a persistent MQTT connection."""

    def __init__(self, run: Run, plc: str, broker: str = "broker-1") -> None:
        self.run = run
        self.plc = run.plant.plc(plc)
        self.broker = broker
        self.rng = run.rng(f"telemetry:{plc}")
        self.key = device_key(run.seed, plc)
        self.topic = telemetry_topic(run.plant, self.plc)
        self.client_id = mqtt_client_id(run.plant, self.plc)
        self.sequence = 0
        self.connection: TcpConnection | None = None

    def wake(self, now: float) -> float:
        out = self.run.out
        rtt = self.run.rtt(self.plc.name, self.broker)
        if self.connection is None:
            self.connection = self.run.network.tcp(self.plc.name, self.broker, MQTT_PORT)
            out.ledger.flows["mqtt"] += 1
            for segment in self.connection.handshake(now, rtt):
                out.add(segment)
            connect = self._poll(mqtt.CONNECT)
            out.add(
                self.connection.send(now + rtt + 0.001, True, mqtt.connect(self.client_id)), polls=connect
            )
            connack = (Poll(connect[0].token),)
            out.add(self.connection.send(now + 2 * rtt + 0.002, False, mqtt.connack()), polls=connack)
            return now + self.rng.uniform(0.5, TELEMETRY_PERIOD)
        self.sequence += 1
        values = telemetry_values(self.plc, self.run.simulation.model(self.plc.name).values())
        payload = telemetry_payload(self.plc.name, self.sequence, now, values, self.key)
        publish = mqtt.publish(self.topic, payload)
        out.add(self.connection.send(now, True, publish), polls=self._poll(mqtt.PUBLISH))
        out.add(self.connection.ack(now + rtt + self.rng.uniform(0.0, 0.04), False))
        return now + TELEMETRY_PERIOD + self.rng.uniform(-0.01, 0.01)

    def _poll(self, packet_type: int) -> tuple[Poll]:
        """The ledger's mark of a request of this connection (a publish's item is its topic)."""
        key = (self.plc.host.address, self.run.network.host(self.broker).address, "mqtt", packet_type)
        return (Poll(self.run.out.ledger.polling.token(), key, (self.topic,)),)


class UdpClient:
    """DNS lookups (to the domain controller) or NTP (to it as the plant's time server)."""

    def __init__(self, run: Run, source: str, protocol: str, period: float, server: str = "dc-1") -> None:
        self.run = run
        self.source = source
        self.protocol = protocol
        self.period = period
        self.server = server
        self.rng = run.rng(f"{protocol}:{source}")
        self.port = run.network.ephemeral_port(source)

    def wake(self, now: float) -> float:
        network, out = self.run.network, self.run.out
        route = network.route(self.source, self.server)
        rtt = self.run.rtt(self.source, self.server)
        server_host = network.host(self.server)
        server_address = ip_bytes(server_host.address)
        client = network.ip_hosts[self.source]
        if self.protocol == "dns":
            name = self.rng.choice(payloads.DNS_NAMES)
            identifier = self.rng.randrange(0x10000)
            query, answer = (
                payloads.dns_query(identifier, name),
                payloads.dns_response(identifier, name, server_address),
            )
            ports = (self.rng.randrange(49152, 65536), DNS_PORT)
        else:
            query, answer = (
                payloads.ntp_request(now),
                payloads.ntp_response(now, now + rtt / 2, now + rtt / 2 + 0.00002),
            )
            ports = (NTP_PORT, NTP_PORT)
        out.ledger.flows[self.protocol] += 1
        out.frame(now, udp_frame(route.link, client, server_address, ports, query))
        reply_link = route.link.reversed()
        server = network.ip_hosts[self.server]
        client_address = ip_bytes(network.host(self.source).address)
        out.frame(
            now + rtt,
            udp_frame(reply_link, server, client_address, (ports[1], ports[0]), answer, route.hops_back),
        )
        return now + self.period * self.rng.uniform(0.5, 1.5)


class WebSession:
    """A TLS session from the office to a web server outside, or an engineer looking at the console."""

    def __init__(self, run: Run, source: str, destination: str, period: float) -> None:
        self.run = run
        self.source = source
        self.destination = destination
        self.period = period
        self.rng = run.rng(f"web:{source}:{destination}")

    def wake(self, now: float) -> float:
        out, rng = self.run.out, self.rng
        external = self.destination == INTERNET.name
        port = 443 if external else CONSOLE_PORT
        connection = self.run.network.tcp(self.source, self.destination, port)
        rtt = self.run.rtt(self.source, self.destination)
        out.ledger.flows["https" if external else "http"] += 1
        time = now
        for segment in connection.handshake(time, rtt):
            out.add(segment)
        time += rtt + 0.001
        for _ in range(rng.randint(1, 4)):
            request, response = self._exchange(external)
            out.add(connection.send(time, True, request))
            time += rtt + rng.uniform(0.002, 0.03)
            out.add(connection.send(time, False, response))
            time += rng.uniform(0.05, 2.0)
        for segment in connection.close(time, rtt):
            out.add(segment)
        return now + self.period * rng.uniform(0.3, 1.7)

    def _exchange(self, external: bool) -> tuple[bytes, bytes]:
        rng = self.rng
        if external:
            return payloads.tls_records(rng, (rng.randint(80, 600),)), payloads.tls_records(
                rng, (rng.randint(200, 1300),)
            )
        path = rng.choice(("/", "/alerts", "/inventory", "/zones"))
        request = payloads.http_request(
            "GET", path, "console-1:8000", (("Cookie", "pw_session=" + rng.randbytes(16).hex()),)
        )
        body = (
            b"<!doctype html><html><head><title>Plantwarden</title></head><body>"
            + bytes(rng.randint(100, 900))
            + b"</body></html>"
        )
        return request, payloads.http_response(200, "OK", body.replace(b"\x00", b" "))


class ArpChatter:
    """A zone's router refreshing its ARP entries for the hosts of its zone, one host a wake."""

    def __init__(self, run: Run, zone: str, period: float) -> None:
        self.run = run
        self.zone = zone
        self.period = period
        self.rng = run.rng(f"arp:{zone}")
        self.hosts = [host for host in run.plant.hosts if host.zone == zone]
        self.router_address = ip_bytes(str(run.plant.zone(zone).network.network_address + 1))

    def wake(self, now: float) -> float:
        host = self.rng.choice(self.hosts)
        network, out = self.run.network, self.run.out
        router_mac = network.router_mac(self.zone)
        vlans = network.vlans(self.zone)
        target = (mac_of(host.name), ip_bytes(host.address))
        request = arp_frame(
            Link(router_mac, BROADCAST, vlans), True, (router_mac, self.router_address), (bytes(6), target[1])
        )
        reply = arp_frame(
            Link(target[0], router_mac, vlans), False, target, (router_mac, self.router_address)
        )
        out.ledger.flows["arp"] += 1
        out.frame(now, request)
        out.frame(now + 0.0003, reply)
        return now + self.period * self.rng.uniform(0.5, 1.5)


class LldpAnnouncer:
    """A managed switch announcing itself by LLDP on its ports (the standard's 30 s interval):
    chassis and port, name and description, bridge capability, its management address."""

    def __init__(self, run: Run, host: Host, period: float = LLDP_PERIOD) -> None:
        self.run = run
        self.host = host
        self.period = period
        self.rng = run.rng(f"lldp:{host.name}")

    def wake(self, now: float) -> float:
        self.run.out.ledger.flows["lldp"] += 1
        announcement = LldpAnnouncement(
            mac_of(self.host.name),
            port=f"port-{self.rng.randint(1, 8)}",
            system_name=self.host.name,
            system_description=SWITCH_DESCRIPTION,
            capabilities=LLDP_BRIDGE,
            management=ip_bytes(self.host.address),
        )
        self.run.out.frame(now, lldp_frame(announcement))
        return now + self.period + self.rng.uniform(-0.05, 0.05)


def everyday_talkers(run: Run) -> list[Talker]:
    """The plant's normal traffic: physics, polling, engineering, telemetry, IT services, ARP."""
    plant = run.plant
    talkers: list[Talker] = [PhysicsClock(run)]
    for plc in plant.plcs:
        talkers.append(ModbusPoller(run, "hmi-1", plc.name, HMI_POLL_PERIOD, PIPELINE_RATE))
        talkers.append(ModbusPoller(run, "historian-1", plc.name, HISTORIAN_PERIOD, 0.0))
        talkers.append(TelemetryPublisher(run, plc.name))
        talkers.append(UdpClient(run, plc.name, "ntp", 64.0))
    talkers.append(EngineeringWorkstation(run))
    for source in ("office-ws-1", "erp-server", "eng-ws-1", "hmi-1", "historian-1"):
        talkers.append(UdpClient(run, source, "dns", 30.0))
    talkers.append(WebSession(run, "office-ws-1", INTERNET.name, 20.0))
    talkers.append(WebSession(run, "eng-ws-1", "console-1", 300.0))
    for zone in plant.zones:
        talkers.append(ArpChatter(run, zone.name, 30.0))
    talkers.extend(LldpAnnouncer(run, host) for host in plant.hosts if host.role == "device")
    return talkers
