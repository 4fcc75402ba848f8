"""The oracle: the sensor's OPC UA messages against tshark's, frame by frame and message by
message, for every OPC UA capture of the shared datasets.

Per message: type, chunk type, size, secure channel id, token id, sequence number and request id
(where the body is readable), the service type id, a response's service result, the OPN
security policy URI, security mode and request type, the Hello/Acknowledge parameters and an
Error's code must agree; neither side may see a message the other does not, apart from the
reviewed differences below (each with the reason).

Two captures use other ports than 4840 (48010 and 12001): tshark is told to decode them as
OPC UA and the sensor's payloads are picked on the same ports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plantwarden.protocols.opcua import (
    MESSAGE_TYPES,
    OpcuaFinding,
    OpcuaMessage,
    decode_payload,
    decode_segments,
    extract,
)
from tests.payload_support import decoded, payloads
from tests.tshark_support import CHECKSUMS, tshark

DATASETS = Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
IN_CI = os.environ.get("CI", "").lower() == "true"
TCP = 6
PORTS = {
    "open62541_client-server_mainloop-not-localhost-non-standard-port.pcap": 48010,
    "opc-ua-ap-method-wireshark-freeze.pcap": 12001,
}
"""Captures on other ports than 4840, which tshark's inventory does not list as OPC UA."""
EXTRA = (
    "pcaps/cisagov-icsnpp/opcua-binary/open62541_client-server_mainloop-not-localhost-non-standard-port.pcap",
    "pcaps/iti-ics-security-tools/opcua/opc-ua-ap-method-wireshark-freeze.pcap",
)

REVIEWED: dict[str, dict[tuple[int, int, str], str]] = {}
"""(frame, message index, field) -> why we differ from tshark, per capture."""
REVIEWED_UNMATCHED: dict[str, dict[str, list[tuple[int, int]]]] = {
    # A capture with a gap: the server's 13990-byte CreateSessionResponse ends in frame 30, whose
    # bytes the client had acknowledged before the capture saw them, so tshark calls frame 30 a
    # "spurious retransmission" and leaves the message unassembled (Zeek's ICSNPP baseline has no
    # CreateSessionResponse either). The sensor's TCP reader takes the bytes as new: a TCP
    # reading, not an OPC UA one; the message it completes is sound (channel 13, result Good).
    "opcua_with-gap_with-handshake.pcap": {"missing": [], "extra": [(30, 0)]},
}


def opcua_captures() -> list[Path]:
    inventory = DATASETS / "PCAP_INVENTORY.tsv"
    if not inventory.exists():
        return []
    rows = [line.split("\t") for line in inventory.read_text().splitlines()[1:]]
    listed = [row[0] for row in rows if len(row) > 3 and "opcua" in row[3].split()]
    present = {row[0] for row in rows}
    return [DATASETS / path for path in [*listed, *(path for path in EXTRA if path in present)]]


