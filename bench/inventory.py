"""The inventory's cost on the sensor, against tshark's endpoint and conversation tables.

Input: the simulated plant's traffic (`plantwarden sim generate`, seed 5: PLCs, HMI, historian,
engineering workstation, telemetry, IT services, ARP and LLDP). In one process, pinned to one
core, CPU time, the fastest of `REPEATS`:

- the sensor alone (every protocol, identity frames on, records to a sink that keeps nothing);
- the sensor with the inventory feed (`monitoring.inventory_feed.InventoryFeed`): sightings from
  identity frames, IP traffic and the industrial protocols into the asset book, every record
  into the edge book, and at the end the snapshot with the roles;
- tshark on the same file doing the nearest thing it does: who is there and who talks to whom
  (`-q -z endpoints,eth -z endpoints,ip -z conv,ip -z conv,tcp`), pinned to the same core.

Printed: packets per CPU second of each, the feed's cost per packet, and the ratio to tshark.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from plantwarden.capture.pcap import read_capture
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import WriteReport
from plantwarden.monitoring.inventory_feed import InventoryFeed
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.sensor import Sensor
from plantwarden.sim.traffic.generator import generate

REPEATS = 5
PACKETS = 1_000_000
TSHARK_JOB = ("-q", "-z", "endpoints,eth", "-z", "endpoints,ip", "-z", "conv,ip", "-z", "conv,tcp")


class _Discard:
    """A records sink that keeps nothing (the records plane is measured by bench.records)."""

    def write(self, batch: RecordBatch) -> WriteReport:
        return WriteReport(records=len(batch))


def _core() -> int:
    return max(os.sched_getaffinity(0))


def _sensor(capture: Path, with_feed: bool) -> tuple[float, int, int]:
    """CPU seconds, packets, and the assets found (0 without the feed)."""
    batches = list(read_capture(capture))
    feed = InventoryFeed("bench", "plant", _Discard()) if with_feed else None
    sensor = Sensor(None, feed or _Discard(), tuple(PROTOCOLS.values()), True)
    started = time.process_time()
    for batch in batches:
        modbus = sensor.process(batch)
        if feed is not None:
            feed.observe(sensor, batch, modbus)
    counters = sensor.finish()
    assets = len(feed.snapshot().roles) if feed is not None else 0
    return time.process_time() - started, counters.packets, assets


def _tshark(capture: Path) -> float:
    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark is not installed: apt-get install tshark")
    command = ["taskset", "-c", str(_core()), tshark, "-n", "-r", str(capture), *TSHARK_JOB]
    started = os.times()
    subprocess.run(command, check=True, capture_output=True)
    ended = os.times()
    return (ended.children_user - started.children_user) + (ended.children_system - started.children_system)


def run(*, quick: bool = False) -> None:
    """Print the sensor's rate with and without the inventory feed, and tshark's."""
    repeats = 1 if quick else REPEATS
    packets = PACKETS // 10 if quick else PACKETS
    os.sched_setaffinity(0, {_core()})
    with tempfile.TemporaryDirectory(prefix="pw-bench-inventory-") as folder:
        capture = Path(folder) / "plant.pcap"
        generate(capture, seed=5, packets=packets)
        bare = min(_sensor(capture, False)[0] for _ in range(repeats))
        fed = [_sensor(capture, True) for _ in range(repeats)]
        with_feed, count, assets = min(fed)
        theirs = min(_tshark(capture) for _ in range(repeats))
    print(f"## inventory: {count:,} packets of the plant, one core (CPU time), fastest of {repeats}")
    print(f"sensor alone                  {bare:6.2f} s  {count / bare:>11,.0f} packets/s")
    print(
        f"sensor with the inventory     {with_feed:6.2f} s  {count / with_feed:>11,.0f} packets/s"
        f"  (+{(with_feed - bare) / count * 1e6:.2f} us a packet; {assets} assets)"
    )
    print(f"tshark endpoints + convs      {theirs:6.2f} s  {count / theirs:>11,.0f} packets/s")
    print(f"sensor with the inventory: x{theirs / with_feed:.1f} tshark")
