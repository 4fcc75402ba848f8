"""The rule engine: 100 rules over 1,000,000 protocol records in one process, and the alert latency.

Records: the zone check benchmark's plant and traffic (`bench/segmentation.py`: 50 zones, 1,000
assets, six hours of a Friday evening across the maintenance window), with function codes, unit
ids and written values drawn per record. Rules (seeded, written as YAML and read by the format
reader): 40 plain selections (protocol, operation, function lists and ranges, CIDR blocks,
negations), 20 conditions over two or three selections with roles and maintenance, 20 count
rules (windows of 10 s to 10 min, group-by) and 20 distinct counts (scans: distinct destinations,
units or functions per source). Roles come from a `RoleMap` of the 1,000 assets, maintenance from
`PlantMaintenance` over the plant model.

1. Our engine (`RuleEngine.check`) over the records in batches of 50,000 (as the sensor hands
   them over), on one core; fastest of `REPEATS` runs on fresh engines.
2. The reference (`bench/rules_reference.py`: each rule on each record in plain Python) on a
   sample; both must select the same records of the sample for every rule (plain conditions).
3. Latency: `RuleTee` with a real SQLite store in a temporary directory, fed at the benchmark
   rate (`RATE` records/s, real time), with a new attacker every batch; p50/p99/max from a
   record entering `write` to its alert committed.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, make_url, select

from bench.rules_reference import matches
from bench.segmentation import build_records, build_site
from plantwarden.alerts.models import Alert
from plantwarden.core import migrate
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store, create_store_engine
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import Operation, address
from plantwarden.detection.rules.alerts import detection_reporter
from plantwarden.detection.rules.compile import BatchView, CompiledRule, Providers
from plantwarden.detection.rules.engine import RuleEngine
from plantwarden.detection.rules.fields import ROLES
from plantwarden.detection.rules.format import read_rules
from plantwarden.detection.rules.live import RuleTee
from plantwarden.detection.rules.loader import RuleSet
from plantwarden.detection.rules.providers import PlantMaintenance, RoleMap
from plantwarden.zones.plant.model import SiteModel

RECORDS = 1_000_000
BATCH = 50_000
SAMPLE = 5_000
REPEATS = 3
TARGET = 500_000
RATE = 500_000
LATENCY_SECONDS = 20.0
EXAMPLES = "  examples:\n    positive: [{protocol: modbus}]\n    negative: [{protocol: s7comm}]\n"
CONDITIONS = ("write and not trusted", "write and not (trusted or window)", "odd or (write and not window)")
PROTOCOLS = ("modbus", "s7comm", "enip", "dnp3", "iec104", "opcua", "mqtt", "bacnet")


def _rule(index: int, detection: str, extra: str = "") -> str:
    return (
        f"- id: bench-{index:03d}\n  title: bench rule {index}\n  severity: high\n"
        f"  severity_in_maintenance: low\n{extra}  detection:\n{detection}{EXAMPLES}"
    )


def build_rules(seed: int = 31) -> str:
    """The 100 rules as one YAML file (a list under `rules:`)."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data
    texts = []
    for i in range(40):
        protocol = rng.choice(PROTOCOLS)
        functions = sorted(rng.sample(range(1, 64), rng.randint(1, 12)))
        net = f"10.{rng.randrange(256)}.0.0/16"
        picked = rng.choice(
            [
                f"{{protocol: {protocol}, function: {functions}}}",
                f"{{protocol: {protocol}, operation: [write, program], dst_addr|cidr: {net}}}",
                f"{{function|range: [{functions[0]}, {functions[-1]}], unit|gte: 200}}",
                "{protocol|not: [modbus, s7comm], operation: control}",
                f"{{src_addr|not: 10.0.0.0/8, protocol: {protocol}}}",
            ]
        )
        texts.append(_rule(i, f"    s: {picked}\n    condition: s\n"))
    for i in range(40, 60):
        protocol = rng.choice(PROTOCOLS)
        detection = (
            f"    write: {{protocol: {protocol}, operation: [write, program, control]}}\n"
            "    trusted: {src_role|in: [engineering_workstation, hmi]}\n"
            "    window: {maintenance: true}\n"
            f"    odd: {{function|gt: {rng.randint(30, 60)}}}\n"
            f"    condition: {rng.choice(CONDITIONS)}\n"
        )
        texts.append(_rule(i, detection))
    for i in range(60, 80):
        by = rng.choice(["[src_addr]", "[src_addr, dst_addr]", "[dst_addr]", "[src_addr, function]"])
        window = rng.choice(["10s", "60s", "5m", "10m"])
        selection = rng.choice(
            ["{operation: write}", "{status|gt: 0}", f"{{protocol: {rng.choice(PROTOCOLS)}}}"]
        )
        detection = (
            f"    s: {selection}\n    condition: s\n"
            f"    count: {{window: {window}, by: {by}, min: {rng.randint(50, 5000)}}}\n"
        )
        texts.append(_rule(i, detection, "  dedup: [src_addr]\n"))
    for i in range(80, 100):
        distinct, by = rng.choice(
            [("dst_addr", "[src_addr]"), ("unit", "[src_addr, dst_addr]"), ("function", "[src_addr]")]
        )
        detection = (
            f"    s: {{protocol: {rng.choice(PROTOCOLS)}}}\n    condition: s\n"
            f"    count: {{window: {rng.choice(['60s', '5m'])}, by: {by}, distinct: {distinct},"
            f" min: {rng.randint(5, 40)}}}\n"
        )
        texts.append(_rule(i, detection))
    return "rules:\n" + "".join(texts)


