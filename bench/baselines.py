"""Learned baselines: learn then check 1,000,000 protocol records, against plain Python; and the
per-packet evaluation on the Lemay & Fernandez Modbus captures.

Records: the zone benchmark's (`bench/segmentation.py`: 50 zones, 1,000 assets, 6,000
conversations over six hours), each with the function code of its operation (Modbus 3 for reads,
6 for writes, 8 for diagnostics, 90 for program and control), one of two registers next to each
other per server, and a written value. The first half is learnt, then every scope protects and
the second half is checked, in batches of 50,000 (as the sensor hands them over), on one core.
A second input, 200,000 of the same records with a function code and a unit drawn at random for
every record (as the rule benchmark does), makes nearly every record a fact of its own: the
worst case, where the Python step per distinct key dominates.

1. Ours: `facts.observe` (numpy grouping per batch) and `learner.Baseline.observe` (one step per
   distinct key of a batch, none for an asset, edge or service fact already known: those are
   counted from the batch's groups without building their observation), with the plant model's
   scopes (`Scoper`: conduits by zone lookup).
2. The reference: one record at a time in plain Python, the asset, edge and service keys in sets,
   written registers and setpoint ranges in dicts, on the same records; both must learn the same
   asset, edge and service keys and find the same new ones in the second half.
3. Lemay: `detection.baselines.lemay` (skipped when the shared datasets are absent).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.segmentation import build_records, build_site
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import Operation, address_text
from plantwarden.detection.baselines import lemay
from plantwarden.detection.baselines.facts import FactKind
from plantwarden.detection.baselines.learner import Baseline
from plantwarden.detection.baselines.scoping import Scoper

RECORDS = 1_000_000
BATCH = 50_000
SIMPLE = (FactKind.ASSET, FactKind.EDGE, FactKind.SERVICE)


def build_batch(count: int, seed: int = 41) -> RecordBatch:
    """The zone benchmark's records with function codes, registers and values (see above)."""
    site = build_site()
    batch = build_records(site, count)
    rng = np.random.default_rng(seed)
    operation = batch["operation"]
    columns = dict(batch.columns)
    columns["function"] = np.select(
        [operation == Operation.READ, operation == Operation.WRITE, operation == Operation.DIAGNOSTIC],
        [3, 6, 8],
        90,
    ).astype(np.int32)
    last_octet = batch["dst_addr"].view(np.uint8).reshape(-1, 16)[:, 15].astype(np.int64)
    columns["address"] = (last_octet % 8 * 10 + rng.integers(0, 2, count)).astype(np.int64)
    writes = operation == Operation.WRITE
    columns["value"] = np.where(writes, np.round(rng.normal(50, 10, count)), np.nan)
    columns["site"] = np.full(count, site.id, dtype=object)
    return RecordBatch(batch.kind, columns)


def ours(batch: RecordBatch, scoper: Scoper) -> tuple[Baseline, set[tuple[str, str]], float]:
    half = len(batch) // 2
    baseline = Baseline(learning_ns=1 << 62)
    started = time.perf_counter()
    for low in range(0, half, BATCH):
        part = batch.take(slice(low, min(low + BATCH, half)))
        baseline.observe(scoper.observe(part), scoper)
    baseline.protect(str(batch["site"][0]))
    new: set[tuple[str, str]] = set()
    for low in range(half, len(batch), BATCH):
        part = batch.take(slice(low, min(low + BATCH, len(batch))))
        for deviation in baseline.observe(scoper.observe(part), scoper):
            if deviation.new and deviation.key.kind in SIMPLE:
                new.add((deviation.key.kind.value, deviation.key.text))
    return baseline, new, time.perf_counter() - started


def reference(batch: RecordBatch) -> tuple[set[tuple[str, str]], set[tuple[str, str]], float]:
    """One record at a time: sets of keys, dicts of written registers and setpoint ranges."""
    half = len(batch) // 2
    rows = list(batch.rows())
    started = time.perf_counter()
    learnt: set[tuple[str, str]] = set()
    written: dict[tuple[str, int, int], set[int]] = {}
    setpoints: dict[tuple[str, int, int], list[float]] = {}
    new: set[tuple[str, str]] = set()
    for index, row in enumerate(rows):
        keys = _keys(row)
        if index < half:
            learnt.update(keys)
            _learn_values(row, written, setpoints)
        else:
            new.update(k for k in keys if k not in learnt)
    return learnt, new, time.perf_counter() - started


def _keys(row: dict[str, Any]) -> list[tuple[str, str]]:
    src, dst = address_text(row["src_addr"]), address_text(row["dst_addr"])
    edge = f"{src}|{dst}|{row['transport']}|{row['dst_port']}|{row['protocol']}"
    return [("asset", src), ("asset", dst), ("edge", edge), ("service", f"{edge}|{row['function']}")]


def _learn_values(
    row: dict[str, Any], written: dict[Any, set[int]], setpoints: dict[Any, list[float]]
) -> None:
    if row["operation"] != Operation.WRITE or row["address"] < 0:
        return
    server = address_text(row["dst_addr"])
    registers = written.setdefault((server, row["unit"], row["protocol"]), set())
    registers.update(range(row["address"], row["address"] + max(row["quantity"], 0)))
    if row["value"] == row["value"]:
        span = setpoints.setdefault((server, row["unit"], row["address"]), [row["value"], row["value"]])
        span[0], span[1] = min(span[0], row["value"]), max(span[1], row["value"])


RANDOM_RECORDS = 200_000


def random_functions(batch: RecordBatch, seed: int = 43) -> RecordBatch:
    """The records with a function code (1-99) and a unit (0-4) drawn at random for each."""
    rng = np.random.default_rng(seed)
    columns = dict(batch.columns)
    columns["function"] = rng.integers(1, 100, len(batch)).astype(np.int32)
    columns["unit"] = rng.integers(0, 5, len(batch)).astype(batch["unit"].dtype)
    return RecordBatch(batch.kind, columns)


def compare(label: str, batch: RecordBatch) -> None:
    """Ours and the reference on the same records; they must find the same keys."""
    baseline, new, seconds = ours(batch, Scoper([build_site()]))
    learnt, reference_new, reference_seconds = reference(batch)
    ours_learnt = {(k.kind.value, k.text) for k in baseline.facts if k.kind in SIMPLE}
    assert ours_learnt == learnt, f"{label}: ours and the reference learnt different keys"
    assert new == reference_new, f"{label}: ours and the reference found different new keys"
    count = len(batch)
    print(f"baselines, {label}: {count:,} records (half learnt, half checked), {len(baseline.facts):,} facts")
    print(f"  ours       {count / seconds:>12,.0f} records/s ({seconds:.2f} s)")
    print(f"  reference  {count / reference_seconds:>12,.0f} records/s ({reference_seconds:.2f} s)")
    print(
        f"  ratio      {reference_seconds / seconds:>12.1f} x; {len(new):,} new keys in the second half, same"
    )


def run(*, quick: bool = False) -> None:
    count = RECORDS // 10 if quick else RECORDS
    compare("default", build_batch(count))
    randoms = RANDOM_RECORDS // 10 if quick else RANDOM_RECORDS
    compare("random function and unit", random_functions(build_batch(randoms)))
    if lemay.available():
        print("lemay per-packet (learn before the first labelled packet):")
        print(lemay.table(lemay.run()))
    else:
        print(f"lemay: skipped, {lemay.DATASET} is absent")


if __name__ == "__main__":
    run()
