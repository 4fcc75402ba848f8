"""The oracle: the sensor's DNP3 frames against tshark's, frame by frame and link frame by link
frame, for every capture of the shared datasets that tshark decodes as DNP3.

The exact path with transport reassembly (`Reassembler`) is compared with tshark on the link
header (length, control, destination, source), the transport header, and, on the frame that
ends an application fragment, the application control, function code, IIN and object headers.
Every field must agree on every frame both sides see, and neither side may see a frame the other
does not, apart from the reviewed differences below (each with the reason). The column extractor
must give exactly what the exact path gives frame by frame, and no capture may make the exact
decoder raise (`UNEXPECTED`).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plantwarden.protocols.dnp3 import (
    Dnp3Finding,
    Dnp3Message,
    Reassembler,
    decode_payload,
    decode_segments,
    extract,
)
from tests.payload_support import decoded, payloads
from tests.tshark_support import CHECKSUMS, IN_CI, tshark

DATASETS = Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
PORTS = (20000,)
TCP = 6
FIELDS = ("length", "control", "destination", "source", "transport", "app_control", "app_function", "iin")
TSHARK_FIELDS = {
    "dnp3.len": "length",
    "dnp3.ctl": "control",
    "dnp3.dst": "destination",
    "dnp3.src": "source",
    "dnp3.tr.ctl": "transport",
    "dnp3.al.ctl": "app_control",
    "dnp3.al.func": "app_function",
    "dnp3.al.iin": "iin",
}
Key = tuple[int, int]
Pdu = dict[str, Any]

APPLICATION = ("app_control", "app_function", "iin", "objects")
WRAP = (
    "transport sequence 63 then 0: IEEE 1815-2012 8.2.1.3 counts modulo 64, so the segments make one "
    "fragment, which the sensor decodes; tshark does not reassemble across the wrap and shows no "
    "application layer"
)
STALE = (
    "a FIR+FIN segment is a whole fragment (IEEE 1815-2012 8.2.1.2); tshark glues it to the "
    "unfinished segment of frame 210 (the one it could not reassemble across the wrap)"
)
MALFORMED_CROB = {
    "BAD_QUALIFIER": (
        "fuzzed CROB request: the next header's qualifier has a reserved range code, prefix code 7 or "
        "bit 7 set; the sensor stops there (BAD_QUALIFIER), tshark walks on through the garbage"
    ),
    "BAD_RANGE": (
        "fuzzed CROB request: a header's stop index is below its start index (BAD_RANGE; range code 5 "
        "is start and stop virtual addresses in IEEE 1815-2012 table 4-5, tshark reads one absolute "
        "address); the sensor stops there, tshark reads on"
    ),
    "OBJECT_TRUNCATED": (
        "fuzzed CROB request: the header's range asks for more CROBs than the 20-byte fragment holds "
        "(range codes 3-5 are start and stop virtual addresses in IEEE 1815-2012 table 4-5, tshark "
        "reads one absolute address): the sensor stops with OBJECT_TRUNCATED, tshark lists what it "
        "read before its own exception"
    ),
    "PARTIAL": (
        "fuzzed CROB request: an all-objects CROB header (no data) then g0v0 0-1: device attributes of "
        "variation 0 have no defined size, the sensor stops PARTIAL there, tshark reads one more header"
    ),
}
MALFORMED_FRAMES = {
    "BAD_QUALIFIER": [
        45,
        47,
        48,
        49,
        50,
        63,
        65,
        66,
        67,
        68,
        82,
        84,
        85,
        86,
        87,
        101,
        103,
        104,
        105,
        106,
        119,
        121,
        122,
        123,
        124,
        138,
        140,
        141,
        142,
        143,
        159,
        161,
        162,
        163,
        164,
        180,
        182,
        183,
        184,
        185,
    ],
    "BAD_RANGE": [
        5,
        10,
        12,
        13,
        18,
        21,
        22,
        27,
        30,
        31,
        36,
        46,
        57,
        58,
        70,
        77,
        96,
        115,
        120,
        133,
        157,
        160,
        170,
        174,
        189,
        194,
        197,
    ],
    "OBJECT_TRUNCATED": [
        4,
        38,
        41,
        42,
        53,
        54,
        71,
        74,
        76,
        89,
        90,
        95,
        109,
        110,
        114,
        127,
        128,
        132,
        146,
        147,
        150,
        151,
        153,
        154,
        155,
        165,
        167,
        168,
        171,
        173,
        175,
        186,
        188,
        192,
        195,
        196,
    ],
    "PARTIAL": [156, 169],
}
BAD_QUALIFIER_ED = (
    "disable unsolicited with a third header g60v4 whose qualifier is 0xED (bit 7 set, range code 13 "
    "reserved): the sensor stops with BAD_QUALIFIER, tshark lists the header with an unknown range"
)
STOP_APPL = (
    "stop application (18) with garbage objects (g60v2 all, then g1v7, an undefined variation): "
    "tshark does not dissect the objects of function 18, the sensor walks them and stops PARTIAL"
)
TEST_DATA = {
    **{(frame, 0, "objects"): BAD_QUALIFIER_ED for frame in (154, 156)},
    **{(frame, 0, "objects"): STOP_APPL for frame in (163, 166, 174, 176)},
}
AUTH_IIN = (
    "authenticate response (131) is a response: IEEE 1815-2012 4.2.2.5 gives every response IIN "
    "after the function code; tshark 4.0 shows none for 131"
)
AUTH_OBJECTS = (
    "secure authentication objects (group 120): tshark 4.0 does not dissect the objects of the "
    "authentication functions (32, 131); the sensor lists their headers"
)
REVIEWED: dict[str, dict[tuple[int, int, str], str]] = {
    "dnp3_example.pcap": {
        **{(frame, 0, field): WRAP for frame in (18, 114, 210, 810) for field in APPLICATION},
        **{(311, 0, field): STALE for field in APPLICATION},
    },
    "DNP3-Malformed.pcap": {
        (frame, 0, "objects"): MALFORMED_CROB[kind]
        for kind, frames in MALFORMED_FRAMES.items()
        for frame in frames
    },
    "dnp3.pcap": TEST_DATA,
    "dnp3_test_data_part1.pcap": TEST_DATA,  # the same traffic as bro/dnp3.pcap
    "assign_class.pcap": {
        (1, 0, "objects"): "assign class (22): tshark 4.0 does not dissect its objects (g60v3 all, g1v0 all)"
    },
    "auth_change_session_keys.pcap": {
        **{(frame, 0, "objects"): AUTH_OBJECTS for frame in (4, 5, 6, 7)},
        **{(frame, 0, "iin"): AUTH_IIN for frame in (5, 7)},
    },
    "auth_control_challenge_response.pcap": {
        (2, 0, "iin"): AUTH_IIN,
        **{(frame, 0, "objects"): AUTH_OBJECTS for frame in (2, 3)},
    },
    "operate_aggressive_mode.pcap": {
        (1, 0, "objects"): (
            "aggressive mode direct operate: g120v3 (6 bytes), the CROB, then g120v9 (HMAC, size-prefixed); "
            "tshark stops after g120v3, the sensor walks all three"
        )
    },
}
"""Per capture, (frame, PDU index, field): why we differ from tshark there."""
NOT_DNP3 = (
    "bytes that are no frame (start 05 05, link length below 5): a finding for the sensor, nothing for tshark"
)
REVIEWED_UNMATCHED: dict[str, dict[str, list[Key]]] = {
    # NOT_DNP3: the sensor reports what arrives on port 20000 and is no frame; tshark's heuristic
    # check (start bytes, length of at least 5) turns it away.
    "DNP3-Malformed.pcap": {"missing": [], "extra": [(1, 0)]},  # link length 0 (BAD_LENGTH)
    "dnp3.pcap": {"missing": [], "extra": [(19, 0), (21, 0)]},  # start 05 05 (BAD_START)
    "dnp3_test_data_part1.pcap": {"missing": [], "extra": [(19, 0), (21, 0)]},
}


def dnp3_captures() -> list[Path]:
    inventory = DATASETS / "PCAP_INVENTORY.tsv"
    if not inventory.exists():
        return []
    rows = [line.split("\t") for line in inventory.read_text().splitlines()[1:]]
    return [DATASETS / row[0] for row in rows if len(row) > 3 and "dnp3" in row[3].split()]


def _pairs(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of a tshark JSON tree, in order, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _pairs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _pairs(item)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _first(tree: Any, name: str) -> str | None:
    return next((value for key, value in _pairs(tree) if key == name and isinstance(value, str)), None)


def _header_texts(layer: Any) -> tuple[str, ...]:
    """tshark's object headers as the sensor writes its targets ("g30v2 0-9", ...)."""
    texts: list[str] = []
    for key, value in _pairs(layer):
        if not isinstance(value, dict) or "dnp3.al.obj" not in value:
            continue
        trees = _listed(value.get("dnp3.al.obj_tree", []))
        for index, obj in enumerate(_listed(value["dnp3.al.obj"])):
            code = int(obj, 16)
            tree = trees[index] if index < len(trees) else {}
            name = f"g{code >> 8}v{code & 0xFF}"
            start, stop = _first(tree, "dnp3.al.range.start"), _first(tree, "dnp3.al.range.stop")
            quantity = _first(tree, "dnp3.al.range.quantity")
            address = _first(tree, "dnp3.al.range.abs")
            if start is not None and stop is not None:
                texts.append(f"{name} {start}-{stop}")
            elif quantity is not None:
                texts.append(f"{name} count {quantity}")
            elif address is not None:
                texts.append(f"{name} address {address}")
            else:
                texts.append(f"{name} all")
        del key
    return tuple(texts)