def build_batch(site: SiteModel, count: int, seed: int = 32) -> RecordBatch:
    """The zone benchmark's records with function codes, units and values drawn per record."""
    batch = build_records(site, count)
    rng = np.random.default_rng(seed)
    columns = dict(batch.columns)
    columns["function"] = rng.integers(1, 64, count).astype(np.int32)
    columns["unit"] = rng.integers(0, 256, count).astype(np.int32)
    columns["status"] = np.where(rng.random(count) < 0.01, 2, 0).astype(np.int16)
    writes = columns["operation"] == Operation.WRITE
    columns["value"] = np.where(writes, rng.normal(50, 20, count), np.nan)
    return RecordBatch(batch.kind, columns)


def build_roles(site: SiteModel, seed: int = 33) -> RoleMap:
    rng = random.Random(seed)  # noqa: S311 - benchmark data
    return RoleMap({(site.id, str(a.addresses[0])): rng.choice(ROLES) for a in site.assets})


def _core() -> int:
    return max(os.sched_getaffinity(0))


def _engine_run(rules: list[Any], providers: Providers, batch: RecordBatch) -> tuple[float, int]:
    engine = RuleEngine(rules, providers)
    started = time.perf_counter()
    found = 0
    for low in range(0, len(batch), BATCH):
        found += len(engine.check(batch.take(slice(low, low + BATCH))))
    return time.perf_counter() - started, found


