"""`python -m bench [NAME ...]`: run the named benchmarks (all when none is named)."""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import time
from datetime import UTC, datetime

BENCHMARKS = (
    "records",
    "policy",
    "auth",
    "generator",
    "sensor",
    "register_values",
    "live",
    "protocols",
    "map",
    "evidence",
    "inventory",
    "segmentation",
    "reach",
    "rules",
    "process_eval",
    "baselines",
    "pki_issue",
    "telemetry_envelope",
    "device_ingest",
    "gateway",
    "console",
)
MODULES = {"map": "commmap"}
"""Benchmarks whose module has another name than the benchmark."""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller inputs (a smoke run, not for the record)"
    )
    parser.add_argument(
        "--pages", metavar="PATTERN", help="console: measure only the pages whose path matches this regex"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; known: {', '.join(BENCHMARKS)}")
    machine = platform.processor() or platform.machine()
    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    print(f"# {stamp}, {platform.node()}, {machine}, Python {platform.python_version()}")
    print(f"# {_cores()} cores, {_memory_gib():.0f} GiB memory")
    for name in args.names or BENCHMARKS:
        started = time.perf_counter()
        options = {"pages": args.pages} if name == "console" and args.pages else {}
        importlib.import_module(f"bench.{MODULES.get(name, name)}").run(quick=args.quick, **options)
        print(f"# {name}: {time.perf_counter() - started:.1f} s in all\n")


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def _memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3


if __name__ == "__main__":
    main()
