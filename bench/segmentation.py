"""The zone check: 1,000,000 protocol records against a model of 50 zones, 200 conduits, 500 subnets.

The model (seeded): 50 zones with 10 subnets each (/24 to /26 blocks drawn from 10.0.0.0/8, five
zones with an IPv6 /64 too), 1,000 declared assets (2 % declared in another zone than their
subnet's), 200 conduits between random zones with 1-3 channels each (Modbus, S7, EtherNet/IP,
OPC UA, DNP3, IEC 104, MQTT, BACnet, HTTPS, SSH, Modbus/TCP Security, plain TCP ports; some with
maintenance windows, schedules, required encryption, named clients or servers), three windows in
Europe/Berlin. The traffic: 6,000 conversations between 3,000 hosts, 95 % of them as a channel
allows, 5 % breaking a rule (unknown hosts, zones without a conduit, wrong ports or directions,
operations a channel does not allow, cleartext, program and control outside the windows), over
six hours of a Friday evening (the shift ends, the maintenance window opens); 0.5 % of the
conversations over IPv6. Records are drawn from the conversations, most of them reads.

1. Our check (`SegmentationCheck.check`: address lookup, keys, verdicts, windows, aggregation
   into violations with their sample records) runs on one core over the whole batch: once with
   a fresh checker (every kind of record decided for the first time) and then on the same
   checker (the verdicts known), fastest of `REPEATS`.
2. The reference (`bench/segmentation_reference.py`: one record at a time with `ipaddress`,
   subnets searched in turn, local time with `zoneinfo`) checks a sample of the same records;
   both must give every sampled record the same rule bits. Its rate is per record of the sample.
"""

from __future__ import annotations

import ipaddress
import os
import random
import time
from collections import Counter
from types import MappingProxyType
from typing import Any

import numpy as np

from bench.segmentation_reference import ReferenceCheck, operation_name
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import PROTOCOL_RECORDS, Operation, address
from plantwarden.detection.segmentation import SegmentationCheck
from plantwarden.zones.plant.model import (
    Asset,
    Channel,
    Conduit,
    SecurityLevel,
    SiteModel,
    Window,
    Zone,
)
from plantwarden.zones.plant.protocols import SERVICES

RECORDS = 1_000_000
SAMPLE = 20_000
REPEATS = 3
TARGET = 5_000_000
START_NS = 1_796_493_600_000_000_000  # Friday 2026-12-04 19:00 Europe/Berlin (18:00 UTC)
SPAN_NS = 6 * 3600 * 1_000_000_000  # to 01:00: the shift ends and the maintenance window opens
SL = SecurityLevel.uniform(2)
PROTOCOLS = (
    "modbus",
    "s7comm",
    "enip",
    "opcua",
    "dnp3",
    "iec104",
    "mqtt",
    "bacnet",
    "https",
    "ssh",
    "mbaps",
    "tcp",
)
WINDOWS = MappingProxyType(
    {
        "maint": Window("maint", (4, 5), 22 * 60, 6 * 60),
        "shift": Window("shift", (0, 1, 2, 3, 4), 6 * 60, 22 * 60),
        "night": Window("night", tuple(range(7)), 0, 5 * 60),
    }
)


