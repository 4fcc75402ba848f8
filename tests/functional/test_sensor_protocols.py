"""The sensor's stream path for the protocols beside Modbus gives, PDU for PDU, what the exact
decoder alone gives over the same streams (`tests.payload_support`), on every shared capture of
each protocol, whatever the batch size: the fast path never shows in the result."""

from __future__ import annotations

import importlib
import os
from collections import Counter
from enum import IntEnum
from pathlib import Path

import numpy as np
import pytest

from plantwarden.capture.layers.columns import PROTO_TCP, PROTO_UDP
from plantwarden.capture.pcap import read_capture
from plantwarden.monitoring.identity_frames import NAMES as IDENTITY_NAMES
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.sensor import Sensor
from plantwarden.protocols.common import Summary
from plantwarden.protocols.identity import IdentityFinding, Kind
from tests.functional.test_mqtt_oracle import write_capture
from tests.payload_support import decoded, payloads
from tests.tshark_support import fields

DATASETS = Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
IN_CI = os.environ.get("CI", "").lower() == "true"
TSHARK_NAMES = {
    "iec104": "iec60870_104",
    "s7comm": "s7comm",
    "dnp3": "dnp3",
    "enip": "enip",
    "opcua": "opcua",
    "mqtt": "mqtt",
    "bacnet": "bvlc",
}
"""The protocol's name in the inventory's column of what tshark decodes."""
WRITTEN = {"mqtt"}
"""Protocols no shared capture holds: the capture their oracle test writes stands in."""


def captures() -> list[tuple[str, Path]]:
    inventory = DATASETS / "PCAP_INVENTORY.tsv"
    if not inventory.exists():
        return []
    rows = [line.split("\t") for line in inventory.read_text().splitlines()[1:]]
    return [
        (name, DATASETS / row[0])
        for name in sorted(PROTOCOLS)
        for row in rows
        if len(row) > 3 and TSHARK_NAMES[name] in row[3].split()
    ]


def test_the_shared_captures_are_there() -> None:
    if not captures():
        message = f"the shared datasets are not at {DATASETS} (set PW_DATASETS)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    assert {name for name, _ in captures()} == set(PROTOCOLS) - WRITTEN


@pytest.mark.parametrize("batch_size", [65536, 7])
def test_the_sensor_gives_what_the_exact_decoder_gives_on_a_written_mqtt_capture(
    tmp_path: Path, batch_size: int
) -> None:
    check("mqtt", write_capture(tmp_path / "mqtt.pcap"), batch_size)


@pytest.mark.parametrize(("name", "capture"), captures(), ids=lambda value: getattr(value, "name", value))
@pytest.mark.parametrize("batch_size", [65536, 7])
def test_the_sensor_gives_what_the_exact_decoder_gives(name: str, capture: Path, batch_size: int) -> None:
    check(name, capture, batch_size)


def check(name: str, capture: Path, batch_size: int) -> None:
    protocol = PROTOCOLS[name]
    module = importlib.import_module(f"plantwarden.protocols.{name}")
    expected: dict[tuple[int, int], tuple[bool, Summary, int]] = {}
    if protocol.module.tcp_ports:
        # A protocol with stream state (DNP3's transport reassembly) keeps it per stream; its
        # state is keyed by link addresses, so one decoder over the capture stands in here.
        decode = (
            protocol.stream_decoder().decode_payload if protocol.stream_decoder else module.decode_payload
        )
        found = decoded(capture, PROTO_TCP, protocol.module.tcp_ports, decode)
        summaries, own = protocol.summarise([message for _, message in found.values()])
        keys = protocol.keys.keys(own, summaries).tolist() if found else []
        for (frame_pdu, (side, message)), key in zip(found.items(), keys, strict=True):
            expected[frame_pdu] = (side, message.summary(), key)
    decode_datagram = protocol.decode_datagram
    if protocol.module.udp_ports and decode_datagram is not None:
        for payload in payloads(capture, PROTO_UDP, protocol.module.udp_ports):
            port = payload.stream[1] if payload.from_server else payload.stream[3]
            messages = decode_datagram(payload.data, payload.from_server, port)
            summaries, own = protocol.summarise(messages)
            keys = protocol.keys.keys(own, summaries) if messages else np.zeros(0, dtype=np.int64)
            pdus = zip(summaries.summaries(), keys.tolist(), strict=True)
            for number, (summary, key) in enumerate(pdus):
                expected[payload.frame, number] = (payload.from_server, summary, key)
    sensor = Sensor(protocols=(protocol,))
    seen: dict[tuple[int, int], tuple[bool, Summary, int]] = {}
    for batch in read_capture(capture, batch_size=batch_size):
        sensor.process(batch)
        part = sensor.last_protocols[name]
        index: Counter[int] = Counter()
        columns = (
            part.packet.tolist(),
            part.from_server.tolist(),
            part.summary.summaries(),
            part.key.tolist(),
        )
        for packet, side, summary, key in zip(*columns, strict=True):
            frame = batch.first_number + packet
            seen[frame, index[frame]] = (side, summary, key)
            index[frame] += 1
    counters = sensor.finish().protocols[name]
    assert seen == expected
    assert counters.pdus == len(expected) > 0
    assert counters.exact_segments <= counters.segments


