"""The sensor on the industrial protocols beside Modbus, against tshark, on the shared captures.

Input, per protocol: every shared capture of it (`../shared/datasets`, the inventory's column of
what tshark decodes), its Ethernet IPv4 packets replicated until there are at least 1,000,000
(200,000 with `--quick`). Each capture of each replica moves every IPv4 address by its own
number (the third octet, then the second), so that every capture and every replica holds new
flows: not retransmissions of another's (several shared captures are variants of one trace);
times go on increasing. The mixed set is every protocol's shared captures interleaved,
protocol by protocol, and replicated. Each capture is read by the sensor as `sensor run` reads
it (all protocols and the identity frames on, no records: layers, flows, Modbus, and the protocols' fast
and exact paths) in a child pinned to one core, CPU time; and by tshark on the same core
extracting one field of the same protocol (every protocol's on the mixed set). Both the fastest
of `REPEATS`. Printed: packets/s, PDUs, the share of segments on the exact path, the ratio.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plantwarden.capture.batch import LINKTYPE_ETHERNET
from plantwarden.capture.layers.decode import decode_layers
from plantwarden.capture.pcap import read_capture

DATASETS = Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
REPEATS = 2
TSHARK = {
    "s7comm": ("s7comm", "s7comm.header.rosctr"),
    "enip": ("enip", "enip.command"),
    "iec104": ("iec60870_104", "iec60870_104.type"),
    "dnp3": ("dnp3", "dnp3.ctl.prifunc"),
    "opcua": ("opcua", "opcua.transport.type"),
    "bacnet": ("bvlc", "bvlc.function"),
}
"""Per protocol: its name in the inventory's column of what tshark decodes, and one field tshark
extracts of each PDU (the least it can be asked for with the protocol dissected)."""

CHILD = """
import json, sys, time
from pathlib import Path
import os
os.sched_setaffinity(0, {int(sys.argv[2])})
from plantwarden.capture.pcap import read_capture
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.sensor import Sensor
from plantwarden.monitoring.tuning import keep_freed_memory
keep_freed_memory()
sensor = Sensor(protocols=tuple(PROTOCOLS.values()), identity=True)
started = time.process_time()
for batch in read_capture(Path(sys.argv[1])):
    sensor.process(batch)