def tshark_pdus(capture: Path) -> dict[Key, Pdu]:
    """tshark's DNP3 link frames by (frame, index within the frame)."""
    command = [
        tshark(),
        "-n",
        "-r",
        str(capture),
        *CHECKSUMS,
        "-T",
        "json",
        "--no-duplicate-keys",
        "-Y",
        "dnp3",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300)
    found: dict[Key, Pdu] = {}
    for packet in json.loads(result.stdout or "[]"):
        layers = packet["_source"]["layers"]
        frame = int(layers["frame"]["frame.number"])
        for index, layer in enumerate(_listed(layers.get("dnp3", []))):
            pdu: Pdu = {}
            for name, field in TSHARK_FIELDS.items():
                value = _first(layer, name)
                if value is not None:
                    pdu[field] = int(value, 0)
            if "app_function" in pdu:
                pdu["objects"] = _header_texts(layer)
            found[frame, index] = pdu
    return found


def sensor_pdu(message: Dnp3Message) -> Pdu:
    pdu: Pdu = {name: getattr(message, name) for name in FIELDS if getattr(message, name) >= 0}
    if message.app_function >= 0:
        pdu["objects"] = tuple(header.text() for header in message.objects)
    return pdu


def check(capture: Path) -> int:
    theirs = tshark_pdus(capture)
    ours = {
        key: sensor_pdu(message)
        for key, (_, message) in decoded(capture, TCP, PORTS, Reassembler().decode_payload).items()
    }
    reviewed = REVIEWED.get(capture.name, {})
    differences = []
    for key in sorted(theirs.keys() & ours.keys()):
        for field in sorted(theirs[key].keys() | ours[key].keys()):
            if theirs[key].get(field) != ours[key].get(field):
                differences.append((*key, field, theirs[key].get(field), ours[key].get(field)))
    unexplained = [d for d in differences if d[:3] not in reviewed]
    assert unexplained == [], f"{capture.name}: {len(unexplained)} differences, first {unexplained[:10]}"
    assert {d[:3] for d in differences} == set(reviewed), "a reviewed difference is gone: update the list"
    unmatched = REVIEWED_UNMATCHED.get(capture.name, {"missing": [], "extra": []})
    missing, extra = sorted(theirs.keys() - ours.keys()), sorted(ours.keys() - theirs.keys())
    assert (missing, extra) == (unmatched["missing"], unmatched["extra"]), capture.name
    return len(theirs.keys() & ours.keys())


