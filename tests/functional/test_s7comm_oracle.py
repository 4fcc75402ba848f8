"""The oracle: the S7comm decoder's PDUs against tshark's, frame by frame and PDU by PDU, for every
S7comm capture of the shared datasets (and the S7comm-plus ones, which tshark 4.0 shows as
TPKT/COTP only).

tshark's PDML keeps the order of the layers of a frame: each `tpkt` starts a PDU, with its `cotp`
and, when COTP data ends a TSDU, its `s7comm`. A COTP data TPDU without end of TSDU joins the
next one (tshark reassembles them and shows S7comm in the frame of the last, as the decoder
does), so tshark's are dropped from the comparison. COTP types, ROSCTR, PDU references,
parameter and data lengths, error class and code, function codes, item counts, every item's
area, DB number and byte address, every read and write var response item's return code,
userdata type, group, subfunction and sequence number, and SZL ids and indexes must agree on
every PDU both sides see, and neither side may see a PDU the other does not, apart from the
REVIEWED differences below (each with the reason). S7comm-plus, which tshark does not dissect,
is checked against the ICSNPP Zeek log of its capture (version, opcode, function of every PDU).
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from plantwarden.protocols.s7comm import S7Finding, S7Message, decode_payload, decode_segments, extract
from tests.payload_support import decoded, payloads
from tests.tshark_support import tshark

DATASETS = Path(os.environ.get("PW_DATASETS", Path(__file__).resolve().parents[3] / "shared" / "datasets"))
IN_CI = os.environ.get("CI", "").lower() == "true"
PORTS = (102,)
TCP = 6
JOB, USERDATA, WRITE_VAR = 1, 7, 0x05
Pdu = dict[str, object]

SINGLE = {
    "cotp_type": "cotp.type",
    "rosctr": "s7comm.header.rosctr",
    "pdu_ref": "s7comm.header.pduref",
    "param_length": "s7comm.header.parlg",
    "data_length": "s7comm.header.datlg",
    "error_class": "s7comm.header.errcls",
    "error_code": "s7comm.header.errcod",
    "parameter_function": "s7comm.param.func",
    "item_count": "s7comm.param.itemcount",
    "ud_type": "s7comm.param.userdata.type",
    "ud_group": "s7comm.param.userdata.funcgroup",
    "ud_subfunction": "s7comm.param.userdata.subfunc",
    "ud_sequence": "s7comm.param.userdata.seq_num",
    "szl_id": "s7comm.data.userdata.szl_id",
    "szl_index": "s7comm.data.userdata.szl_index",
}
"""Our field: tshark's (the first occurrence in the PDU)."""
LISTED = {
    "item_areas": "s7comm.param.item.area",
    "item_dbs": "s7comm.param.item.db",
    "item_addresses": ("s7comm.param.item.address.byte", "s7comm.param.item.address.number"),
    "item_results": "s7comm.data.returncode",
    "dbread_lengths": "s7comm.param.item.dbread.length",
    "dbread_dbs": "s7comm.param.item.dbread.db",
    "dbread_starts": "s7comm.param.item.dbread.startaddress",
}
"""Our per-item lists: tshark's fields (every occurrence, in order)."""

REVIEWED: dict[str, dict[tuple[int, int, str], str]] = {}
"""(frame, PDU index, field): why we differ from tshark there (none at present: see the rule)."""


def reassembled_szl(message: S7Message, field: str, ours: object) -> bool:
    """tshark reassembles a read SZL answer sent in several S7 PDUs (a data unit reference other
    than 0, "last data unit" no, then follow-up requests and answers) and shows the SZL id and
    index of the whole answer, read from the first PDU, on the last one. The decoder reads each
    PDU on its own: a PDU after the first carries no SZL header, so it records none (and marks
    the PDU PARTIAL) rather than read record bytes as an SZL id."""
    return (
        field in ("szl_id", "szl_index")
        and ours is None
        and (message.ud_group, message.ud_subfunction) == (4, 1)
        and message.ud_unit_ref > 0
    )


REVIEWED_UNMATCHED: dict[str, dict[str, list[tuple[int, int]]]] = {
    # Segments from the server whose first sending the capture missed (tshark: "ACKed unseen
    # segment" on the client's side, then "spurious retransmission"): tshark does not dissect a
    # retransmission; the sensor's stream has not seen those bytes before and reads them. TCP
    # readings of a lossy capture, not S7comm decoding.
    # Each follows (by one frame) the client's "ACKed unseen segment" 397, 411, 1272 ...
    "s7comm_clean.pcap": {
        "missing": [],
        "extra": [
            (frame, 0) for frame in (398, 412, 1273, 1456, 1611, 1746, 2002, 2296, 2299, 2859, 3654, 4060)
        ],
    },
}


