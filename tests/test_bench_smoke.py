"""The benchmarks still run: `python -m bench NAME --quick` (smaller inputs) exits 0 for those whose
smoke run takes a few seconds. A benchmark is not a timed test, so nothing here looks at speed;
this only keeps the documented command from breaking silently when the code it measures changes
(the records benchmark stopped with a TypeError for sessions after the records gained a column).
The slow ones (a smoke run of 10 s or more) are run by hand before their figures are recorded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bench.__main__ import BENCHMARKS

ROOT = Path(__file__).resolve().parents[1]
SLOW = ("generator", "sensor", "live", "protocols", "evidence", "gateway", "console")
"""Smoke runs of 10 to 100 s on two cores: too long for every test run."""
SMOKED = tuple(name for name in BENCHMARKS if name not in SLOW)


def test_the_slow_ones_are_benchmarks() -> None:
    """Every name here is a benchmark: a stale one would leave the renamed benchmark smoked."""
    assert set(SLOW) <= set(BENCHMARKS)


@pytest.mark.parametrize("name", SMOKED)
def test_the_quick_run_of_a_benchmark_completes(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", name, "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"# {name}: " in result.stdout