def _first(tree: Any, found: dict[str, str]) -> None:
    """Each field's first value in `tree` (tshark's JSON, depth first)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if isinstance(value, str):
                found.setdefault(key, value)
            elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                found.setdefault(key, value[0])
            else:
                _first(value, found)
    elif isinstance(tree, list):
        for item in tree:
            _first(item, found)


def tshark_messages(capture: Path, port: int) -> dict[tuple[int, int], dict[str, str]]:
    command = [tshark(), "-n", "-r", str(capture), *CHECKSUMS, "-Y", "opcua", "-T", "json"]
    command += ["--no-duplicate-keys", "-J", "frame opcua", "-d", f"tcp.port=={port},opcua"]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    found: dict[tuple[int, int], dict[str, str]] = {}
    for packet in json.loads(result.stdout or "[]"):
        layers = packet["_source"]["layers"]
        frame = int(layers["frame"]["frame.number"])
        pdus = layers.get("opcua", [])
        for index, pdu in enumerate(pdus if isinstance(pdus, list) else [pdus]):
            fields: dict[str, str] = {}
            _first(pdu, fields)
            found[frame, index] = fields
    return found


def _number(text: str) -> int:
    return int(text, 16) if text.startswith("0x") else int(text)


def ours_and_theirs(message: OpcuaMessage, theirs: dict[str, str]) -> dict[str, tuple[object, object]]:
    """Each compared field: (ours, tshark's); tshark's None where it has no value."""

    def their(name: str) -> int | None:
        return _number(theirs[name]) if name in theirs else None

    kind = MESSAGE_TYPES[message.message_type]
    pairs: dict[str, tuple[object, object]] = {
        "type": (kind, theirs.get("opcua.transport.type")),
        "chunk": (
            chr(message.chunk_type) if message.chunk_type >= 0 else "",
            theirs.get("opcua.transport.chunk"),
        ),
        "size": (message.message_size, their("opcua.transport.size")),
    }
    if kind in ("HEL", "ACK"):
        for ours, name in [
            (message.protocol_version, "ver"),
            (message.receive_buffer_size, "rbs"),
            (message.send_buffer_size, "sbs"),
            (message.max_message_size, "mms"),
            (message.max_chunk_count, "mcc"),
        ]:
            pairs[name] = (ours, their(f"opcua.transport.{name}"))
    if kind == "HEL":
        pairs["endpoint"] = (message.endpoint_url, theirs.get("opcua.transport.endpoint"))
    if kind == "ERR":
        pairs["error"] = (message.error_code, their("opcua.transport.error"))
    if kind in ("OPN", "MSG", "CLO"):
        pairs["scid"] = (message.secure_channel_id, their("opcua.transport.scid"))
    if kind == "OPN":
        pairs["policy"] = (message.security_policy, theirs.get("opcua.security.spu"))
    if kind in ("MSG", "CLO"):
        pairs["token"] = (message.token_id, their("opcua.security.tokenid"))
    if message.body_readable:
        pairs["seq"] = (message.sequence_number, their("opcua.security.seq"))
        pairs["rqid"] = (message.request_id, their("opcua.security.rqid"))
    if message.service_id >= 0 or "opcua.servicenodeid.numeric" in theirs:
        pairs["service"] = (message.service_id, their("opcua.servicenodeid.numeric"))
    if message.service_result >= 0:
        pairs["result"] = (message.service_result, their("opcua.ServiceResult"))
    if message.security_mode >= 0 or (kind == "OPN" and "opcua.MessageSecurityMode" in theirs):
        pairs["mode"] = (message.security_mode, their("opcua.MessageSecurityMode"))
        pairs["request_type"] = (message.request_type, their("opcua.SecurityTokenRequestType"))
    return pairs


@pytest.mark.parametrize("capture", opcua_captures(), ids=lambda path: path.name)
def test_the_sensor_agrees_with_tshark_on_a_shared_capture(capture: Path) -> None:
    port = PORTS.get(capture.name, 4840)
    theirs = tshark_messages(capture, port)
    ours = decoded(capture, TCP, (port,), decode_payload)
    unmatched = REVIEWED_UNMATCHED.get(capture.name, {"missing": [], "extra": []})
    assert sorted(set(theirs) - set(ours)) == unmatched["missing"], "messages only tshark sees"
    assert sorted(set(ours) - set(theirs)) == unmatched["extra"], "messages only the sensor sees"
    reviewed = REVIEWED.get(capture.name, {})
    differences = []
    for key, (_, message) in sorted(ours.items()):
        assert message.finding != OpcuaFinding.UNEXPECTED
        if key not in theirs:
            continue
        for name, (mine, their) in ours_and_theirs(message, theirs[key]).items():
            if mine != their:
                differences.append((*key, name, mine, their))
    unexplained = [d for d in differences if d[:3] not in reviewed]
    assert unexplained == [], f"{capture.name}: {unexplained[:10]}"
    assert {d[:3] for d in differences} == set(reviewed), "a reviewed difference is gone: update the list"
    assert len(ours) > 0


@pytest.mark.parametrize("capture", opcua_captures(), ids=lambda path: path.name)
def test_both_paths_agree_on_a_shared_capture(capture: Path) -> None:
    """On the segments as they come (mid-message ones too), and as the sensor gives them (each
    after the bytes its stream left over)."""
    found = list(payloads(capture, TCP, (PORTS.get(capture.name, 4840),)))
    leftovers: dict[tuple[bytes, int, bytes, int], bytes] = {}
    stitched = []
    for payload in found:
        data = leftovers.pop(payload.stream, b"") + payload.data
        stitched.append(data)
        leftovers[payload.stream] = decode_payload(data, payload.from_server)[1]
    server = np.array([p.from_server for p in found], dtype=np.bool_)
    for segments in ([p.data for p in found], stitched):
        lengths = np.array([len(data) for data in segments], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        buffer = np.frombuffer(b"".join(segments), dtype=np.uint8)
        fast, exact = (
            extract(buffer, starts, lengths, server),
            decode_segments(buffer, starts, lengths, server),
        )
        assert fast.differences(exact) == []
        assert len(fast) > 0 and not np.any(fast.summary.finding == OpcuaFinding.UNEXPECTED)


ICSNPP = {
    "analyzer.basic": ("open62541_client-server_mainloop.pcap", True),
    "analyzer.non-standard-port": (
        "open62541_client-server_mainloop-not-localhost-non-standard-port.pcap",
        True,
    ),
    # Zeek's analyzer stops at the capture's gap: its log holds the first 41 rows only.
    "analyzer.data-gap_with-handshake": ("opcua_with-gap_with-handshake.pcap", False),
}
"""ICSNPP baseline directory -> (capture, whether its log covers the whole capture)."""
REQUEST = re.compile(r"\t(\d+)\t\w+Request\t")


@pytest.mark.parametrize("baseline", sorted(ICSNPP))
def test_the_client_side_agrees_with_the_icsnpp_baseline(baseline: str) -> None:
    """A second reader: Zeek's ICSNPP OPC UA analyzer (its expected `opcua_binary.log`, one row
    per HEL, ACK, or request with its response). Per capture, the (message type, request
    service id) of every row is one of the sensor's client messages (and ACKs), and where the
    log covers the capture, the two lists are equal."""
    directory = DATASETS / "pcaps/cisagov-icsnpp/opcua-binary/zeek-baseline" / baseline
    capture_name, whole = ICSNPP[baseline]
    capture = DATASETS / "pcaps/cisagov-icsnpp/opcua-binary" / capture_name
    if not (directory / "opcua_binary.log").exists() or not capture.exists():
        if IN_CI:
            pytest.fail(f"the ICSNPP baseline or capture is missing under {DATASETS}")
        pytest.skip(f"the ICSNPP baseline or capture is missing under {DATASETS}")
    theirs: Counter[tuple[str, int]] = Counter()
    for line in (directory / "opcua_binary.log").read_text().splitlines():
        if line.startswith("#"):
            continue
        match = REQUEST.search(line)
        theirs[line.split("\t")[6], int(match.group(1)) if match else -1] += 1
    ours: Counter[tuple[str, int]] = Counter()
    for from_server, message in decoded(
        capture, TCP, (PORTS.get(capture.name, 4840),), decode_payload
    ).values():
        kind = MESSAGE_TYPES[message.message_type]
        if kind == "ACK" or not from_server:
            ours[kind, message.service_id] += 1
    assert theirs - ours == Counter()
    assert sum(theirs.values()) >= 37
    if whole:
        assert ours == theirs


def test_the_shared_captures_are_there() -> None:
    if not opcua_captures():
        message = f"the shared datasets are not at {DATASETS} (set PW_DATASETS)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    assert len(opcua_captures()) >= 6