def s7_captures() -> list[Path]:
    inventory = DATASETS / "PCAP_INVENTORY.tsv"
    if not inventory.exists():
        return []
    rows = [line.split("\t") for line in inventory.read_text().splitlines()[1:]]
    return [
        DATASETS / row[0]
        for row in rows
        if len(row) > 3
        and ("s7comm" in row[3].split() or ("/s7comm/" in row[0] and "cotp" in row[3].split()))
    ]


def tshark_pdus(capture: Path) -> dict[tuple[int, int], Pdu]:
    """Every TPKT that ends a PDU, with its COTP and S7comm fields, by (frame, index)."""
    command = [tshark(), "-n", "-r", str(capture), "-T", "pdml", "-Y", "tpkt"]
    output = subprocess.run(command, capture_output=True, check=True, timeout=600).stdout
    pdus: dict[tuple[int, int], Pdu] = {}
    # tshark's own PDML of a capture file: trusted input, not XML from the network.
    for packet in ET.fromstring(output).iter("packet"):  # noqa: S314
        frame, units = -1, list[list[ET.Element]]()
        for proto in packet.findall("proto"):
            name = proto.get("name")
            if name == "frame":
                frame = int(_values(proto, "frame.number")[0])
            elif name == "tpkt":
                units.append([])
            elif name in ("cotp", "s7comm") and units:
                units[-1].append(proto)
        index = 0
        for protos in units:
            pdu = _tshark_pdu(protos)
            if pdu is not None:
                pdus[frame, index] = pdu
                index += 1
    return pdus


def _values(proto: ET.Element, name: str) -> list[str]:
    return [field.get("show", "") for field in proto.iter("field") if field.get("name") == name]


def _tshark_pdu(protos: list[ET.Element]) -> Pdu | None:
    cotp = [proto for proto in protos if proto.get("name") == "cotp"]
    s7 = [proto for proto in protos if proto.get("name") == "s7comm"]
    if not cotp:
        return {"cotp_type": None}
    kind, eot = _values(cotp[0], "cotp.type"), _values(cotp[0], "cotp.eot")
    if kind and int(kind[0], 0) == 0x0F and eot and eot[0] == "0":
        return None  # joins the next data TPDU
    pdu: Pdu = {"cotp_type": int(kind[0], 0) << 4 if kind else None}
    body = s7[0] if s7 else None
    for ours, theirs in SINGLE.items():
        if ours == "cotp_type":
            continue
        shown = _values(body, theirs) if body is not None else []
        pdu[ours] = int(shown[0], 0) if shown else None
    for ours, names in LISTED.items():
        values: list[int] = []
        for field in body.iter("field") if body is not None else ():
            if field.get("name") in ((names,) if isinstance(names, str) else names):
                values.append(int(field.get("show", ""), 0))
        pdu[ours] = tuple(values)
    if pdu["rosctr"] == USERDATA:
        # Userdata: the decoder reads the data item's header (its return code), not the items
        # of cyclic data and programmer commands inside it (status PARTIAL), which tshark lists
        # with the same field names as a read var's.
        pdu["item_count"], pdu["item_areas"], pdu["item_dbs"], pdu["item_addresses"] = None, (), (), ()
        pdu["dbread_lengths"], pdu["dbread_dbs"], pdu["dbread_starts"] = (), (), ()
        pdu["item_results"] = tuple(pdu["item_results"])[:1]  # type: ignore[arg-type]
    return pdu


def our_pdu(message: S7Message) -> Pdu:
    """The fields of `message` that tshark shows, as tshark shows them (None: not there)."""
    pdu: Pdu = {}
    for ours in SINGLE:
        value = getattr(message, ours)
        pdu[ours] = None if value == -1 else value
    if message.cotp_type == 0xF0 and message.protocol_id != 0x32:
        for ours in SINGLE:
            pdu[ours] = None if ours != "cotp_type" else pdu[ours]
    s7any = [item for item in message.items if item.syntax_id == 0x10]
    pdu["item_areas"] = tuple(item.area for item in s7any)
    pdu["item_dbs"] = tuple(item.db for item in s7any)
    pdu["item_addresses"] = tuple(item.byte_address for item in s7any)
    areas = [area for item in message.items for area in item.areas]
    pdu["dbread_lengths"] = tuple(size for size, _, _ in areas)
    pdu["dbread_dbs"] = tuple(db for _, db, _ in areas)
    pdu["dbread_starts"] = tuple(start for _, _, start in areas)
    pdu["item_results"] = message.item_results
    if message.rosctr == USERDATA:
        pdu["item_results"] = () if message.ud_return_code == -1 else (message.ud_return_code,)
    elif message.rosctr == JOB and message.parameter_function == WRITE_VAR:
        pdu["item_results"] = tuple(code for code, _, _ in message.data_items)
    return pdu


