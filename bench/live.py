"""Live capture rate: `LiveCapture` (TPACKET_V3) feeding the sensor, against dumpcap on the same replay.

In a fresh network namespace holding a veth pair (IPv6 off, so that only the replay crosses it),
tcpreplay sends a generated capture (1,000,000 packets, 200,000 with --quick; seed 1, every
attack scenario), preloaded into memory, into `v0`: at top speed, then at fixed rates. On `v1`, a
child process pinned to one core runs `LiveCapture` (promiscuous, its default ring of 64 blocks
of 1 MiB) and the sensor without records, until nothing has come for a second after the replay,
and reports the packets it got, the kernel's drops and its CPU seconds. tcpreplay runs on another
core (where there is one): the veth's receive path, up to the capture's ring, runs in the
sender's softirq on the sender's core.

For each rate: the offered and achieved rate, packets received by the sensor, dropped by the
kernel at the ring, dropped by the veth before any capture (its backlog, from `tx_dropped`), the
loss (all causes, against what tcpreplay sent) and the sensor's CPU per packet. The reference is
dumpcap (`-w /dev/null`, a buffer as large as our ring: `-B 64`) on the same core, capturing the
same replays: its received, dropped, loss and CPU per packet, and the ratio of packets kept and of
CPU per packet (sensor / dumpcap; dumpcap only copies packets out, the sensor dissects them).

Needs root (network namespaces, AF_PACKET), iproute2, tcpreplay and dumpcap.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RATES: tuple[int | None, ...] = (None, 100_000, 200_000, 300_000, 500_000)  # None: top speed
RING_MIB = 64
QUIET_S = 1.0
CHILD = """
import json, os, select, sys, time
os.sched_setaffinity(0, {int(sys.argv[2])})
from plantwarden.capture.live import LiveCapture
from plantwarden.monitoring.sensor import Sensor
sensor = Sensor()
with LiveCapture(sys.argv[1], promiscuous=True, outgoing=False) as capture:
    print("ready", flush=True)
    started, replayed = time.process_time(), False
    while True:  # until the replay is over and then nothing has come for a while
        batch = capture.read(float(sys.argv[3]) if replayed else 0.1)
        if batch is None:
            if replayed:
                break
            replayed = bool(select.select([sys.stdin], [], [], 0)[0])
            continue
        sensor.process(batch)
    sensor.finish()
    cpu = time.process_time() - started
    stats = capture.stats()
print(json.dumps({"received": stats.packets, "dropped": stats.dropped, "cpu": cpu}))
"""


def _cores() -> tuple[int, int]:
    """The core of the capture and the core of tcpreplay (the same when there is only one)."""
    cores = sorted(os.sched_getaffinity(0))
    return cores[-1], cores[-2] if len(cores) > 1 else cores[-1]


def _tool(name: str) -> str:
    """The full path of a tool on PATH."""
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"bench live needs {name} (scripts/debian-packages.txt)")
    return path


def _ip(*args: str) -> str:
    return subprocess.run([_tool("ip"), *args], check=True, capture_output=True, text=True, timeout=30).stdout


@contextmanager
def namespace() -> Iterator[str]:
    """A fresh namespace with IPv6 off and the veth pair v0 (replay) - v1 (capture) up."""
    name = f"pw-bench-{uuid.uuid4().hex[:10]}"
    _ip("netns", "add", name)
    try:
        quiet = "for f in /proc/sys/net/ipv6/conf/all /proc/sys/net/ipv6/conf/default; do "
        quiet += '[ -d "$f" ] && echo 1 > "$f/disable_ipv6"; done; true'
        subprocess.run([_tool("ip"), "netns", "exec", name, "sh", "-c", quiet], check=True, timeout=30)
        _ip("-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        for device in ("lo", "v0", "v1"):
            _ip("-n", name, "link", "set", device, "up")
        yield name
    finally:
        subprocess.run([_tool("ip"), "netns", "delete", name], check=False, capture_output=True, timeout=30)


def _veth_dropped(name: str) -> int:
    """Packets v0 could not hand to v1 (the receiving backlog was full), so far."""
    (link,) = json.loads(_ip("-n", name, "-s", "-j", "link", "show", "v0"))
    return int(link["stats64"]["tx"]["dropped"])


def replay(name: str, capture: Path, rate: int | None, core: int) -> dict[str, float]:
    """Send the capture into v0 at `rate` packets/s (None: top speed): sent, failed, achieved
    packets/s, and the veth's drops."""
    speed = "--topspeed" if rate is None else f"--pps={rate}"
    command = [_tool("ip"), "netns", "exec", name, "taskset", "-c", str(core), "tcpreplay", "-i", "v0"]
    before = _veth_dropped(name)
    result = subprocess.run(
        [*command, "--preload-pcap", speed, str(capture)], capture_output=True, text=True, check=True
    )
    found = {
        key: re.search(pattern, result.stdout)
        for key, pattern in (
            ("sent", r"Successful packets:\s+(\d+)"),
            ("failed", r"Failed packets:\s+(\d+)"),
            ("pps", r"Rated: .*?([\d.]+) pps"),
        )
    }
    figures = {key: float(match.group(1)) for key, match in found.items() if match}
    if len(figures) != len(found):
        raise SystemExit(f"cannot read tcpreplay's output:\n{result.stdout}{result.stderr}")
    figures["veth_dropped"] = _veth_dropped(name) - before
    return figures


