"""The sensor's summary says what the flow table had to give up."""

from __future__ import annotations

from plantwarden.capture.batch import PacketBatch
from plantwarden.monitoring.sensor import Sensor, SensorOptions
from plantwarden.monitoring.summary import summary_lines
from plantwarden.sim.wire import IpHost, Link, TcpConnection, TcpEnd, ip_bytes, mac_bytes


def test_flows_evicted_from_a_full_table_are_counted_and_shown() -> None:
    link = Link(mac_bytes("02:00:00:00:00:01"), mac_bytes("02:00:00:00:00:02"))
    frames = []
    for port in range(5):
        client = TcpEnd(IpHost(ip_bytes("10.0.0.1")), 40000 + port, 1)
        tcp = TcpConnection(client, TcpEnd(IpHost(ip_bytes("10.0.0.2")), 502, 1), link)
        frames.append((port * 1_000_000_000, tcp.syn(float(port)).frame))
    sensor = Sensor(SensorOptions(max_flows=2))
    sensor.process(PacketBatch.from_packets(frames[:3]))
    sensor.process(PacketBatch.from_packets(frames[3:]))
    counters = sensor.finish()
    assert counters.flows_evicted == 3 and counters.flow_records == 5
    assert any("5 flows (3 evicted early" in line for line in summary_lines(counters, 1.0, None))
