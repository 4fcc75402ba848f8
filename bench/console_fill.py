"""Filling a fresh store for the console benchmark: the plant model, protocol records, the asset
inventory, alerts and a user who may see everything, written as the application writes them.

- The plant model (`console_plant.py`) is applied with `zones.applied.apply_plant`, as
  `plantwarden plant apply` does.
- Protocol records go through the records plane's `RecordWriter` (one writer per site, as one
  sensor per site), spread over the last 30 days: supervisory hosts polling and writing the PLCs
  of both cells (Modbus, S7comm, EtherNet/IP by vendor). Reads are 90 % of them, so the storage
  policy folds some into minute aggregates; the last batch tops the stored rows up to the target
  with writes (kept in full).
- The inventory is what the sensor would save: sightings of every host (ARP, plus a DHCP host
  name or a PLC's identity) into an `AssetBook`, the first `EDGE_SAMPLE` records into an
  `EdgeBook`, roles from `infer_roles`, all saved by `inventory.store.save_inventory` (which
  places the assets in the zones and appends its events to the event log).
- Baselines are learned from the last `LEARN_DAYS` of records of each site, as `plantwarden
  baseline learn --site SITE --last 1d` does.
- Alerts are inserted in bulk (the rows `alerts.services._open` writes, then the status an analyst
  gave them), with the events raising, repeating, acknowledging, assigning and closing them would
  have appended to the event log, in time order. Rules, titles, severities and techniques are
  those of the shipped rule pack and of the zone check (10 % of the alerts, with the zone check's
  summary as evidence). Alerts of three noisy rules at plant-a in the last 10 days are suppressed
  by a suppression in force.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sqlalchemy import insert
from sqlalchemy.orm import Session

from bench.console_plant import SEGMENT, SITES, VENDORS, Host, hosts, plant_yaml
from plantwarden.accounts import services as accounts
from plantwarden.accounts import totp
from plantwarden.alerts.events import (
    AlertAcknowledged,
    AlertAssigned,
    AlertClosed,
    AlertRaised,
    AlertRepeated,
)
from plantwarden.alerts.models import Alert, AlertStatus, Severity, Suppression, Verdict
from plantwarden.cli.catalog import SECTIONS
from plantwarden.core import eventlog, migrate
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.events import Event, envelope
from plantwarden.core.ids import new_id
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import RecordWriter
from plantwarden.core.records.schema import PROTOCOL_RECORDS, Operation, ipv4_addresses
from plantwarden.core.runtime import Runtime
from plantwarden.core.settings import Settings, load_settings
from plantwarden.detection import zone_check
from plantwarden.detection.baselines.cli import stored_batches
from plantwarden.detection.baselines.live import BaselineTee
from plantwarden.detection.baselines.scoping import Scoper
from plantwarden.inventory import AssetBook, EdgeBook
from plantwarden.inventory.roles import infer_roles
from plantwarden.inventory.sightings import Binding, Sighting
from plantwarden.inventory.store import save_inventory
from plantwarden.zones.applied import apply_plant, current_model

FILL_VERSION = 1
"""Part of the cache key: bump it when the fill writes something different."""
DAYS = 30
BATCH = 500_000
EDGE_SAMPLE = 1_000_000
"""Records the edge book sees (the communications' counts and times come from these)."""
CLIENTS_PER_PLC = 3
LEARN_DAYS = 1
"""The baselines learn from the last day of records (`baseline learn --last 1d`)."""
USERNAME = "bench-admin"
PASSWORD = "correct horse battery staple"  # noqa: S105 (the throwaway benchmark store's user)
PACK = Path(__file__).resolve().parents[1] / "src/plantwarden/detection/pack"
CONDUIT = "supervisory-cells"
ANALYSTS = ("ana", "ben", "chloe", "dev", "eva")
NS = 1_000_000_000


@dataclass(frozen=True)
class Size:
    records: int
    assets: int
    alerts: int

    @property
    def key(self) -> str:
        """The cache's name for a store of this size: the fill's version and the schema's
        revision too (a server refuses a store behind the head revision)."""
        revision = migrate.head_revision().split("_")[0]
        return f"v{FILL_VERSION}-s{revision}-r{self.records}-a{self.assets}-l{self.alerts}"


FULL = Size(10_000_000, 5_000, 100_000)
QUICK = Size(100_000, 500, 5_000)


def settings_for(data_dir: Path) -> Settings:
    """Defaults, no file, no environment: the embedded store (SQLite) in `data_dir`."""
    return load_settings(SECTIONS, environ={}, cwd=data_dir, overrides={"data_dir": str(data_dir)})


def fill(data_dir: Path, size: Size, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Fill a fresh store in `data_dir`; returns what the measurement needs (also in fill.json)."""
    started = time.perf_counter()
    settings = settings_for(data_dir)
    runtime = Runtime(settings, source="bench")
    store = runtime.ready_store()
    accounts.configure_for(settings)
    now = datetime.now(UTC).replace(microsecond=0)
    ctx = Context(source="bench", actor="bench", clock=FixedClock(now))
    plant = hosts(size.assets)
    with store.transaction() as session:
        apply_plant(session, ctx, plant_yaml(_declared(plant)).encode(), "bench plant.yaml")
    edges = _edges(plant, np.random.default_rng(1))
    book = EdgeBook()
    stored = write_records(runtime, edges, size.records, now, book, progress)
    progress(f"records: {stored:,} stored ({time.perf_counter() - started:.0f} s)")
    assets = AssetBook()
    assets.add_many(_sightings(plant, now))
    snapshot = assets.assets()
    found_edges, statistics = book.edges(), book.statistics()
    roles = infer_roles(snapshot, found_edges, statistics, router_macs=assets.router_macs())
    with store.transaction() as session:
        saved = save_inventory(session, ctx, snapshot, found_edges, statistics, roles)
    progress(
        f"inventory: {saved.assets_created:,} assets, {saved.edges_created:,} communications"
        f" ({time.perf_counter() - started:.0f} s)"
    )
    with store.transaction() as session:
        raised = write_alerts(session, plant, size.alerts, now)
    progress(f"alerts: {size.alerts:,}, {raised:,} events ({time.perf_counter() - started:.0f} s)")
    facts = learn_baselines(runtime, ctx, now)
    progress(f"baselines: {facts:,} records learned from ({time.perf_counter() - started:.0f} s)")
    secret = _user(store)
    runtime.close()
    info = {"size": size.key, "records": stored, "secret": secret, "username": USERNAME, "password": PASSWORD}
    info["seconds"] = round(time.perf_counter() - started, 1)
    (data_dir / "fill.json").write_text(json.dumps(info, indent=1))
    return info


def _declared(plant: Sequence[Host]) -> list[Host]:
    """Hosts plant.yaml lists as assets: every 50th."""
    return list(plant[::50])


@dataclass(frozen=True)
class Edges:
    """The communications of the plant as columns: client, server, protocol, port, site."""

    client: np.ndarray
    server: np.ndarray
    protocol: np.ndarray
    port: np.ndarray
    site: np.ndarray  # index into SITES


def _edges(plant: Sequence[Host], rng: np.random.Generator) -> Edges:
    rows: list[tuple[int, int, int, int, int]] = []
    for s, site in enumerate(SITES):
        clients = [_ip_number(h.ip) for h in plant if h.site == site and h.kind == "client"]
        for plc in (h for h in plant if h.site == site and h.kind == "plc"):
            _, _, _, protocol, port = VENDORS[plc.vendor]
            picked = rng.choice(len(clients), size=min(CLIENTS_PER_PLC, len(clients)), replace=False)
            rows += [(clients[int(c)], _ip_number(plc.ip), protocol, port, s) for c in picked]
    columns = np.array(rows, dtype=np.int64).T
    return Edges(*(columns[i] for i in range(5)))


def _ip_number(ip: str) -> int:
    a, b, c, d = (int(part) for part in ip.split("."))
    return a << 24 | b << 16 | c << 8 | d


FUNCTIONS = {  # protocol: (read, write, diagnostic) function codes
    1: (3, 16, 8),
    2: (4, 5, 0),
    4: (76, 77, 1),
}


def records(edges: Edges, count: int, start_ns: int, end_ns: int, rng: np.random.Generator,
            read_share: float = 0.9) -> RecordBatch:  # fmt: skip
    """`count` protocol records of random communications between `start_ns` and `end_ns`."""
    pick = rng.integers(0, len(edges.client), count)
    protocol = edges.protocol[pick]
    draw = rng.random(count)
    operation = np.where(draw < read_share, Operation.READ, Operation.WRITE)
    operation = np.where((draw > 0.995) & (protocol == 1), Operation.DIAGNOSTIC, operation)
    table = np.array([FUNCTIONS.get(p, (0, 0, 0)) for p in range(max(FUNCTIONS) + 1)])
    column = np.select([operation == Operation.READ, operation == Operation.WRITE], [0, 1], 2)
    return RecordBatch.build(
        PROTOCOL_RECORDS,
        {
            "ts": np.sort(rng.integers(start_ns, end_ns, count)),
            "site": np.array(SITES, dtype=object)[edges.site[pick]],
            "segment": SEGMENT,
            "src_addr": ipv4_addresses(edges.client[pick].astype(np.uint32)),
            "dst_addr": ipv4_addresses(edges.server[pick].astype(np.uint32)),
            "src_port": 40000 + pick % 20000,
            "dst_port": edges.port[pick],
            "transport": 6,
            "protocol": protocol,
            "operation": operation,
            "function": table[protocol, column],
            "unit": np.where(protocol == 1, 1, 0),
            "address": rng.integers(0, 100, count) * 10,
            "quantity": 10,
            "status": np.where(rng.random(count) < 0.01, 2, 0),
            "value": rng.random(count) * 100,
            "response_ns": rng.integers(1_000_000, 20_000_000, count),
        },
    )


def write_records(runtime: Runtime, edges: Edges, target: int, now: datetime, book: EdgeBook,
                  progress: Callable[[str], None]) -> int:  # fmt: skip
    """Write `target` stored records over the last `DAYS` days (one writer per site); the edge
    book sees the first `EDGE_SAMPLE`. Returns the rows stored."""
    rng = np.random.default_rng(2)
    end_ns = int(now.timestamp()) * NS
    start_ns = end_ns - DAYS * 86_400 * NS
    batches = max(1, -(-target // BATCH))
    backend = runtime.records()
    writers = {site: RecordWriter(backend, f"sensor-{site}") for site in SITES}
    stored, seen = 0, 0
    try:
        for number in range(batches):
            low = start_ns + (end_ns - start_ns) * number // batches
            high = start_ns + (end_ns - start_ns) * (number + 1) // batches
            count = min(BATCH, target - number * BATCH)
            batch = records(edges, count, low, high, rng)
            if seen < EDGE_SAMPLE:
                book.add(batch.take(slice(0, EDGE_SAMPLE - seen)))
                seen += min(len(batch), EDGE_SAMPLE - seen)
            stored += _write(writers, batch)
            if number == batches - 1 and stored < target:  # top up with writes, kept in full
                stored += _write(writers, records(edges, target - stored, low, high, rng, read_share=0))
            progress(f"  records: batch {number + 1}/{batches}, {stored:,} stored")
    finally:
        for writer in writers.values():
            writer.close()
    return stored


def _write(writers: dict[str, RecordWriter], batch: RecordBatch) -> int:
    sites = np.asarray(batch["site"])
    return sum(
        writers[site].write(batch.take(np.flatnonzero(sites == site))).stored
        for site in SITES
        if (sites == site).any()
    )


def _sightings(plant: Sequence[Host], now: datetime) -> Iterator[Sighting]:
    first = int((now - timedelta(days=DAYS)).timestamp()) * NS
    for number, host in enumerate(plant):
        ts = first + number * NS
        yield Sighting(
            ts_ns=ts, site=host.site, segment=SEGMENT, source="arp", confidence=0.9, ip=host.ip,
            mac=host.mac, binding=Binding.AUTHORITATIVE,
        )  # fmt: skip
        if host.kind == "plc":
            vendor, product, firmware, _, _ = VENDORS[host.vendor]
            said = {"vendor": vendor, "product_name": product, "firmware": firmware}
            source, confidence = "cip_identity", 0.95
        else:
            said = {"hostname": f"{host.kind}-{host.zone}-{number}"}
            source, confidence = "dhcp", 0.8
        yield Sighting(
            ts_ns=ts + NS // 2, site=host.site, segment=SEGMENT, source=source, confidence=confidence,
            ip=host.ip, mac=host.mac, attributes=said,
        )  # fmt: skip


def _pack_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in sorted(PACK.glob("*.yaml")):
        rules += yaml.safe_load(path.read_text())["rules"]
    return rules


def write_alerts(session: Session, plant: Sequence[Host], count: int, now: datetime) -> int:
    """`count` alerts over the last `DAYS` days with their events; returns the events written."""
    rng = np.random.default_rng(3)
    rules = _pack_rules()
    noisy = [rule["id"] for rule in rules[:3]]
    suppressions = {rule_id: _suppression(session, rule_id, now) for rule_id in noisy}
    clients = [h for h in plant if h.kind == "client"]
    plcs = [h for h in plant if h.kind == "plc"]
    it = [h for h in plant if h.kind == "it"]
    rows: list[dict[str, Any]] = []
    events: list[Event] = []
    span = DAYS * 86_400
    for _ in range(count):
        first = now - timedelta(seconds=float(rng.random() * span))
        if rng.random() < 0.1:
            row = _zone_alert(rng, it, clients, plcs, first)
        else:
            rule = rules[int(rng.integers(0, len(rules)))]
            row = _rule_alert(rng, rule, clients, plcs, first)
        _live_out(rng, row, now, suppressions, events)
        rows.append(row)
    for chunk in range(0, len(rows), 20_000):
        session.execute(insert(Alert), rows[chunk : chunk + 20_000])
    events.sort(key=lambda e: e.occurred_at)
    for chunk in range(0, len(events), 50_000):
        eventlog.record_many(session, events[chunk : chunk + 50_000])
    return len(events)


def _suppression(session: Session, rule_id: str, now: datetime) -> uuid.UUID:
    row = Suppression(
        id=new_id(), rule_id=rule_id, site=SITES[0], asset=None, reason="noisy during commissioning",
        created_by="ana", created_at=now - timedelta(days=10), until=now + timedelta(days=20),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row.id


def _base(first: datetime, site: str, zone: str | None) -> dict[str, Any]:
    return {
        "id": new_id(),
        "site": site,
        "zone": zone,
        "status": AlertStatus.NEW,
        "occurrences": 1,
        "first_seen": first,
        "last_seen": first,
        "created_at": first,
        "updated_at": first,
        "status_note": "",
        "status_by": None,
        "verdict": None,
        "assignee": None,
        "severity_reason": "",
        "suppressed": False,
        "suppression_id": None,
        "rate_limited": False,
    }


def _rule_alert(rng: np.random.Generator, rule: dict[str, Any], clients: Sequence[Host],
                plcs: Sequence[Host], first: datetime) -> dict[str, Any]:  # fmt: skip
    plc = plcs[int(rng.integers(0, len(plcs)))]
    site_clients = [c for c in clients[:: max(1, len(clients) // 50)] if c.site == plc.site] or list(clients)
    client = site_clients[int(rng.integers(0, len(site_clients)))]
    evidence = {"kind": "protocol", "ts": int(first.timestamp() * NS), "src": client.ip, "dst": plc.ip}
    return {
        **_base(first, plc.site, plc.zone),
        "title": f"{rule['title']}: {client.ip} -> {plc.ip}",
        "description": " ".join(str(rule.get("description", "")).split()),
        "severity": int(Severity[str(rule["severity"]).upper()]),
        "confidence": str(rule.get("confidence", "medium")),
        "detector": "detection.rules",
        "rule_id": rule["id"],
        "rule_name": rule["title"],
        "techniques": list(rule.get("techniques", [])),
        "assets": sorted({client.ip, plc.ip}),
        "evidence": [evidence],
        "dedup_key": f"{rule['id']}|{client.ip}|{plc.ip}",
    }


def _zone_alert(rng: np.random.Generator, it: Sequence[Host], clients: Sequence[Host],
                plcs: Sequence[Host], first: datetime) -> dict[str, Any]:  # fmt: skip
    plc = plcs[int(rng.integers(0, len(plcs)))]
    if rng.random() < 0.5:
        rule, peers, operation, conduit = "zone.no-conduit", it, "read", None
    else:
        rule, peers, operation, conduit = "zone.operation-not-allowed", clients, "program", CONDUIT
    same_site = [p for p in peers[:: max(1, len(peers) // 40)] if p.site == plc.site] or list(peers)
    src = same_site[int(rng.integers(0, len(same_site)))]
    window = first.replace(minute=0, second=0, microsecond=0)
    summary = {
        "kind": "zone-check", "rule": rule, "records": int(rng.integers(1, 500)), "record_kind": "protocol",
        "first": first.isoformat(), "last": first.isoformat(), "window": window.isoformat(),
        "window_seconds": 3600, "segment": SEGMENT, "src": src.ip, "dst": plc.ip, "operation": operation,
        "src_zone": src.zone, "dst_zone": plc.zone, "protocol": "modbus", "conduit": conduit,
        "channel": None,
    }  # fmt: skip
    title = f"{zone_check._TITLES[rule]}: {src.ip} -> {plc.ip} ({operation})"
    return {
        **_base(first, plc.site, plc.zone),
        "title": title,
        "description": f"{src.zone} to {plc.zone}: {title}",
        "severity": int(zone_check.SEVERITY[rule]),
        "confidence": "high",
        "detector": zone_check.DETECTOR,
        "rule_id": rule,
        "rule_name": title.split(":")[0],
        "techniques": list(zone_check.TECHNIQUES.get(rule, ())),
        "assets": [src.ip, plc.ip],
        "evidence": [summary],
        "dedup_key": f"{rule}|{plc.site}|{SEGMENT}|{src.ip}|{plc.ip}|{operation}|{window.isoformat()}",
    }


def _live_out(rng: np.random.Generator, row: dict[str, Any], now: datetime,
              suppressions: dict[str, uuid.UUID], events: list[Event]) -> None:  # fmt: skip
    """What happened to the alert since it was raised: repeats, suppression, triage; and the
    events each step appended."""
    first: datetime = row["first_seen"]
    site, alert_id = row["site"], str(row["id"])

    def event(payload: object, at: datetime, source: str = "detection") -> None:
        events.append(envelope(payload, clock=FixedClock(at), source=source, site=site))

    event(AlertRaised(alert_id, row["title"], Severity(row["severity"]).name.lower(), row["rule_id"],
                      row["detector"]), first)  # fmt: skip
    row["occurrences"] = int(rng.geometric(0.4))
    last = min(now, first + timedelta(minutes=float(rng.exponential(90)) * (row["occurrences"] - 1)))
    row["last_seen"] = row["updated_at"] = last
    for n in range(2, min(row["occurrences"], 5) + 1):
        event(AlertRepeated(alert_id, n), first + (last - first) * (n - 1) / (row["occurrences"] - 1))
    suppression = suppressions.get(row["rule_id"])
    if suppression is not None and site == SITES[0] and first > now - timedelta(days=10):
        row["suppressed"], row["suppression_id"] = True, suppression
        return
    draw = rng.random()
    later = last + timedelta(hours=float(rng.exponential(8)))
    if later > now:
        return
    who = ANALYSTS[int(rng.integers(0, len(ANALYSTS)))]
    if rng.random() < 0.25:
        row["assignee"] = who
        event(AlertAssigned(alert_id, who, None, "ana"), later, "console")
    if draw < 0.45:
        return
    note = "looking into it"
    row.update(status=AlertStatus.ACKNOWLEDGED, status_by=who, status_note=note, updated_at=later)
    event(AlertAcknowledged(alert_id, who, note), later, "console")
    if draw < 0.7:
        return
    closed = later + timedelta(hours=float(rng.exponential(24)))
    if closed > now:
        return
    verdict = list(Verdict)[int(rng.integers(0, len(Verdict)))]
    row.update(status=AlertStatus.CLOSED, status_note="done", verdict=verdict.value, updated_at=closed)
    event(AlertClosed(alert_id, who, "done", verdict.value), closed, "console")


def learn_baselines(runtime: Runtime, ctx: Context, now: datetime) -> int:
    """`plantwarden baseline learn --site SITE --last 1d` for every site; the records checked."""
    end = int(now.timestamp()) * NS
    with runtime.ready_store().transaction() as session:
        model = current_model(session)
    checked = 0
    for site in SITES:
        sites = [s for s in model.sites if s.id == site] if model is not None else []
        tee = BaselineTee(runtime.ready_store(), ctx, site, None, scoper=Scoper(sites), raise_alerts=False)
        for batch in stored_batches(runtime.records(), site, end - LEARN_DAYS * 86_400 * NS, end):
            tee.write(batch)
        tee.close()
        checked += tee.checked
    return checked


def _user(store: Any) -> str:
    """The benchmark's user: admin and security analyst at every site, with a second factor.
    Returns the authenticator's secret (base32), to log in with a fresh code."""
    ctx = Context(source="bench", actor="bench")
    with store.transaction() as session:
        user, _ = accounts.create_user(session, ctx, USERNAME, password=PASSWORD)
        for site in SITES:
            for role in ("admin", "security_analyst"):
                accounts.grant_role(session, ctx, USERNAME, role, site)
        user_id = str(user.id)
    with store.transaction() as session:
        encoded, _ = accounts.enroll_totp(session, ctx, user_id)
        code = totp.code_at(totp.secret_from_base32(encoded), ctx.clock.now())
        accounts.confirm_totp(session, ctx, user_id, code)
    return encoded