Difference = tuple[int, int, str, object, object]


def compare(
    theirs: dict[tuple[int, int], Pdu], found: dict[tuple[int, int], tuple[bool, S7Message]]
) -> tuple[int, list[Difference], list[Difference], list[tuple[int, int]], list[tuple[int, int]]]:
    """PDUs matched, differences (unexplained, explained by `reassembled_szl`), missing, extra."""
    ours = {key: our_pdu(message) for key, (_, message) in found.items()}
    matched = 0
    differences: list[Difference] = []
    by_rule: list[Difference] = []
    for key in sorted(set(theirs) & set(ours)):
        matched += 1
        for name, value in theirs[key].items():
            if ours[key].get(name) != value:
                difference = (*key, name, ours[key].get(name), value)
                rule = reassembled_szl(found[key][1], name, ours[key].get(name))
                (by_rule if rule else differences).append(difference)
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    return matched, differences, by_rule, missing, extra


@pytest.mark.slow
@pytest.mark.parametrize("capture", s7_captures(), ids=lambda path: path.name)
def test_the_decoder_agrees_with_tshark_on_a_shared_capture(capture: Path) -> None:
    found = decoded(capture, TCP, PORTS, decode_payload)
    matched, differences, _, missing, extra = compare(tshark_pdus(capture), found)
    reviewed = REVIEWED.get(capture.name, {})
    unexplained = [d for d in differences if d[:3] not in reviewed]
    assert unexplained == [], f"{capture.name}: {unexplained[:10]}"
    assert {d[:3] for d in differences} == set(reviewed), "a reviewed difference is gone: update the list"
    unmatched = REVIEWED_UNMATCHED.get(capture.name, {"missing": [], "extra": []})
    assert (missing, extra) == (unmatched["missing"], unmatched["extra"]), capture.name
    assert matched == len(found) - len(extra) > 0
    findings = Counter(message.finding for _, message in found.values())
    assert findings[S7Finding.UNEXPECTED] == 0


@pytest.mark.slow
@pytest.mark.parametrize("capture", s7_captures(), ids=lambda path: path.name)
def test_both_paths_agree_on_a_shared_capture(capture: Path) -> None:
    segments = list(payloads(capture, TCP, PORTS))
    data = b"".join(segment.data for segment in segments)
    lengths = np.array([len(segment.data) for segment in segments], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    server = np.array([segment.from_server for segment in segments], dtype=np.bool_)
    buffer = np.frombuffer(data, dtype=np.uint8)
    fast, exact = extract(buffer, starts, lengths, server), decode_segments(buffer, starts, lengths, server)
    assert fast.columns.differences(exact.columns) == []
    assert np.array_equal(fast.leftover, exact.leftover)
    assert fast.columns.summary.summaries() == exact.columns.summary.summaries()
    assert int(np.sum(exact.columns.summary.finding == S7Finding.UNEXPECTED)) == 0


def test_s7comm_plus_agrees_with_the_icsnpp_log() -> None:
    """Version, opcode and function of every S7comm-plus PDU, against ICSNPP's Zeek log."""
    folder = DATASETS / "pcaps" / "cisagov-icsnpp" / "s7comm"
    log = folder / "zeek-baseline" / "analyzer.s7comm_plus" / "s7comm_plus.log"
    if not log.exists():
        _absent()
    expected: Counter[tuple[bool, int, int, int]] = Counter()
    for line in log.read_text().splitlines():
        if line and not line.startswith("#"):
            cells = line.split("\t")
            function = -1 if cells[14] == "-" else int(cells[14], 16)
            expected[cells[6] == "F", int(cells[11]), int(cells[12], 16), function] += 1
    found = decoded(folder / "s7comm_plus.pcap", TCP, PORTS, decode_payload)
    plus = Counter(
        (server, m.plus_version, m.plus_opcode, m.plus_function)
        for server, m in found.values()
        if m.protocol_id == 0x72
    )
    assert plus == expected and sum(plus.values()) == 121


def test_the_shared_captures_are_there() -> None:
    if not s7_captures():
        _absent()
    assert len(s7_captures()) >= 25


def _absent() -> None:
    message = f"the shared datasets are not at {DATASETS} (set PW_DATASETS)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)
