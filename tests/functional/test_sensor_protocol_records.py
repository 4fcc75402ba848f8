"""The protocol records of the protocols beside Modbus: one per request, with its answer.

The oracle pairs requests and answers from tshark's fields of the same capture, by the rule each
protocol's specification gives (S7's PDU reference, DNP3's outstation and application sequence,
BACnet's invoke id), within a TCP stream or UDP conversation and within the
sensor's answer timeout; the sensor's records must give every request the same answer delay
(or none). Every shared capture then runs with records on: one record per request counted, and
every record well-formed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from plantwarden.capture.pcap import read_capture
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import WriteReport
from plantwarden.core.records.schema import PROTOCOL_RECORDS, Operation, Protocol
from plantwarden.monitoring.protocol_table import PROTOCOLS
from plantwarden.monitoring.requests import answer_status
from plantwarden.monitoring.sensor import Sensor, SensorOptions
from tests.functional.test_sensor_protocols import DATASETS, captures
from tests.tshark_support import fields

ICSNPP = DATASETS / "pcaps" / "cisagov-icsnpp"
TIMEOUT_NS = 10 * 1_000_000_000


class Kept:
    """A record sink that keeps the batches it is given (the sensor's records before storage)."""

    def __init__(self) -> None:
        self.batches: list[RecordBatch] = []

    def write(self, batch: RecordBatch) -> WriteReport:
        self.batches.append(batch)
        return WriteReport(records=len(batch), stored=len(batch))

    def protocol(self) -> dict[str, npt.NDArray[np.generic]]:
        kept = [batch for batch in self.batches if batch.kind is PROTOCOL_RECORDS]
        return {
            name: np.concatenate([batch.columns[name] for batch in kept])
            if kept
            else np.zeros(0, PROTOCOL_RECORDS.dtype_of(name))
            for name in PROTOCOL_RECORDS.names
        }


def run(capture: Path, name: str) -> tuple[Sensor, dict[str, npt.NDArray[np.generic]]]:
    kept = Kept()
    sensor = Sensor(SensorOptions(answer_timeout_s=TIMEOUT_NS / 1e9), kept, protocols=(PROTOCOLS[name],))
    for batch in read_capture(capture, batch_size=64):
        sensor.process(batch)
    sensor.finish()
    return sensor, kept.protocol()


def _ns(epoch: str) -> int:
    return int(Decimal(epoch) * 1_000_000_000)


def _pairs(rows: Sequence[tuple[int, object, bool]]) -> dict[int, list[int]]:
    waiting: dict[object, int] = {}
    delays: dict[int, list[int]] = defaultdict(list)
    for time, key, answer in sorted(rows, key=lambda row: row[0]):
        if answer:
            request = waiting.pop(key, None)
            if request is not None:
                delay = time - request
                delays[request].append(delay if delay < TIMEOUT_NS else -1)
            continue
        if key in waiting:
            delays[waiting.pop(key)].append(-1)
        waiting[key] = time
    for request in waiting.values():
        delays[request].append(-1)
    return {time: sorted(found) for time, found in delays.items()}


def s7_oracle(capture: Path) -> dict[int, list[int]]:
    rows = []
    names = ["frame.time_epoch", "tcp.stream", "s7comm.header.rosctr", "s7comm.header.pduref"]
    for epoch, stream, rosctrs, refs, kinds in fields(
        capture, [*names, "s7comm.param.userdata.type"], "s7comm"
    ):
        for rosctr, ref, kind in zip(
            rosctrs.split(","), refs.split(","), (kinds or "").split(","), strict=False
        ):
            if rosctr == "7" and kind == "0":
                continue  # a push
            answer = rosctr in ("2", "3") or (rosctr == "7" and kind == "8")
            rows.append((_ns(epoch), (stream, int(ref)), answer))
    return _pairs(rows)


def misassembled(capture: Path) -> set[int]:
    """The times of DNP3 frames whose fragment tshark does not put together right (a reviewed
    difference): a fragment whose transport sequence wraps (63, then 0; tshark's reassembly does
    not wrap), and a whole fragment in one frame that tshark joins to an older one with the same
    sequence number ("conflicting data in fragment overlap"). tshark shows no response there."""
    names = [
        "frame.time_epoch",
        "dnp3.tr.fir",
        "dnp3.tr.fin",
        "dnp3.tr.seq",
        "dnp3.al.fragment.overlap.conflict",
    ]
    rows = fields(capture, names, "dnp3.tr.seq")
    return {
        _ns(epoch)
        for epoch, fir, fin, seq, conflict in rows
        if (fir, fin, seq) == ("0", "1", "0") or conflict
    }


def dnp3_oracle(capture: Path) -> dict[int, list[int]]:
    rows = []
    names = ["frame.time_epoch", "tcp.stream", "dnp3.al.func", "dnp3.al.seq", "dnp3.src", "dnp3.dst"]
    for epoch, stream, function, sequence, source, destination in fields(capture, names, "dnp3.al.func"):
        code = int(function.split(",")[-1])
        if code in (0, 6, 8, 10, 12, 130, 131) or not sequence:
            continue
        answer = code == 129
        outstation = source if answer else destination
        rows.append((_ns(epoch), (stream, outstation, int(sequence.split(",")[-1])), answer))
    return _pairs(rows)


def bacnet_oracle(capture: Path) -> dict[int, list[int]]:
    rows = []
    names = ["frame.time_epoch", "udp.stream", "bacapp.type", "bacapp.invoke_id", "bacapp.SRV"]
    for epoch, stream, kind, invoke, server in fields(capture, names, "bacapp.invoke_id"):
        code = int(kind)
        if code == 4 or (code == 7 and server != "True" and server != "1"):
            continue  # a segment ack, a client's abort
        rows.append((_ns(epoch), (stream, int(invoke)), code != 0))
    return _pairs(rows)


@pytest.mark.parametrize(
    ("name", "relative", "oracle"),
    [
        ("s7comm", "s7comm/snap7.pcap", s7_oracle),
        ("s7comm", "s7comm/s7ident.pcap", s7_oracle),
        ("dnp3", "dnp3/dnp3_example.pcap", dnp3_oracle),
        ("bacnet", "bacnet/bacnet_segmented_data.pcap", bacnet_oracle),
        ("bacnet", "bacnet/bacnet_example.pcap", bacnet_oracle),
    ],
)
def test_each_request_gets_the_answer_the_specification_pairs_it_with(
    name: str, relative: str, oracle: object
) -> None:
    capture = ICSNPP / relative
    if not capture.exists():
        pytest.skip(f"the shared datasets are not at {DATASETS}")
    expected = oracle(capture)  # type: ignore[operator]
    _, records = run(capture, name)
    found: dict[int, list[int]] = defaultdict(list)
    for time, delay in zip(records["ts"].tolist(), records["response_ns"].tolist(), strict=True):
        found[time].append(delay)
    missing = {time: delays for time, delays in expected.items() if sorted(found.get(time, [])) != delays}
    if name == "dnp3":
        tshark_wrong = misassembled(capture)
        for time in list(missing):
            if missing[time] == [-1] and len(found[time]) == 1 and time + found[time][0] in tshark_wrong:
                del missing[time]
    assert not missing, (
        len(missing),
        list(missing.items())[:5],
        {t: found.get(t) for t in list(missing)[:5]},
    )
    assert sum(delay >= 0 for delays in expected.values() for delay in delays) > 0


def test_every_shared_capture_gives_one_well_formed_record_per_request() -> None:
    found = captures()
    if not found:
        pytest.skip(f"the shared datasets are not at {DATASETS}")
    answered: defaultdict[str, int] = defaultdict(int)
    for name, capture in found:
        sensor, records = run(capture, name)
        counters = sensor.counters.protocols[name]
        assert len(records["ts"]) == counters.requests, (capture.name, name)
        assert (records["protocol"] == Protocol[name.upper()]).all()
        status, delay = records["status"].astype(np.int64), records["response_ns"].astype(np.int64)
        assert ((status < 0) == (delay == -1)).all(), capture.name  # -1 no answer seen, -2 none expected
        assert (delay <= TIMEOUT_NS).all() and (status >= -2).all()
        assert int((status == -1).sum()) == counters.unanswered, (capture.name, name)  # one-way are not
        assert np.isin(records["operation"], list(Operation)).all()
        assert np.isin(records["transport"], (6, 17)).all()
        answered[name] += counters.answered
    assert all(answered[name] > 0 for name in ("s7comm", "enip", "iec104", "dnp3", "opcua", "bacnet")), (
        answered
    )


def test_codes_too_wide_for_the_status_column_are_folded_into_it() -> None:
    result = np.array([-1, 0, 5, 0x7FFF, 0x8104, 0x80340000, 0x10000], dtype=np.int64)
    assert answer_status(result).tolist() == [0, 0, 5, 0x7FFF, 0x0104, 0x0034, 0x0001]
