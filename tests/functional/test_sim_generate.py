"""`plantwarden sim generate` as a user runs it, and the generator's memory staying flat."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plantwarden.sim.traffic.generator import generate
from tests.helpers import plantwarden
from tests.output_support import files_of, full_disk

PEAK = """
import sys
from pathlib import Path
from plantwarden.sim.traffic.generator import generate
generate(Path(sys.argv[1]), seed=2, packets=int(sys.argv[2]), attacks=["scan", "console-brute-force"])
# VmHWM: this process's own peak (ru_maxrss would include the parent it was forked from)
print(int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024)
"""


def test_generate_writes_the_capture_labels_and_ledger(tmp_path: Path) -> None:
    result = plantwarden(
        "sim", "generate", "--seed", "4", "--packets", "3000", "--attacks", "all", "out.pcapng", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 3,000 packets" in result.stdout
    ledger = json.loads((tmp_path / "out.ledger.json").read_text())
    assert ledger["packets"] == 3000 and ledger["seed"] == 4
    assert (tmp_path / "out.labels.csv").read_text().startswith("frame,time,attack,instance,technique\n")
    assert not list(tmp_path.glob("*.partial"))


def test_a_generation_that_fills_the_disk_leaves_the_files_as_they_were(tmp_path: Path) -> None:
    """The capture, labels and ledger of an earlier run stay whole, and no partial file of this
    one is left (the three '.partial' files were)."""
    for name in ("out.pcapng", "out.labels.csv", "out.ledger.json"):
        (tmp_path / name).write_bytes(f"the {name} of an earlier run, kept\n".encode() * 40)
    before = files_of(tmp_path)
    with pytest.raises(OSError, match="File too large"), full_disk(room=64 * 1024):
        generate(tmp_path / "out.pcapng", seed=4, packets=3000)
    assert files_of(tmp_path) == before


def test_generate_refuses_bad_input_before_writing_anything(tmp_path: Path) -> None:
    cases = {
        ("--attacks", "scan,nope", "a.pcapng"): "unknown scenario(s) nope",
        ("--packets", "0", "a.pcapng"): "--packets",
        ("b.txt",): "name the capture file .pcap or .pcapng",
        ("missing/c.pcap",): "is not a directory",
    }
    for arguments, message in cases.items():
        result = plantwarden("sim", "generate", *arguments, cwd=tmp_path)
        assert result.returncode != 0
        assert message in result.stdout + result.stderr, arguments
    assert list(tmp_path.iterdir()) == []


def _peak_mb(tmp_path: Path, packets: int) -> int:
    command = [sys.executable, "-c", PEAK, str(tmp_path / f"{packets}.pcap"), str(packets)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    return int(result.stdout.strip())


def test_memory_does_not_grow_with_the_number_of_packets(tmp_path: Path) -> None:
    small, large = _peak_mb(tmp_path, 20_000), _peak_mb(tmp_path, 400_000)
    # Twenty times the packets, the same memory: nothing is kept per packet (10 M: bench/generator.py).
    assert large < 300
    assert large - small < 15, (small, large)
