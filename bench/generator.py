"""The traffic generator against tshark reading what it wrote, on the same capture.

`generate` writes N packets of the plant's traffic with every attack scenario (10 million for
the record, one million with --quick) in a child process, whose peak resident memory is read
from the kernel (VmHWM); then tshark reads the first 500,000 packets of the same file with
field extraction (`-T fields -e modbus.func_code`), the reference rate. The issue's target is
that 10 million packets stay under 300 MB.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MB = 300
TSHARK_PACKETS = 500_000
CHILD = """
import json, sys, time
from pathlib import Path
from plantwarden.sim.attacks import SCENARIOS
from plantwarden.sim.traffic.generator import generate
started = time.perf_counter()
result = generate(Path(sys.argv[1]), seed=1, packets=int(sys.argv[2]), attacks=list(SCENARIOS))
elapsed = time.perf_counter() - started
# VmHWM: this process's own peak (ru_maxrss would include the parent it was forked from)
peak = int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) / 1024
print(json.dumps({"seconds": elapsed, "peak_mb": peak, "bytes": result.ledger["bytes"]}))
"""


def measure_generation(capture: Path, packets: int) -> dict[str, float]:
    """Generate `packets` into `capture` in a child process: seconds, peak MB, bytes written."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(capture), str(packets)], capture_output=True, text=True, check=True
    )
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def measure_tshark(capture: Path, packets: int) -> float:
    """Seconds tshark takes to read the first `packets` frames with Modbus field extraction."""
    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark is not installed: apt-get install tshark")
    started = time.perf_counter()
    command = [tshark, "-n", "-r", str(capture), "-c", str(packets), "-T", "fields", "-e", "modbus.func_code"]
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - started


def run(quick: bool = False) -> None:
    """Print the generator's rate and peak memory, and tshark's reading rate on the same file."""
    packets = 1_000_000 if quick else 10_000_000
    with tempfile.TemporaryDirectory(prefix="pw-bench-generator-") as folder:
        capture = Path(folder) / "plant.pcapng"
        figures = measure_generation(capture, packets)
        read = min(packets, TSHARK_PACKETS)
        tshark_seconds = measure_tshark(capture, read)
    ours = packets / figures["seconds"]
    theirs = read / tshark_seconds
    print(
        f"generate {packets:,} packets ({figures['bytes'] / 1e9:.2f} GB pcapng): {figures['seconds']:.1f} s"
    )
    print(
        f"  {ours:,.0f} packets/s; peak resident memory {figures['peak_mb']:.0f} MB (target < {TARGET_MB} MB)"
    )
    print(f"tshark reading the first {read:,} packets of it: {tshark_seconds:.1f} s, {theirs:,.0f} packets/s")
    print(f"ratio generator / tshark: x{ours / theirs:.1f}")
