"""The sensor against tshark on the same capture, one core, CPU time.

Input: a capture of the simulated plant with every attack scenario (`plantwarden sim generate`,
seed 1): about 29 % of Modbus PDUs share a segment, 1 % are split across two, 0.5 % of Modbus
segments are retransmitted; VLAN and QinQ tags, IP and TCP options, DNS, NTP, TLS, HTTP, MQTT
and ARP beside Modbus. The process is pinned to one core and timed in CPU seconds, in a child
process each (so each starts cold and its peak memory is its own):

- dissection and flows: the sensor with no record writer (layers, flows, Modbus fast and exact
  paths, pairing);
- with records: the same, writing protocol and flow records to the records plane (SQLite) under
  the default storage policy;
- tshark reading the same file pinned to the same core, twice: extracting the function code
  alone, and doing the sensor's job (every Modbus field the sensor records, with request and
  response paired, and the TCP and UDP conversation tables).

Each measurement is taken `REPEATS` times (once each with `--quick`) and the fastest counts, for
the sensor and tshark alike, as `timeit` does: the machine only ever adds time (other work, a
cold cache), and the spread is printed. The share of Modbus segments taken by the exact path is
printed. The full run then measures the sensor's peak resident memory over a capture of about
1 GB (13 million packets).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, os, sys, time
from pathlib import Path
os.sched_setaffinity(0, {int(sys.argv[3])})
from plantwarden.capture.pcap import read_capture
from plantwarden.monitoring.sensor import Sensor
from plantwarden.monitoring.tuning import keep_freed_memory
keep_freed_memory()  # as `plantwarden sensor run` does
writer = None
if sys.argv[2] != "-":
    from plantwarden.core.records.partitions import SQLitePartitions
    from plantwarden.core.records.plane import RecordWriter
    writer = RecordWriter(SQLitePartitions(Path(sys.argv[2])), "bench")
sensor = Sensor(writer=writer)
started = time.process_time()
for batch in read_capture(Path(sys.argv[1])):
    sensor.process(batch)
counters = sensor.finish()
if writer is not None:
    writer.close()
cpu = time.process_time() - started
peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
print(json.dumps({"cpu": cpu, "packets": counters.packets, "exact": counters.exact_segments,
                  "segments": counters.modbus_segments, "pdus": counters.modbus_pdus,
                  "records": counters.protocol_records + counters.flow_records, "peak_mb": peak}))
"""


REPEATS = 3


def _core() -> int:
    return max(os.sched_getaffinity(0))


def measure_sensor(capture: Path, records: Path | None) -> dict[str, float]:
    """The sensor over `capture` in a child pinned to one core (records into `records`, if given)."""
    command = [sys.executable, "-c", CHILD, str(capture), str(records) if records else "-", str(_core())]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


SENSOR_FIELDS = (
    "mbtcp.trans_id",
    "mbtcp.unit_id",
    "modbus.func_code",
    "modbus.reference_num",
    "modbus.word_cnt",
    "modbus.bit_cnt",
    "modbus.exception_code",
    "modbus.regval_uint16",
    "modbus.request_frame",
    "modbus.response_time",
)
"""What the sensor records of each Modbus PDU, as tshark names it (with the answer's frame and
response time, which tshark finds by pairing as the sensor does)."""

TSHARK_JOBS = {
    "one field": ("-T", "fields", "-e", "modbus.func_code"),
    "the sensor's job": (
        "-T",
        "fields",
        *(argument for field in SENSOR_FIELDS for argument in ("-e", field)),
        "-z",
        "conv,tcp",
        "-z",
        "conv,udp",
    ),
}
"""tshark's two runs: the function code alone (the least it can be asked for with Modbus
dissected), and the sensor's job: every field the sensor records and the TCP and UDP
conversation tables (its flows)."""