def measure_sensor(name: str, capture: Path, rate: int | None) -> dict[str, float]:
    """The sensor on v1 (its own core) while the capture is replayed: received, dropped, CPU."""
    capture_core, replay_core = _cores()
    command = [
        _tool("ip"),
        "netns",
        "exec",
        name,
        sys.executable,
        "-c",
        CHILD,
        "v1",
        str(capture_core),
        str(QUIET_S),
    ]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        if child.stdout.readline() != "ready\n":
            raise SystemExit("the sensor's live capture did not start")
        sent = replay(name, capture, rate, replay_core)
        output, _ = child.communicate("over\n", timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    figures: dict[str, float] = json.loads(output)
    return {**sent, **figures}


def measure_dumpcap(name: str, capture: Path, rate: int | None) -> dict[str, float]:
    """dumpcap on v1 (the sensor's core) while the capture is replayed: received, dropped, CPU."""
    capture_core, replay_core = _cores()
    command = [_tool("ip"), "netns", "exec", name, "taskset", "-c", str(capture_core)]
    command += ["dumpcap", "-i", "v1", "-B", str(RING_MIB), "-w", "/dev/null"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    try:
        started = time.monotonic()
        while "File:" not in child.stderr.readline():
            if time.monotonic() - started > 30 or child.poll() is not None:
                raise SystemExit("dumpcap did not start")
        sent = replay(name, capture, rate, replay_core)
        time.sleep(QUIET_S)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        child.send_signal(signal.SIGINT)
        _, errors = child.communicate(timeout=60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    counts = re.search(r"received/dropped on interface '[^']*': (\d+)/(\d+)", errors)
    if counts is None:
        raise SystemExit(f"cannot read dumpcap's counts:\n{errors}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**sent, "received": int(counts.group(1)), "dropped": int(counts.group(2)), "cpu": cpu}


def _check_tools() -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench live needs root (network namespaces, AF_PACKET)")
    missing = [tool for tool in ("ip", "tcpreplay", "dumpcap", "taskset") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"bench live needs {', '.join(missing)} (scripts/debian-packages.txt)")


def _row(label: str, figures: dict[str, Any]) -> str:
    loss = 1 - figures["received"] / max(figures["sent"], 1)
    per_packet = figures["cpu"] / max(figures["received"], 1) * 1e6
    return (
        f"{label:>10} {figures['pps']:>12,.0f} {figures['received']:>11,.0f} {figures['dropped']:>9,.0f}"
        f" {figures['veth_dropped']:>9,.0f} {loss:>7.2%} {per_packet:>8.2f} µs"
    )


def run(quick: bool = False) -> None:
    """Print, for each rate, what the sensor and dumpcap kept of the replay and their CPU."""
    _check_tools()
    packets = 200_000 if quick else 1_000_000
    capture_core, replay_core = _cores()
    with tempfile.TemporaryDirectory(prefix="pw-bench-live-") as folder, namespace() as name:
        capture = Path(folder) / "plant.pcap"
        _generate(capture, packets)
        size = capture.stat().st_size
        print(
            f"input: {packets:,} packets, {size / 1e6:.0f} MB pcap, replayed into a veth pair;"
            f" capture on core {capture_core}, tcpreplay on core {replay_core}; rings of {RING_MIB} MiB"
        )
        header = f"{'offered':>10} {'achieved/s':>12} {'received':>11} {'dropped':>9} {'veth drop':>9}"
        header += f" {'loss':>7} {'CPU/packet':>11}"
        results = []
        for rate in RATES:
            label = "top speed" if rate is None else f"{rate:,}"
            results.append((label, measure_sensor(name, capture, rate), measure_dumpcap(name, capture, rate)))
    print("LiveCapture + Sensor (no records):")
    print(header)
    for label, ours, _ in results:
        print(_row(label, ours))
    print(f"dumpcap -B {RING_MIB} -w /dev/null (same core):")
    print(f"{header}  kept, CPU/packet: sensor / dumpcap")
    for label, ours, theirs in results:
        kept = ours["received"] / max(theirs["received"], 1)
        cpu = (ours["cpu"] / max(ours["received"], 1)) / max(
            theirs["cpu"] / max(theirs["received"], 1), 1e-12
        )
        print(f"{_row(label, theirs)}  x{kept:.3f}, x{cpu:.1f}")


def _generate(capture: Path, packets: int) -> None:
    started = time.perf_counter()
    command = [sys.executable, "-m", "plantwarden", "sim", "generate", "--seed", "1", "--attacks", "all"]
    subprocess.run([*command, "--packets", str(packets), str(capture)], capture_output=True, check=True)
    print(f"# generated the input in {time.perf_counter() - started:.1f} s")