def run(*, quick: bool = False) -> None:
    """Print our rate, the reference's, their ratio, the agreement and the alert latency."""
    os.sched_setaffinity(0, {_core()})
    count = RECORDS // 10 if quick else RECORDS
    site = build_site()
    batch = build_batch(site, count)
    rules = read_rules(build_rules(), "bench-rules.yaml")
    providers = Providers(roles=build_roles(site), maintenance=PlantMaintenance([site]))
    kinds = f"{sum(r.count is None for r in rules)} plain, {sum(r.count is not None for r in rules)} counts"
    print(
        f"## rules: {len(rules)} rules ({kinds}) over {count:,} protocol records,"
        f" batches of {BATCH:,}; one core"
    )
    timings = [_engine_run(rules, providers, batch) for _ in range(1 if quick else REPEATS)]
    seconds, found = min(timings)
    print(
        f"our engine                      {seconds:6.3f} s  {count / seconds:>12,.0f} records/s"
        f"  ({found:,} detections)"
    )
    _reference(rules, providers, batch, count / seconds, SAMPLE // 5 if quick else SAMPLE)
    _latency(rules, site, providers, LATENCY_SECONDS / 4 if quick else LATENCY_SECONDS)


def _reference(rules: list[Any], providers: Providers, batch: RecordBatch, ours: float, size: int) -> None:
    rows = np.sort(np.random.default_rng(34).choice(len(batch), size, replace=False))
    sample = batch.take(rows)
    view = BatchView(sample, providers)
    derived = {name: view.column(name) for name in ("src_role", "dst_role", "maintenance", "malformed")}
    records = list(sample.rows())
    for index, record in enumerate(records):
        record |= {name: column[index].item() for name, column in derived.items()}
    started = time.perf_counter()
    expected = [[matches(rule, record) for record in records] for rule in rules]
    theirs = time.perf_counter() - started
    agree = sum(
        CompiledRule(rule).mask(view).tolist() == wanted for rule, wanted in zip(rules, expected, strict=True)
    )
    rate = size / theirs
    print(f"reference, per record           {theirs:6.3f} s  {rate:>12,.0f} records/s (sample of {size:,})")
    print(f"agreement on the sample: {agree} of {len(rules)} rules select the same records")
    assert agree == len(rules)
    print(
        f"ratio: x{ours / rate:,.0f}; target >= {TARGET:,} records/s:"
        f" {'met' if ours >= TARGET else 'NOT met'}"
    )


def _latency(rules: list[Any], site: SiteModel, providers: Providers, duration: float) -> None:
    """Feed the tee at RATE records/s for `duration` seconds; each batch holds a new attacker."""
    attack = read_rules(
        "id: bench-attack\ntitle: attack\nseverity: high\ndedup: [src_addr]\ndetection:\n"
        "  s: {protocol: s7comm, operation: program, src_addr|cidr: 172.16.0.0/12}\n  condition: s\n"
        + EXAMPLES.replace("  ", "", 1).replace("\n  ", "\n"),
        "attack.yaml",
    )
    normal = build_batch(site, BATCH, seed=35)
    with tempfile.TemporaryDirectory() as directory:
        store = Store(create_store_engine(make_url(f"sqlite:///{directory}/store.db")))
        migrate.ensure_ready(store)
        ctx = Context("bench", FixedClock(datetime(2026, 12, 4, 20, 0, tzinfo=UTC)))
        rule_dir = Path(directory) / "rules"
        rule_dir.mkdir()
        tee = RuleTee(
            RuleSet(rule_dir, (*rules, *attack)), None, detection_reporter(store, ctx), providers=providers
        )
        period = BATCH / RATE
        start = time.perf_counter()
        batches = int(duration / period)
        late = 0.0
        for number in range(batches):
            due = start + number * period
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            else:
                late = max(late, -wait)
            tee.write(_with_attacker(normal, number))
        tee.close()
        with store.transaction() as session:
            alerts = session.scalar(select(func.count()).select_from(Alert)) or 0
        store.close()
    latencies = np.array(tee.latencies)
    p50, p99 = np.percentile(latencies, [50, 99])
    print(
        f"latency record -> stored alert at {RATE:,} records/s for {duration:.0f} s ({batches} batches,"
        f" {alerts:,} alerts stored): p50 {p50:.3f} s, p99 {p99:.3f} s, max {latencies.max():.3f} s;"
        f" target p99 <= 2 s: {'met' if p99 <= 2.0 else 'NOT met'}"
        f" (feeding fell behind by at most {late:.3f} s)"
    )


def _with_attacker(normal: RecordBatch, number: int) -> RecordBatch:
    columns = dict(normal.columns)
    position = number % len(normal)
    src = columns["src_addr"].copy()
    protocol, operation = columns["protocol"].copy(), columns["operation"].copy()
    src[position] = address(f"172.16.{number // 250 % 256}.{number % 250 + 1}")
    protocol[position], operation[position] = 2, int(Operation.PROGRAM)
    shift = number * BATCH * 1_000_000_000 // RATE
    return RecordBatch(
        normal.kind,
        {
            **columns,
            "src_addr": src,
            "protocol": protocol,
            "operation": operation,
            "ts": columns["ts"] + shift,
        },
    )