def measure_tshark(capture: Path, job: tuple[str, ...]) -> float:
    """CPU seconds tshark takes to read the whole capture doing `job`, pinned to one core."""
    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark is not installed: apt-get install tshark")
    command = ["taskset", "-c", str(_core()), tshark, "-n", "-r", str(capture), *job]
    before = os.times()
    subprocess.run(command, capture_output=True, check=True)
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


GIGABYTE_PACKETS = 13_000_000
"""About 1 GB of the plant's traffic as pcap (some 77 bytes a frame with its record header)."""


def measure_memory(folder: Path) -> None:
    """The sensor's peak memory over a capture of about 1 GB (the issue's target: under 500 MB)."""
    capture = folder / "large.pcap"
    _generate(capture, GIGABYTE_PACKETS)
    figures = measure_sensor(capture, None)
    size = capture.stat().st_size
    rate = figures["packets"] / figures["cpu"]
    print(
        f"1 GB input: {figures['packets']:,.0f} packets, {size / 1e9:.2f} GB: {figures['cpu']:.1f} s, "
        f"{rate:,.0f} packets/s, peak {figures['peak_mb']:.0f} MB (target < 500 MB)"
    )


def fastest(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run of least CPU time, with `spread`: how much slower the slowest was (a fraction)."""
    best = min(runs, key=lambda figures: figures["cpu"])
    return {**best, "spread": max(figures["cpu"] for figures in runs) / best["cpu"] - 1}


def run(quick: bool = False) -> None:
    """Print packets per CPU second of the sensor (without and with records) and of tshark."""
    packets = 200_000 if quick else 1_000_000
    repeats = 1 if quick else REPEATS
    with tempfile.TemporaryDirectory(prefix="pw-bench-sensor-") as folder:
        capture = Path(folder) / "plant.pcap"
        _generate(capture, packets)
        size = capture.stat().st_size
        bare = fastest([measure_sensor(capture, None) for _ in range(repeats)])
        recorded = fastest(
            [measure_sensor(capture, Path(folder) / f"records-{repeat}") for repeat in range(repeats)]
        )
        tshark_runs = {
            name: fastest([{"cpu": measure_tshark(capture, job)} for _ in range(repeats)])
            for name, job in TSHARK_JOBS.items()
        }
    tshark = {name: packets / figures["cpu"] for name, figures in tshark_runs.items()}
    print(f"input: {packets:,} packets, {size / 1e6:.0f} MB pcap, one core (CPU time), fastest of {repeats}")
    share = bare["exact"] / max(bare["segments"], 1)
    print(
        f"Modbus: {bare['segments']:,.0f} segments, {share:.2%} on the exact path; {bare['pdus']:,.0f} PDUs"
    )
    for name, figures in (("sensor: dissection and flows", bare), ("sensor: with records written", recorded)):
        rate = packets / figures["cpu"]
        versus = ", ".join(f"x{rate / theirs:.1f} tshark ({job})" for job, theirs in tshark.items())
        peak, spread = figures["peak_mb"], figures["spread"]
        cpu = figures["cpu"]
        print(f"{name:32} {cpu:7.2f} s  {rate:>11,.0f} packets/s  peak {peak:.0f} MB  spread {spread:.0%}")
        print(f"{'':32} {versus}")
    for name, theirs in tshark.items():
        label, cpu, spread = f"tshark, {name}", packets / theirs, tshark_runs[name]["spread"]
        print(f"{label:32} {cpu:7.2f} s  {theirs:>11,.0f} packets/s  spread {spread:.0%}")
    if not quick:
        with tempfile.TemporaryDirectory(prefix="pw-bench-sensor-") as folder:
            measure_memory(Path(folder))


def _generate(capture: Path, packets: int) -> None:
    started = time.perf_counter()
    command = [sys.executable, "-m", "plantwarden", "sim", "generate", "--seed", "1", "--attacks", "all"]
    subprocess.run([*command, "--packets", str(packets), str(capture)], capture_output=True, check=True)
    print(f"# generated the input in {time.perf_counter() - started:.1f} s")