counters = sensor.finish()
cpu = time.process_time() - started
protocols = {name: [c.segments, c.exact_segments, c.pdus] for name, c in counters.protocols.items()}
print(json.dumps({"cpu": cpu, "packets": counters.packets, "protocols": protocols}))
"""


def _core() -> int:
    return max(os.sched_getaffinity(0))


def captures(tshark_name: str) -> list[Path]:
    """The shared captures tshark decodes `tshark_name` in."""
    inventory = DATASETS / "PCAP_INVENTORY.tsv"
    if not inventory.exists():
        raise SystemExit(f"the shared datasets are not at {DATASETS} (set PW_DATASETS)")
    rows = [line.split("\t") for line in inventory.read_text().splitlines()[1:]]
    return [DATASETS / row[0] for row in rows if len(row) > 3 and tshark_name in row[3].split()]


def ipv4_packets(paths: list[Path]) -> list[tuple[bytes, int, int]]:
    """The Ethernet IPv4 packets of `paths`: (frame, offset of its IPv4 header, capture number)."""
    found = []
    for number, path in enumerate(paths):
        for batch in read_capture(path):
            layers = decode_layers(batch)
            rows = np.flatnonzero((batch.linktypes == LINKTYPE_ETHERNET) & (layers.ip_version == 4))
            for row in rows.tolist():
                found.append((batch.packet(row), int(layers.l3_offset[row] - batch.offsets[row]), number))
    return found


def write_replicated(path: Path, packets: list[tuple[bytes, int, int]], count: int) -> int:
    """Write `packets` replicated (addresses moved per capture and replica) up to at least
    `count` packets."""
    replicas = -(-count // len(packets))
    captures = 1 + max(number for _, _, number in packets)
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        step = 1000  # microseconds between packets
        for replica in range(replicas):
            for index, (frame, ip, number) in enumerate(packets):
                moved = bytearray(frame)
                shift = replica * captures + number
                for at in (ip + 12, ip + 16):  # source and destination address
                    moved[at + 2] = (moved[at + 2] + shift) & 0xFF
                    moved[at + 1] = (moved[at + 1] + (shift >> 8)) & 0xFF
                micros = (replica * len(packets) + index) * step
                out.write(
                    struct.pack(
                        "<IIII",
                        1_700_000_000 + micros // 1_000_000,
                        micros % 1_000_000,
                        len(moved),
                        len(moved),
                    )
                )
                out.write(moved)
    return replicas * len(packets)


def interleave(path: Path, inputs: dict[str, list[tuple[bytes, int, int]]], count: int) -> int:
    """Every protocol's packets (each capture once), one protocol's packet after another's while
    it has some, replicated."""
    offsets = np.cumsum([0] + [1 + max(n for _, _, n in packets) for packets in inputs.values()])
    lists = [
        [(frame, ip, number + int(offset)) for frame, ip, number in packets]
        for packets, offset in zip(inputs.values(), offsets, strict=False)
    ]
    mixed = [packet for group in itertools.zip_longest(*lists) for packet in group if packet is not None]
    return write_replicated(path, mixed, count)


@dataclass(frozen=True)
class SensorRun:
    cpu: float
    protocols: dict[str, tuple[int, int, int]]
    """Per protocol: segments (or datagrams), those on the exact path, PDUs."""


def measure_sensor(capture: Path) -> SensorRun:
    """The sensor over `capture`, the fastest of `REPEATS` children pinned to one core."""
    runs = []
    for _ in range(REPEATS):
        command = [sys.executable, "-c", CHILD, str(capture), str(_core())]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        figures = json.loads(result.stdout)
        protocols = {name: (int(a), int(b), int(c)) for name, (a, b, c) in figures["protocols"].items()}
        runs.append(SensorRun(float(figures["cpu"]), protocols))
    return min(runs, key=lambda run: run.cpu)


def measure_tshark(capture: Path, fields: list[str]) -> float:
    """CPU seconds of tshark extracting `fields` from `capture` on the same core (the fastest run)."""
    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark is not installed: apt-get install tshark")
    command = ["taskset", "-c", str(_core()), tshark, "-n", "-r", str(capture), "-T", "fields"]
    for field in fields:
        command += ["-e", field]
    times = []
    for _ in range(REPEATS):
        before = os.times()
        subprocess.run(command, capture_output=True, check=True)
        after = os.times()
        user, system = (
            after.children_user - before.children_user,
            after.children_system - before.children_system,
        )
        times.append(user + system)
    return min(times)


def run(quick: bool = False) -> None:
    """Print packets per CPU second of the sensor per protocol and on the mixed set, and tshark's."""
    count = 200_000 if quick else 1_000_000
    inputs = {name: ipv4_packets(captures(tshark_name)) for name, (tshark_name, _) in TSHARK.items()}
    print(f"input: the shared captures of each protocol, replicated to {count:,} packets; one core, CPU time")
    print(f"{'':8} {'packets':>10} {'PDUs':>10} {'exact':>7} {'sensor/s':>10} {'tshark/s':>9}  ratio")
    with tempfile.TemporaryDirectory(prefix="pw-bench-protocols-") as folder:
        for name in [*inputs, "mixed"]:
            capture = Path(folder) / f"{name}.pcap"
            if name == "mixed":
                written, chosen = interleave(capture, inputs, count), list(TSHARK)
            else:
                written, chosen = write_replicated(capture, inputs[name], count), [name]
            sensor = measure_sensor(capture)
            segments, exact, pdus = (sum(sensor.protocols[n][i] for n in chosen) for i in range(3))
            rate = written / sensor.cpu
            theirs = written / measure_tshark(capture, [TSHARK[n][1] for n in chosen])
            share = exact / max(segments, 1)
            print(
                f"{name:8} {written:>10,} {pdus:>10,} {share:>7.2%} {rate:>10,.0f} {theirs:>9,.0f}"
                f"  x{rate / theirs:.1f}"
            )
