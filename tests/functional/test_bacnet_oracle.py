"""The oracle: the sensor's BACnet/IP messages against tshark's, datagram by datagram, for every
BACnet capture of the shared datasets.

BVLC function and result, NPDU control, networks, hop count and network message type, APDU type,
invoke id, segment number and window, service choice, the first target's object type, instance
and property (every property of a readPropertyMultiple request), I-Am vendor id, Who-Is range,
error class and code, and reject and abort reasons must agree on every datagram both sides
decode, and neither side may decode a datagram the other does not, apart from the reviewed
differences below (each with the reason it is tshark's reading, or a deliberate choice).

Both paths (exact and column extractor) must give the same rows on every capture, and the finding
UNEXPECTED (the exact decoder raised) must never occur.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from plantwarden.capture.layers.columns import PROTO_UDP
from plantwarden.protocols.bacnet import BacnetFinding, BacnetMessage, decode_payload, exact_columns, extract
from plantwarden.protocols.bacnet.names import property_name
from plantwarden.protocols.bacnet.services import (
    BVLC_FUNCTIONS,
    COMPLEX_ACK,
    CONFIRMED,
    READ_PROPERTY_MULTIPLE,
    SEGMENTED,
)
from tests.payload_support import decoded, payloads
from tests.tshark_support import fields

DATASETS = Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
IN_CI = os.environ.get("CI", "").lower() == "true"
PORTS = (47808,)
PORT_OVERRIDES = {"bacnet_error_reject_abort.pcap": (47808, 47809)}
"""Captures whose peers use other ports than 47808 (tshark decodes BVLC on either end's port)."""

TSHARK_FIELDS = [
    "frame.number",
    "bvlc.function",
    "bvlc.result",
    "bacnet.control",
    "bacnet.dnet",
    "bacnet.snet",
    "bacnet.hopc",
    "bacnet.mesgtyp",
    "bacapp.type",
    "bacapp.invoke_id",
    "bacapp.sequence_number",
    "bacapp.window_size",
    "bacapp.confirmed_service",
    "bacapp.unconfirmed_service",
    "bacapp.objectType",
    "bacapp.instance_number",
    "bacapp.property_identifier",
    "bacapp.vendor_identifier",
    "bacapp.who_is.low_limit",
    "bacapp.who_is.high_limit",
    "bacapp.error_class",
    "bacapp.error_code",
    "bacapp.reject_reason",
    "bacapp.abort_reason",
]

REVIEWED: dict[str, dict[tuple[int, int, str], str]] = {}
REVIEWED_UNMATCHED: dict[str, dict[str, list[tuple[int, int]]]] = {}


def bacnet_captures() -> list[Path]:
    inventory = DATASETS / "PCAP_INVENTORY.tsv"
    if not inventory.exists():
        return []
    rows = [line.split("\t") for line in inventory.read_text().splitlines()[1:]]
    found = {row[0]: DATASETS / row[0] for row in rows if len(row) > 3 and "bvlc" in row[3].split()}
    return [found[name] for name in sorted(found)]


def _number(text: str) -> int:
    return int(text, 0)


def _values(cell: str) -> list[int]:
    return [_number(value) for value in cell.split(",") if value]


def tshark_rows(capture: Path) -> dict[int, dict[str, list[int]]]:
    """Per frame with a BVLC header: each field's values (several occurrences in order)."""
    rows = fields(capture, TSHARK_FIELDS, display_filter="bvlc")
    return {
        int(row[0]): {name: _values(cell) for name, cell in zip(TSHARK_FIELDS[1:], row[1:], strict=True)}
        for row in rows
    }


Check = Callable[[BacnetMessage, dict[str, list[int]]], tuple[object, object] | None]


def _first(name: str, attribute: str) -> Check:
    """Ours against tshark's first value of `name` (none on either side: -1)."""

    def check(message: BacnetMessage, theirs: dict[str, list[int]]) -> tuple[object, object] | None:
        ours = getattr(message, attribute)
        return ours, (theirs[name][0] if theirs[name] else -1)

    return check


def _unsegmented(check: Check) -> Check:
    """Only on messages not segmented (tshark reassembles segments: fields of the whole)."""

    def guarded(message: BacnetMessage, theirs: dict[str, list[int]]) -> tuple[object, object] | None:
        segmented = message.pdu_type in (CONFIRMED, COMPLEX_ACK) and message.pdu_flags & SEGMENTED
        return None if segmented else check(message, theirs)

    return guarded


def _service(message: BacnetMessage, theirs: dict[str, list[int]]) -> tuple[object, object] | None:
    values = theirs["bacapp.confirmed_service"] or theirs["bacapp.unconfirmed_service"]
    return message.service_choice, (values[0] if values else -1)


def _reason(message: BacnetMessage, theirs: dict[str, list[int]]) -> tuple[object, object] | None:
    values = theirs["bacapp.reject_reason"] or theirs["bacapp.abort_reason"]
    if message.network_message >= 0:
        return None  # Reject-Message-To-Network's reason: bacnet.rejectreason, not compared
    return message.reason, (values[0] if values else -1)


def _vendor(message: BacnetMessage, theirs: dict[str, list[int]]) -> tuple[object, object] | None:
    if message.function != "i_am":
        return None
    return message.vendor_id, (theirs["bacapp.vendor_identifier"] or [-1])[0]


def _targeted(name: str, attribute: str) -> Check:
    """The first target's field, where we have a target (tshark also shows objects inside values).
    I-Have's target is the object it has, its second object identifier (the first: the device)."""
    first = _unsegmented(_first(name, attribute))

    def check(message: BacnetMessage, theirs: dict[str, list[int]]) -> tuple[object, object] | None:
        if message.object_type < 0:
            return None
        if message.function == "i_have":
            return getattr(message, attribute), (theirs[name][1:] or [-1])[0]
        return first(message, theirs)

    return check


def _properties(message: BacnetMessage, theirs: dict[str, list[int]]) -> tuple[object, object] | None:
    """Every property of a readPropertyMultiple request."""
    if message.pdu_type != CONFIRMED or message.service_choice != READ_PROPERTY_MULTIPLE or message.finding:
        return None
    ours = [target.split(" ")[1].split("[")[0] for target in message.targets]
    return ours, [property_name(code) for code in theirs["bacapp.property_identifier"]]


CHECKS: dict[str, Check] = {
    "bvlc_function": _first("bvlc.function", "bvlc_function"),
    "bvlc_result": _first("bvlc.result", "bvlc_result"),
    "npdu_control": _first("bacnet.control", "npdu_control"),
    "dnet": _first("bacnet.dnet", "dnet"),
    "snet": _first("bacnet.snet", "snet"),
    "hop_count": _first("bacnet.hopc", "hop_count"),
    "network_message": _first("bacnet.mesgtyp", "network_message"),
    "pdu_type": _first("bacapp.type", "pdu_type"),
    "invoke_id": _first("bacapp.invoke_id", "invoke_id"),
    "sequence_number": _first("bacapp.sequence_number", "sequence_number"),
    "window_size": _first("bacapp.window_size", "window_size"),
    "service_choice": _service,
    "object_type": _targeted("bacapp.objectType", "object_type"),
    "instance": _targeted("bacapp.instance_number", "instance"),
    "property_id": _targeted("bacapp.property_identifier", "property_id"),
    "properties": _properties,
    "vendor_id": _vendor,
    "low_limit": _unsegmented(_first("bacapp.who_is.low_limit", "low_limit")),
    "high_limit": _unsegmented(_first("bacapp.who_is.high_limit", "high_limit")),
    "error_class": _unsegmented(_first("bacapp.error_class", "error_class")),
    "error_code": _unsegmented(_first("bacapp.error_code", "error_code")),
    "reason": _reason,
}


@pytest.mark.parametrize("capture", bacnet_captures(), ids=lambda path: path.name)
def test_the_sensor_agrees_with_tshark_on_a_shared_capture(capture: Path) -> None:
    check(capture)


def test_the_shared_captures_are_there() -> None:
    if not bacnet_captures():
        message = f"the shared datasets are not at {DATASETS} (set PW_DATASETS)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    assert len(bacnet_captures()) >= 6


ICSNPP = DATASETS / "pcaps" / "cisagov-icsnpp" / "bacnet"
ICSNPP_BASELINES = {
    "analyzer.error-reject-abort": "bacnet_error_reject_abort.pcap",
    "analyzer.segmented_data": "bacnet_segmented_data.pcap",
}
ICSNPP_PDU_TYPES = (
    "confirmed_request",
    "unconfirmed_request",
    "simple_ack",
    "complex_ack",
    "segment_ack",
    "error_pdu",
    "reject_pdu",
    "abort_pdu",
)
ICSNPP_REVIEWED: dict[str, Counter[tuple[str, str, str, str]]] = {
    # ICSNPP logs a segmented complex ACK once; the sensor records each of its 3 segments.
    "bacnet_segmented_data.pcap": Counter(
        {("original_unicast_npdu", "complex_ack", "read_property", "94"): 2}
    ),
}


@pytest.mark.parametrize("baseline", sorted(ICSNPP_BASELINES))
def test_the_sensor_agrees_with_the_icsnpp_logs(baseline: str) -> None:
    """BVLC function, PDU type, service name and invoke id of every message, against the
    ICSNPP BACnet parser's expected log (the same names: both follow the standard's)."""
    lines = _icsnpp_rows(baseline, "bacnet.log")
    theirs = Counter((line[11].lower(), line[12].lower(), line[13], line[14]) for line in lines)
    capture = ICSNPP / ICSNPP_BASELINES[baseline]
    ours = Counter(
        (
            BVLC_FUNCTIONS[message.bvlc_function],
            ICSNPP_PDU_TYPES[message.pdu_type],
            "-" if message.function == "segment_ack" else message.function,
            "-" if message.invoke_id < 0 else str(message.invoke_id),
        )
        for message in _messages(baseline)
    )
    assert theirs - ours == Counter()
    assert ours - theirs == ICSNPP_REVIEWED.get(capture.name, Counter())


def _icsnpp_rows(baseline: str, log: str) -> list[list[str]]:
    path = ICSNPP / "zeek-baseline" / baseline / log
    if not path.exists():
        message = f"the ICSNPP BACnet logs are not at {path.parent}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return [line.split("\t") for line in path.read_text().splitlines() if not line.startswith("#")]


def _messages(baseline: str) -> list[BacnetMessage]:
    capture = ICSNPP / ICSNPP_BASELINES[baseline]
    found = decoded(capture, PROTO_UDP, PORT_OVERRIDES.get(capture.name, PORTS), decode_payload)
    return [message for _, message in found.values()]


ICSNPP_PROPERTY_REVIEWED: dict[str, dict[tuple[int, str], str]] = {
    "analyzer.error-reject-abort": {
        (1, "trend-log:2 log-buffer[0]"): "a readRange without an array index (context tag 2 absent, "
        "tshark shows none): ICSNPP logs index 0, the sensor none",
    },
}


@pytest.mark.parametrize("baseline", sorted(ICSNPP_BASELINES))
def test_the_targets_agree_with_the_icsnpp_property_logs(baseline: str) -> None:
    """Every object/property/array index ICSNPP logs for a transaction (readProperty,
    readPropertyMultiple, writeProperty, readRange requests and readProperty ACKs) is a target
    of the sensor's records with that invoke id."""
    rows = _icsnpp_rows(baseline, "bacnet_property.log")
    theirs = set()
    for row in rows:
        invoke, object_type, instance, prop, index = row[11], row[13], row[14], row[15], row[16]
        theirs.add((int(invoke), f"{object_type}:{instance} {prop}" + ("" if index == "-" else f"[{index}]")))
    ours = {(message.invoke_id, target) for message in _messages(baseline) for target in message.targets}
    reviewed = ICSNPP_PROPERTY_REVIEWED.get(baseline, {})
    assert theirs and theirs - ours == set(reviewed), sorted(theirs - ours)


@pytest.mark.parametrize("baseline", sorted(ICSNPP_BASELINES))
def test_discovery_agrees_with_the_icsnpp_discovery_logs(baseline: str) -> None:
    """I-Am device instances, I-Have device and object, Who-Has object, as ICSNPP logs them."""
    rows = _icsnpp_rows(baseline, "bacnet_discovery.log")
    theirs: Counter[tuple[str, int, str]] = Counter()
    for row in rows:
        service, device, object_type, instance = row[11], row[13], row[14], row[15]
        target = "-" if object_type == "-" else f"{object_type}:{instance}"
        if service == "i-am":
            theirs[("i_am", int(instance), "-")] += 1
        elif service == "i-have":
            theirs[("i_have", int(device), target)] += 1
        elif service == "who-has":
            theirs[("who_has", -1, target)] += 1
    ours: Counter[tuple[str, int, str]] = Counter()
    for message in _messages(baseline):
        if message.function in ("i_am", "i_have", "who_has"):
            target = "-" if message.function == "i_am" or not message.targets else message.targets[0]
            ours[(message.function, message.device_instance, target)] += 1
    assert theirs == ours


def check(capture: Path) -> tuple[int, int]:
    """Compare; return (datagrams matched, fields compared)."""
    ports = PORT_OVERRIDES.get(capture.name, PORTS)
    theirs = tshark_rows(capture)
    ours = decoded(capture, PROTO_UDP, ports, decode_payload)
    differences, compared = [], 0
    for (frame, index), (_, message) in sorted(ours.items()):
        assert message.finding != BacnetFinding.UNEXPECTED, (capture.name, frame)
        if frame not in theirs or index:
            continue
        for name, compare in CHECKS.items():
            pair = compare(message, theirs[frame])
            if pair is None:
                continue
            compared += 1
            if pair[0] != pair[1]:
                differences.append((frame, index, name, pair))
    reviewed = REVIEWED.get(capture.name, {})
    unexplained = [d for d in differences if d[:3] not in reviewed]
    assert unexplained == [], f"{capture.name}: {unexplained[:10]}"
    assert {d[:3] for d in differences} == set(reviewed), "a reviewed difference is gone: update the list"
    missing = sorted((frame, 0) for frame in theirs if (frame, 0) not in ours)
    extra = sorted(key for key in ours if key[0] not in theirs)
    unmatched = REVIEWED_UNMATCHED.get(capture.name, {"missing": [], "extra": []})
    assert (missing, extra) == (unmatched["missing"], unmatched["extra"]), capture.name
    _both_paths_agree(capture, ports)
    return len(ours) - len(extra), compared


def _both_paths_agree(capture: Path, ports: tuple[int, ...]) -> None:
    datagrams = [payload.data for payload in payloads(capture, PROTO_UDP, ports)]
    buffer = np.frombuffer(b"".join(datagrams), dtype=np.uint8)
    lengths = np.array([len(datagram) for datagram in datagrams], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    server = np.zeros(len(datagrams), dtype=np.bool_)
    fast, exact = extract(buffer, starts, lengths, server), exact_columns(buffer, starts, lengths, server)
    assert fast.differences(exact) == []
    assert int(np.count_nonzero(fast.summary.finding == BacnetFinding.UNEXPECTED)) == 0
