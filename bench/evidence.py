"""The evidence ring's append rate against editcap writing the same pcap, and its slice against tshark.

Input: a capture of the simulated plant with every attack scenario (seed 1; 1,000,000 packets,
200,000 with --quick), once as pcap and once as pcapng. Its batches are read into memory first
(65,536 packets each, as the sensor gets them), so that only appending is timed:

- append, pcap input: the batches of a pcap file hold their packets 16 bytes apart, so the ring
  copies each batch's run whole and rewrites the record headers;
- append, pcapng input: the packets lie between enhanced packet block headers of varying
  lengths, so the ring gathers them (the general path, as for live capture and the tap);
- the reference: `editcap -F pcap in out`, which reads the pcapng capture and writes the same
  packets as one pcap file (it parses too, so it is an upper bound of what writing alone costs
  it);
- slicing: the packets of one busy host over the whole ring (a pcap file, read back), against
  `tshark -r in -Y ip.addr==X -w out` on the original.

Each measurement is taken `REPEATS` times (once with --quick) and the fastest counts, in CPU
seconds (user and system; the ring's writes go to the page cache, like editcap's and tshark's),
so that other work on the machine does not count. `python -m bench.evidence` runs it alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.evidence import EvidenceRing
from plantwarden.capture.pcap import read_capture

REPEATS = 3
HOST = "127.10.1.10"
"""The HMI, the busiest host of the simulated plant."""
END = (1 << 63) - 1


def _generate(capture: Path, packets: int) -> None:
    started = time.perf_counter()
    command = [sys.executable, "-m", "plantwarden", "sim", "generate", "--seed", "1", "--attacks", "all"]
    subprocess.run([*command, "--packets", str(packets), str(capture)], capture_output=True, check=True)
    print(f"# generated {capture.name} in {time.perf_counter() - started:.1f} s")


def _children_cpu(before: os.times_result) -> float:
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


def _fastest(repeats: int, measure: Callable[[int], float]) -> tuple[float, float]:
    """The least of `repeats` timings, and how much slower the slowest was (a fraction)."""
    times = [measure(repeat) for repeat in range(repeats)]
    return min(times), max(times) / min(times) - 1


def measure_append(batches: list[PacketBatch], folder: Path, repeat: int) -> float:
    """CPU seconds to append every batch to a new ring large enough to keep them all."""
    directory = folder / f"ring-{repeat}"
    with EvidenceRing(directory, max_bytes=8 << 30) as ring:
        started = time.process_time()
        for batch in batches:
            ring.add(batch)
        elapsed = time.process_time() - started
    shutil.rmtree(directory)
    return elapsed


def measure_editcap(capture: Path, folder: Path) -> float:
    """CPU seconds editcap takes to write `capture` (pcapng) as a pcap file."""
    editcap = shutil.which("editcap")
    if editcap is None:
        raise SystemExit("editcap is not installed: apt-get install tshark")
    target = folder / "editcap.pcap"
    before = os.times()
    subprocess.run([editcap, "-F", "pcap", str(capture), str(target)], capture_output=True, check=True)
    elapsed = _children_cpu(before)
    target.unlink()
    return elapsed


def measure_tshark_slice(capture: Path, folder: Path) -> float:
    """CPU seconds tshark takes to write the packets of `HOST` from `capture` to a new file."""
    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark is not installed: apt-get install tshark")
    output = folder / "tshark.pcap"
    before = os.times()
    command = [tshark, "-n", "-r", str(capture), "-Y", f"ip.addr=={HOST}", "-w", str(output)]
    subprocess.run(command, capture_output=True, check=True)
    return _children_cpu(before)


def measure_slices(batches: list[PacketBatch], capture: Path, folder: Path, repeats: int) -> None:
    """The ring's slice of one host against tshark's display filter writing the same packets."""
    with EvidenceRing(folder / "ring-slice", max_bytes=8 << 30) as ring:
        for batch in batches:
            ring.add(batch)

        def ours(repeat: int) -> float:
            started = time.process_time()
            ring.write_slice(folder / "slice.pcap", 0, END, [HOST])
            return time.process_time() - started

        ours_s, ours_spread = _fastest(repeats, ours)
        packets = ring.write_slice(folder / "slice.pcap", 0, END, [HOST]).packets
    theirs_s, theirs_spread = _fastest(repeats, lambda _: measure_tshark_slice(capture, folder))
    print(f"slice of {HOST} ({packets:,} packets) over the whole ring")
    print(f"  ring.write_slice                {ours_s:7.2f} s  spread {ours_spread:.0%}")
    print(f"  tshark -Y ip.addr== -w          {theirs_s:7.2f} s  spread {theirs_spread:.0%}")
    print(f"  ratio tshark / ring: x{theirs_s / ours_s:.1f}")


def measure_input(kind: str, capture: Path, folder: Path, repeats: int) -> float:
    """Print the append rate for one input (and, for pcap, the slices); return packets per second."""
    batches = list(read_capture(capture))
    packets = sum(len(batch) for batch in batches)
    size = sum(int(batch.lengths.sum()) + 16 * len(batch) for batch in batches)
    seconds, spread = _fastest(repeats, lambda repeat: measure_append(batches, folder, repeat))
    label = f"ring.add, {kind} input"
    print(
        f"{label:30} {seconds:7.3f} s  {packets / seconds:>12,.0f} packets/s  "
        f"{size / seconds / 1e6:6.0f} MB/s  spread {spread:.0%}"
    )
    if kind == "pcap":
        measure_slices(batches, capture, folder, repeats)
    return packets / seconds


def run(quick: bool = False) -> None:
    """Print the ring's append rate (pcap and pcapng input), editcap's, and the slice against tshark."""
    packets = 200_000 if quick else 1_000_000
    repeats = 1 if quick else REPEATS
    with tempfile.TemporaryDirectory(prefix="pw-bench-evidence-") as name:
        folder = Path(name)
        inputs = {kind: folder / f"plant.{kind}" for kind in ("pcap", "pcapng")}
        for capture in inputs.values():
            _generate(capture, packets)
        print(f"input: {packets:,} packets; CPU time, fastest of {repeats}")
        rates = {kind: measure_input(kind, capture, folder, repeats) for kind, capture in inputs.items()}
        editcap_s, editcap_spread = _fastest(repeats, lambda _: measure_editcap(inputs["pcapng"], folder))
    reference = packets / editcap_s
    label = "editcap -F pcap (pcapng in)"
    print(f"{label:30} {editcap_s:7.3f} s  {reference:>12,.0f} packets/s  spread {editcap_spread:.0%}")
    for kind, rate in rates.items():
        print(f"ratio ring.add ({kind} input) / editcap: x{rate / reference:.1f}")


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