@pytest.mark.parametrize("capture", dnp3_captures(), ids=lambda path: path.name)
def test_the_sensor_agrees_with_tshark_on_a_shared_capture(capture: Path) -> None:
    assert check(capture) > 0


@pytest.mark.parametrize("capture", dnp3_captures(), ids=lambda path: path.name)
def test_both_paths_agree_and_nothing_escapes_on_a_shared_capture(capture: Path) -> None:
    segments = list(payloads(capture, TCP, PORTS))
    if not segments:
        pytest.fail(f"{capture.name}: no payloads")
    leftovers: dict[tuple[bytes, int, bytes, int], bytes] = {}
    datas, servers, expected = [], [], []
    for payload in segments:
        data = leftovers.pop(payload.stream, b"") + payload.data
        messages, rest = decode_payload(data, payload.from_server)
        if rest:
            leftovers[payload.stream] = rest
        datas.append(data)
        servers.append(payload.from_server)
        expected.append((messages, len(rest)))
    buffer = np.frombuffer(b"".join(datas), dtype=np.uint8)
    lengths = np.array([len(data) for data in datas], dtype=np.int64)
    starts = (np.cumsum(lengths) - lengths).astype(np.int64)
    from_server = np.array(servers, dtype=np.bool_)
    columns = extract(buffer, starts, lengths, from_server)
    assert columns.differences(decode_segments(buffer, starts, lengths, from_server)) == []
    messages = [message for rows, _ in expected for message in rows]
    assert columns.summary.summaries() == [message.summary() for message in messages]
    assert columns.leftover.tolist() == [left for _, left in expected]
    assert all(message.finding != Dnp3Finding.UNEXPECTED for message in messages)
    found = decoded(capture, TCP, PORTS, Reassembler().decode_payload)
    assert all(message.finding != Dnp3Finding.UNEXPECTED for _, message in found.values())