IDENTITY_CAPTURES = [
    "pcaps/iti-ics-security-tools/profinet/ChangeIPUsingDCP.pcap",
    "pcaps/iti-ics-security-tools/profinet/PROFINET-RT.pcap",
    "pcaps/iti-ics-security-tools/profinet/Profinet_Failed.pcap",
    "pcaps/cisagov-icsnpp/bsap/bsap-ip_example.pcap",
    "pcaps/cisagov-icsnpp/enip/enip_cip_example.pcap",
]


@pytest.mark.parametrize("relative", IDENTITY_CAPTURES, ids=lambda path: Path(path).name)
def test_the_sensor_finds_the_identity_frames_tshark_finds(relative: str) -> None:
    capture = DATASETS / relative
    if not capture.exists():
        if IN_CI:
            pytest.fail(f"{capture} is missing")
        pytest.skip(f"the shared datasets are not at {DATASETS} (set PW_DATASETS)")
    sensor = Sensor(identity=True)
    kinds: dict[int, str] = {}
    for batch in read_capture(capture):
        sensor.process(batch)
        found = sensor.last_identity
        if found is not None:
            names = [IDENTITY_NAMES[Kind(kind)] for kind in found.kind.tolist()]
            kinds |= dict(zip((found.packet + batch.first_number).tolist(), names, strict=True))
    counters = sensor.finish().protocols
    theirs = {}
    for frame, protocols in fields(capture, ["frame.number", "frame.protocols"]):
        layers = protocols.split(":")
        name = next((n for n in ("arp", "lldp", "pn_dcp", "dhcp") if n in layers), None)
        if name is not None:
            theirs[int(frame)] = name
    assert kinds == theirs
    for kind_name in IDENTITY_NAMES.values():
        assert counters[kind_name].pdus == sum(1 for kind in kinds.values() if kind == kind_name)
        assert counters[kind_name].malformed == 0


def unexpected_codes() -> dict[str, int]:
    """Per stream protocol, the code of its finding UNEXPECTED (the decoder raised inside)."""
    codes = {}
    for name in PROTOCOLS:
        module = importlib.import_module(f"plantwarden.protocols.{name}")
        findings = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, IntEnum)]
        (unexpected,) = [f.UNEXPECTED for f in findings if "UNEXPECTED" in f.__members__]  # type: ignore[attr-defined]
        codes[name] = int(unexpected)
    return codes


def test_every_shared_capture_ends_cleanly_with_every_protocol_on() -> None:
    """Whatever a capture holds (protocols listed or not: GOOSE, MMS, HART-IP, C37.118, ...),
    the sensor reads it to the end, and no decoder ever fails inside (UNEXPECTED)."""
    inventory = DATASETS / "PCAP_INVENTORY.tsv"
    if not inventory.exists():
        if IN_CI:
            pytest.fail(f"the shared datasets are not at {DATASETS}")
        pytest.skip(f"the shared datasets are not at {DATASETS} (set PW_DATASETS)")
    codes = unexpected_codes()
    paths = [DATASETS / line.split("\t")[0] for line in inventory.read_text().splitlines()[1:]]
    decoded = Counter[str]()
    for path in paths:
        sensor = Sensor(protocols=tuple(PROTOCOLS.values()), identity=True)
        for batch in read_capture(path):
            sensor.process(batch)
            for name, found in sensor.last_protocols.items():
                assert not (found.summary.finding == codes[name]).any(), (path.name, name)
            if sensor.last_identity is not None:
                identity_findings = sensor.last_identity.columns.summary.finding
                assert not (identity_findings == IdentityFinding.UNEXPECTED).any(), path.name
        counters = sensor.finish()
        assert counters.packets > 0, path.name
        decoded.update({name: c.pdus for name, c in counters.protocols.items()})
    assert len(paths) >= 170
    assert all(decoded[name] > 0 for name in set(PROTOCOLS) - WRITTEN), decoded
