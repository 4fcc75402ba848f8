"""The oracle: the EtherNet/IP exact decoder's PDUs against tshark's, frame by frame and PDU by PDU,
for every shared capture whose tshark protocols include enip; and the column extractor against the
exact decoder on the same payloads.

tshark's JSON keeps a frame's layers in order when read with duplicate keys kept (each `enip`
layer starts a PDU; the `cip`, `cipcm`, `cipcls` and `cipio` layers after it belong to it), so
both sides are keyed by (frame number, index of the PDU within the frame). Per PDU the
encapsulation header (command, length, session, status, options), the connection id and
sequence, the ListIdentity fields, and the CIP services in dissection order (every service byte,
embedded ones included, general statuses of replies, and of requests the class, instance,
attribute and symbol of every path) must agree, apart from the REVIEWED differences below.

A second, independent reader: CISA ICSNPP's Zeek baselines (expected enip, cip, cip_identity and
cip_io logs) for the three ICSNPP captures, compared row for row as multisets.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plantwarden.protocols import enip
from plantwarden.protocols.enip.cip import CipMessage, CipPath
from plantwarden.protocols.enip.extract import decode_segments
from tests.payload_support import decoded, payloads
from tests.tshark_support import CHECKSUMS, tshark

DATASETS = Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
IN_CI = os.environ.get("CI", "").lower() == "true"
TCP, UDP = 6, 17

Pdu = dict[str, Any]
HEADER = {
    "enip.command": "command",
    "enip.length": "length",
    "enip.session": "session",
    "enip.status": "status",
    "enip.options": "options",
}
IDENTITY = {
    "enip.lir.vendor": "vendor",
    "enip.lir.devtype": "device_type",
    "enip.lir.prodcode": "product_code",
    "enip.lir.revision": "revision",
    "enip.lir.status": "device_status",
    "enip.lir.serial": "serial",
    "enip.lir.name": "product_name",
    "enip.lir.state": "state",
}
LISTS = {
    "cip.service": "services",
    "cip.genstat": "general_status",
    "cip.class": "classes",
    "cip.instance": "instances",
    "cip.attribute": "attributes",
    "cip.symbol": "symbols",
}
CONNECTION = {"enip.cpf.cai.connid": "connection_id", "enip.cpf.sai.connid": "connection_id"}
SEQUENCE = {"enip.cpf.sai.seq": "sequence", "cip.seq": "sequence"}
REQUEST_ONLY = ("classes", "instances", "attributes", "symbols")
"""tshark repeats the request's path in a reply (generated from the request it pairs): compared
on requests only, where it is on the wire."""

REVIEWED: dict[str, dict[tuple[int, int, str], str]] = {}
"""Per capture, (frame, PDU index, field) -> why tshark and the decoder differ there."""


def enip_captures() -> list[Path]:
    inventory = DATASETS / "PCAP_INVENTORY.tsv"
    if not inventory.exists():
        return []
    rows = [line.split("\t") for line in inventory.read_text().splitlines()[1:]]
    return [DATASETS / row[0] for row in rows if len(row) > 3 and "enip" in row[3].split()]


def _number(text: str) -> int:
    return int(text, 0)


def _walk(pairs: Any, pdu: Pdu) -> None:
    """Collect the compared fields of a layer, depth first, in the order tshark shows them."""
    if isinstance(pairs, list) and pairs and isinstance(pairs[0], tuple):
        for key, value in pairs:
            if isinstance(value, str):
                _field(key, value, pdu)
            else:
                _walk(value, pdu)
    elif isinstance(pairs, list):
        for value in pairs:
            _walk(value, pdu)


def _field(key: str, value: str, pdu: Pdu) -> None:
    if key in HEADER:
        pdu[HEADER[key]] = _number(value)
    elif key in IDENTITY:
        pdu[IDENTITY[key]] = value if key == "enip.lir.name" else _number(value)
    elif key in LISTS:
        pdu.setdefault(LISTS[key], []).append(value if key == "cip.symbol" else _number(value))
    elif key in CONNECTION:
        pdu["connection_id"] = _number(value)
    elif key in SEQUENCE:
        pdu["sequence"] = _number(value)


def tshark_pdus(capture: Path) -> dict[tuple[int, int], Pdu]:
    """Every EtherNet/IP PDU tshark dissects, by (frame number, index within the frame)."""
    command = [tshark(), "-n", "-r", str(capture), *CHECKSUMS, "-T", "json", "-Y", "enip"]
    output = subprocess.run(command, capture_output=True, check=True, timeout=600).stdout
    pdus: dict[tuple[int, int], Pdu] = {}
    for packet in json.loads(output or b"[]", object_pairs_hook=list):
        source = dict(packet)["_source"]
        layers = dict(source)["layers"]
        frame = int(dict(dict(layers)["frame"])["frame.number"])
        index, current = -1, None
        for name, layer in layers:
            if name == "enip":
                index += 1
                current = pdus[frame, index] = {}
            if current is not None and (name == "enip" or name.startswith("cip")):
                _walk(layer, current)
    return pdus


def sensor_pdu(message: enip.EnipMessage, tracker: enip.ConnectionTracker) -> Pdu:
    """The decoder's values for the fields tshark shows, under the same names. tshark follows
    connections too: it shows the path a connected message's connection (and a Forward_Close's)
    was opened to, which `tracker` (fed with the capture's messages before this one) resolves."""
    pdu: Pdu = {}
    if message.command >= 0:
        pdu.update(
            command=message.command,
            length=message.length,
            session=message.session,
            status=message.encapsulation_status,
            options=message.options,
        )
    if message.connection_id >= 0:
        pdu["connection_id"] = message.connection_id
    if message.sequence >= 0:
        pdu["sequence"] = message.sequence
    if message.identities:
        first = message.identities[0]
        pdu.update(
            vendor=first.vendor_id,
            device_type=first.device_type,
            product_code=first.product_code,
            revision=first.revision_major << 8 | first.revision_minor,  # tshark: one 16-bit number
            device_status=first.status,
            serial=first.serial_number,
            product_name=first.product_name,
            state=first.state,
        )
    if message.cip is not None and message.cip.service >= 0:
        _cip_lists(message.cip, pdu, tracker.resolve(message), tracker)
    return pdu


def _cip_lists(
    cip: CipMessage, pdu: Pdu, connection_path: CipPath | None, tracker: enip.ConnectionTracker
) -> None:
    lists: dict[str, list[Any]] = {name: [] for name in LISTS.values()}
    if connection_path is not None:
        _path_lists(connection_path, lists)
    for message in cip.chain():
        lists["services"].append(message.service | (0x80 if message.is_response else 0))
        if message.is_response:
            lists["general_status"].append(message.general_status)
        paths = [message.path]
        if message.connection is not None:
            paths.append(message.connection.connection_path)
            if message.connection.kind == "forward_close":
                paths.append(tracker.opened_path(message.connection.triad))
        for path in paths:
            if path is not None:
                _path_lists(path, lists)
        lists["attributes"] += message.attributes
    pdu.update({name: values for name, values in lists.items() if values})


def _path_lists(path: CipPath, lists: dict[str, list[Any]]) -> None:
    for kind, value in path.segments:
        name = {"class": "classes", "instance": "instances", "attribute": "attributes", "symbol": "symbols"}
        if kind in name:
            lists[name[kind]].append(value)


def sensor_pdus(capture: Path) -> dict[tuple[int, int], tuple[bool, enip.EnipMessage]]:
    found = decoded(capture, TCP, (enip.TCP_PORT,), enip.decode_payload)
    found.update(decoded(capture, UDP, (enip.UDP_PORT,), enip.decode_datagram))
    found.update(decoded(capture, UDP, (enip.IO_PORT,), enip.decode_io_datagram))
    return found


def compare(
    capture: Path,
) -> tuple[int, list[tuple[int, int, str, Any, Any]], list[Any], list[Any], Counter[str]]:
    """Matched PDUs, differences (frame, index, field, tshark's, ours), missing, extra, and how many
    PDUs each field was compared on."""
    theirs = tshark_pdus(capture)
    sensed = sensor_pdus(capture)
    tracker, ours = enip.ConnectionTracker(), {}
    for key in sorted(sensed):
        message = sensed[key][1]
        ours[key] = sensor_pdu(message, tracker)
        tracker.observe(message)
    differences, compared = [], Counter[str]()
    for key in sorted(set(theirs) & set(ours)):
        mine, other = ours[key], theirs[key]
        request = not sensed[key][0]
        for name in sorted(set(mine) | set(other)):
            if name in REQUEST_ONLY and not request:
                continue
            compared[name] += 1
            if mine.get(name) != other.get(name):
                differences.append((*key, name, other.get(name), mine.get(name)))
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    return len(set(theirs) & set(ours)), differences, missing, extra, compared


@pytest.mark.parametrize("capture", enip_captures(), ids=lambda path: path.name)
def test_the_decoder_agrees_with_tshark_on_a_shared_capture(capture: Path) -> None:
    matched, differences, missing, extra, compared = compare(capture)
    reviewed = REVIEWED.get(capture.name, {})
    unexplained = [d for d in differences if d[:3] not in reviewed]
    assert unexplained == [], f"{capture.name}: {unexplained[:10]}"
    assert {d[:3] for d in differences} == set(reviewed), "a reviewed difference is gone: update the list"
    assert (missing, extra) == ([], []), f"{capture.name}: missing {missing[:10]}, extra {extra[:10]}"
    assert matched > 0
    assert compared["services"] + compared["command"] > 0


@pytest.mark.parametrize("capture", enip_captures(), ids=lambda path: path.name)
def test_nothing_unexpected_and_both_paths_agree_on_a_shared_capture(capture: Path) -> None:
    segments: list[tuple[bytes, bool, int]] = []
    for transport, port, kind in ((TCP, enip.TCP_PORT, 0), (UDP, enip.UDP_PORT, 1), (UDP, enip.IO_PORT, 2)):
        segments += [(p.data, p.from_server, kind) for p in payloads(capture, transport, (port,))]
    buffer = np.frombuffer(b"".join(data for data, _, _ in segments), dtype=np.uint8)
    lengths = np.array([len(data) for data, _, _ in segments], dtype=np.int64)
    starts = (np.cumsum(lengths) - lengths).astype(np.int64)
    server = np.array([sent for _, sent, _ in segments], dtype=np.bool_)
    datagram = np.array([kind == 1 for _, _, kind in segments], dtype=np.bool_)
    io = np.array([kind == 2 for _, _, kind in segments], dtype=np.bool_)
    fast = enip.extract(buffer, starts, lengths, server, datagram, io)
    exact = decode_segments(buffer, starts, lengths, server, datagram, io)
    assert fast.differences(exact) == []
    assert len(fast) > 0
    assert int(np.count_nonzero(fast.summary.finding == enip.EnipFinding.UNEXPECTED)) == 0
    assert all(
        message.parse_status()[1] != enip.EnipFinding.UNEXPECTED
        for _, message in sensor_pdus(capture).values()
    )


ICSNPP = DATASETS / "pcaps" / "cisagov-icsnpp" / "enip"
ICSNPP_CASES = {
    "analyzer.basic": "enip_cip_example.pcap",
    "analyzer.set_attr_single_service": "set_attribute_single_service_cip.pcapng",
    "analyzer.multiple_service_request": "multiple_service_packet_cip.pcapng",
}
"""CISA ICSNPP's Zeek baselines (expected logs) and the capture each was made from."""


def _log(path: Path) -> list[list[str]]:
    """A Zeek log's rows after the 11 connection columns ([] when the log is not there)."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [line.split("\t")[11:] for line in lines if line.strip() and not line.startswith("#")]


def _hex(value: int) -> str:
    return "-" if value < 0 else f"0x{value:02x}"


def icsnpp_rows(capture: Path) -> dict[str, Counter[tuple[str, ...]]]:
    """The decoder's rows in the ICSNPP logs' terms, per log (as multisets: the logs' order is
    Zeek's event order, not always the capture's)."""
    rows: dict[str, Counter[tuple[str, ...]]] = {
        name: Counter() for name in ("enip", "cip", "identity", "io")
    }
    for sent, message in sensor_pdus(capture).values():
        if message.io:
            data = message.items[1].data if len(message.items) > 1 else b""
            rows["io"][
                f"0x{message.connection_id:08x}", str(message.sequence), str(len(data)), data.hex()
            ] += 1
            continue
        rows["enip"][_hex(message.command), str(message.length), f"0x{message.session:08x}"] += 1
        for identity in message.identities:
            rows["identity"][
                str(identity.vendor_id), str(identity.device_type), str(identity.product_code),
                f"{identity.revision_major}.{identity.revision_minor}", f"0x{identity.status:04x}",
                f"0x{identity.serial_number:08x}", identity.product_name, f"0x{identity.state:04x}",
            ] += 1  # fmt: skip
        if message.cip is None or message.cip.service < 0:
            continue
        for cip in message.cip.chain():
            path = cip.path
            rows["cip"][
                str(message.sequence) if message.sequence >= 0 else "-",
                "response" if sent else "request",
                _hex(cip.service),
                _hex(cip.general_status),
                _hex(-1 if path is None else path.class_id),
                _hex(-1 if path is None else path.instance),
                _hex(-1 if path is None else path.attribute),
            ] += 1
    return rows


@pytest.mark.parametrize("case", sorted(ICSNPP_CASES))
def test_the_decoder_agrees_with_the_icsnpp_expected_logs(case: str) -> None:
    folder = ICSNPP / "zeek-baseline" / case
    if not folder.exists():
        message = f"the ICSNPP baselines are not at {folder} (set PW_DATASETS)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    ours = icsnpp_rows(ICSNPP / ICSNPP_CASES[case])
    logs = {"enip": "enip.log", "cip": "cip.log", "identity": "cip_identity.log", "io": "cip_io.log"}
    columns = {
        "enip": (0, 2, 3),  # command, length, session
        "cip": (0, 1, 2, 4, 8, 10, 11),  # sequence, direction, service, status, class, instance, attribute
        "identity": (
            3,
            5,
            7,
            8,
            9,
            10,
            11,
            12,
        ),  # vendor, type, product, revision, status, serial, name, state
        "io": (0, 1, 2, 3),  # connection id, sequence number, data length, data
    }
    compared = 0
    for name, log in logs.items():
        if not (folder / log).exists():
            continue
        theirs: Counter[tuple[str, ...]] = Counter(
            tuple(row[index] for index in columns[name]) for row in _log(folder / log)
        )
        mine = ours[name]
        assert mine == theirs, (
            f"{case} {name}: {(mine - theirs).most_common(3)} / {(theirs - mine).most_common(3)}"
        )
        compared += sum(theirs.values())
    assert compared > 0


def test_the_shared_captures_are_there() -> None:
    if not enip_captures():
        message = f"the shared datasets are not at {DATASETS} (set PW_DATASETS)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    assert len(enip_captures()) >= 16