def test_the_shared_captures_are_there() -> None:
    if not dnp3_captures():
        message = f"the shared datasets are not at {DATASETS} (set PW_DATASETS)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    assert len(dnp3_captures()) >= 40


ZEEK_BASELINE = DATASETS / "pcaps" / "cisagov-icsnpp" / "dnp3" / "zeek-baseline" / "analyzer.basic"
ZEEK_OBJECTS = {
    "Class 0 Data": "g60v1",
    "Class 1 Data": "g60v2",
    "Class 2 Data": "g60v3",
    "Class 3 Data": "g60v4",
    "Binary Input With Status": "g1v2",
    "Binary Output Status": "g10v2",
    "16-Bit Analog Input": "g30v2",
    "16-Bit Analog Output Status": "g40v2",
}
"""ICSNPP's object type names in its dnp3_objects.log, as group and variation (the ones it logs)."""


def _zeek_rows(name: str) -> list[dict[str, str]]:
    lines = (ZEEK_BASELINE / name).read_text().splitlines()
    columns = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    return [dict(zip(columns, line.split("\t"), strict=True)) for line in lines if not line.startswith("#")]


def test_the_sensor_agrees_with_icsnpp_zeek_on_its_capture() -> None:
    """ICSNPP's expected logs for dnp3_example.pcap: every response's IIN (dnp3.log) and every
    object header of the types its dnp3_objects.log names, with count and range."""
    capture = DATASETS / "pcaps" / "cisagov-icsnpp" / "dnp3" / "dnp3_example.pcap"
    if not (ZEEK_BASELINE / "dnp3_objects.log").exists():
        message = f"the ICSNPP DNP3 baseline is not under {ZEEK_BASELINE}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    messages = [message for _, message in decoded(capture, TCP, PORTS, Reassembler().decode_payload).values()]
    responses = [m for m in messages if m.app_function in (129, 130)]
    zeek_replies = [row for row in _zeek_rows("dnp3.log") if row["fc_reply"] != "-"]
    assert Counter(m.iin for m in responses) == Counter(int(row["iin"]) for row in zeek_replies)
    ours = Counter(
        (
            m.summary().function.upper(),
            f"g{h.group}v{h.variation}",
            str(h.count) if h.range_code != 6 else "-",
            str(h.start) if h.range_code != 6 else "-",
            str(h.stop) if h.range_code != 6 else "-",
        )
        for m in messages
        for h in m.objects
        if f"g{h.group}v{h.variation}" in ZEEK_OBJECTS.values()
    )
    theirs = Counter(
        (
            row["function_code"],
            ZEEK_OBJECTS[row["object_type"]],
            row["object_count"],
            row["range_low"],
            row["range_high"],
        )
        for row in _zeek_rows("dnp3_objects.log")
    )
    assert ours == theirs