def build_site(seed: int = 21) -> SiteModel:
    """50 zones, 500 subnets, 1,000 assets, 200 conduits (see the module's docstring)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible benchmark data, not secrets
    blocks = rng.sample(range(1 << 16), 500)
    zones = []
    for z in range(50):
        subnets: list[Any] = []
        for block in blocks[z * 10 : z * 10 + 10]:
            prefix = rng.choice((24, 24, 25, 26))
            subnets.append(ipaddress.ip_network(f"10.{block >> 8}.{block & 255}.0/{prefix}"))
        if z < 5:
            subnets.append(ipaddress.ip_network(f"fd00:{z}::/64"))
        zones.append(Zone(f"zone-{z:02d}", f"Zone {z}", rng.choice((1, 2, 3)), tuple(subnets), (), SL))
    assets = []
    for index in range(1000):
        home = zones[index % 50]
        net = rng.choice([n for n in home.subnets if n.version == 4])
        host = net.network_address + rng.randrange(1, net.num_addresses - 1)
        declared = zones[rng.randrange(50)].id if rng.random() < 0.02 else home.id
        assets.append(Asset(f"asset-{index:04d}", f"Asset {index}", (host,), declared))
    conduits = [_conduit(rng, c, zones, assets) for c in range(200)]
    return SiteModel(
        "bench", "Bench plant", "Europe/Berlin", tuple(zones), tuple(conduits), tuple(assets), WINDOWS
    )


def _conduit(rng: random.Random, index: int, zones: list[Zone], assets: list[Asset]) -> Conduit:
    members = rng.sample([z.id for z in zones], 3 if rng.random() < 0.1 else 2)
    channels = []
    for number in range(rng.randint(1, 3)):
        protocol = rng.choice(PROTOCOLS)
        service = SERVICES[protocol]
        initiator, responder = rng.sample(members, 2)
        operations = {
            "read",
            *rng.sample(["write", "program", "control", "diagnostic", "identify"], rng.randint(0, 3)),
        }
        roll = rng.random()
        servers = [a.id for a in assets if a.zone == responder][:2] if roll > 0.9 else []
        channels.append(
            Channel(
                id=f"{protocol}-{number}",
                protocol=protocol,
                transport="tcp" if service.transport == "tcp" else "udp",
                ports=service.ports or (rng.randrange(1024, 60000),),
                initiators=(initiator,),
                responders=(responder,),
                operations=frozenset(operations),
                maintenance=("maint",) if roll < 0.2 else (),
                schedule=("shift",) if 0.2 <= roll < 0.23 else (),
                servers=tuple(servers),
                encrypted=service.encrypted or (0.3 <= roll < 0.4 and service.record_protocol is None),
            )
        )
    return Conduit(f"conduit-{index:03d}", f"Conduit {index}", tuple(members), tuple(channels), SL)


def build_records(site: SiteModel, count: int, seed: int = 22) -> RecordBatch:
    """`count` records drawn from 6,000 conversations (5 % of them breaking a rule)."""
    rng = np.random.default_rng(seed)
    conversations = _conversations(site, random.Random(seed))  # noqa: S311 - benchmark data
    picks = rng.integers(0, len(conversations), count)
    table = {name: np.array([c[i] for c in conversations]) for i, name in enumerate(_CONVERSATION)}
    columns: dict[str, Any] = {name: values[picks] for name, values in table.items()}
    reads = (rng.random(count) < 0.7) & table["can_read"][picks]
    columns["operation"] = np.where(reads, Operation.READ, columns["operation"])
    del columns["can_read"]
    columns["src_addr"] = columns["src_addr"].astype("S16")
    columns["dst_addr"] = columns["dst_addr"].astype("S16")
    columns.update(
        ts=np.sort(START_NS + rng.integers(0, SPAN_NS, count)),
        site=site.id,
        segment="default",
        src_port=rng.integers(1024, 65535, count),
        function=3,
        unit=1,
        address=rng.integers(0, 1000, count),
        quantity=10,
        status=0,
        value=np.nan,
        response_ns=2_000_000,
    )
    return RecordBatch.build(PROTOCOL_RECORDS, columns, count)


_CONVERSATION = ("src_addr", "dst_addr", "dst_port", "transport", "protocol", "operation", "can_read")


def _conversations(site: SiteModel, rng: random.Random) -> list[tuple[Any, ...]]:
    hosts = {z.id: [_host(rng, z) for _ in range(50)] for z in site.zones}
    servers = {z.id: [a for a in site.assets if a.zone == z.id] or hosts[z.id] for z in site.zones}
    found = []
    channels = [(conduit, channel) for conduit in site.conduits for channel in conduit.channels]
    for _ in range(6000):
        _, channel = rng.choice(channels)
        src = rng.choice(hosts[channel.initiators[0]])
        dst = rng.choice(servers[channel.responders[0]])
        if channel.servers:
            dst = site.asset(rng.choice(channel.servers))
        service = SERVICES[channel.protocol]
        protocol = service.record_protocol or 0
        usual = sorted(channel.operations - {"program", "control"})
        operation = rng.choice(sorted(channel.operations) if rng.random() < 0.05 else usual)
        port, src_host, dst_host = rng.choice(channel.ports), src, _address_of(dst)
        if rng.random() < 0.05:
            src_host, dst_host, port, protocol, operation = _broken(
                rng, site, hosts, src_host, dst_host, port, protocol, operation
            )
        transport = 6 if service.transport == "tcp" else 17
        found.append(
            (
                address(src_host),
                address(dst_host),
                port,
                transport,
                protocol,
                int(Operation[operation.upper()]),
                "read" in channel.operations,
            )
        )
    return found


def _host(rng: random.Random, zone: Zone) -> str:
    net = rng.choice(zone.subnets)
    if net.version == 6 and rng.random() > 0.05:  # IPv6 for a few conversations only
        net = next(n for n in zone.subnets if n.version == 4)
    return str(net.network_address + rng.randrange(1, min(net.num_addresses - 1, 1 << 16)))


def _address_of(target: Any) -> str:
    return str(target.addresses[0]) if isinstance(target, Asset) else str(target)


def _broken(
    rng: random.Random,
    site: SiteModel,
    hosts: dict[str, list[str]],
    src: str,
    dst: str,
    port: int,
    protocol: int,
    operation: str,
) -> tuple[str, str, int, int, str]:
    """A conversation changed to break a rule (or, by chance, still allowed)."""
    way = rng.randrange(6)
    if way == 0:
        return f"172.16.{rng.randrange(256)}.{rng.randrange(1, 255)}", dst, port, protocol, operation
    if way == 1:
        return rng.choice(hosts[rng.choice(site.zones).id]), dst, port, protocol, operation
    if way == 2:
        return src, dst, rng.choice((445, 3389, 8080)), protocol, operation
    if way == 3:
        return src, dst, port, protocol, rng.choice(("program", "control", "malformed"))
    if way == 4:
        return src, dst, port, 1, operation  # Modbus in cleartext on the channel's port
    return dst, src, port, protocol, operation


def _core() -> int:
    return max(os.sched_getaffinity(0))


def run(*, quick: bool = False) -> None:
    """Print the rate of our check and of the reference, their ratio, and whether they agree."""
    os.sched_setaffinity(0, {_core()})
    count = RECORDS // 10 if quick else RECORDS
    sample_size = SAMPLE // 10 if quick else SAMPLE
    site = build_site()
    batch = build_records(site, count)
    subnets = sum(len(z.subnets) for z in site.zones)
    channels = sum(len(c.channels) for c in site.conduits)
    print(
        f"## segmentation: {count:,} protocol records against {len(site.zones)} zones, {subnets} subnets,"
        f" {len(site.assets):,} assets, {len(site.conduits)} conduits ({channels} channels); one core"
    )
    started = time.perf_counter()
    checker = SegmentationCheck(site)
    compiled = time.perf_counter() - started
    started = time.perf_counter()
    violations = checker.check(batch)
    first = time.perf_counter() - started
    steady = min(_timed(checker, batch) for _ in range(1 if quick else REPEATS))
    verdicts = checker.verdicts(batch)
    flagged = int(np.count_nonzero(verdicts.bits))
    print(f"model compiled in {compiled * 1000:.0f} ms; {len(checker.book.verdicts)} distinct verdicts")
    print(f"violating records: {flagged:,} ({flagged / count:.1%}), in {len(violations):,} violations")
    print(
        "by rule: "
        + ", ".join(f"{rule} {n:,}" for rule, n in sorted(Counter(v.rule for v in violations).items()))
    )
    print(f"our check, fresh checker        {first:6.3f} s  {count / first:>12,.0f} records/s")
    print(f"our check, verdicts known       {steady:6.3f} s  {count / steady:>12,.0f} records/s")

    rows = np.random.default_rng(23).choice(count, sample_size, replace=False)
    sample = batch.take(np.sort(rows))
    reference = ReferenceCheck(site)
    started = time.perf_counter()
    expected = [reference.bits(record, operation_name(record["operation"])) for record in sample.rows()]
    theirs = time.perf_counter() - started
    agree = int(np.count_nonzero(np.array(expected, dtype=np.uint8) == verdicts.bits[np.sort(rows)]))
    print(
        f"reference, per record           {theirs:6.3f} s  {sample_size / theirs:>12,.0f} records/s"
        f" (sample of {sample_size:,})"
    )
    print(f"agreement on the sample: {agree:,} of {sample_size:,} records have the same rule bits")
    assert agree == sample_size
    print(
        f"ratio: x{(count / first) / (sample_size / theirs):,.0f} (fresh),"
        f" x{(count / steady) / (sample_size / theirs):,.0f} (known);"
        f" target >= {TARGET:,} records/s: {'met' if count / first >= TARGET else 'NOT met'} (fresh),"
        f" {'met' if count / steady >= TARGET else 'NOT met'} (known)"
    )


def _timed(checker: SegmentationCheck, batch: RecordBatch) -> float:
    started = time.perf_counter()
    checker.check(batch)
    return time.perf_counter() - started
