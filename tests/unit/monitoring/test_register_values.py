"""Register values seen on the wire become telemetry samples: decoding, pairing, what is skipped.

The hand-made exchanges check every type, word order and scale, bit-packed tables, writes and
exceptions; a generated capture of the simulated plant, read with the Riverside plant model,
checks the samples against what the simulated PLCs held when they answered (their physics, read
through the simulator's own decoder) and the raw words against tshark's.
"""

from __future__ import annotations

import struct
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.pcap import read_capture
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.plane import WriteReport
from plantwarden.core.records.schema import TELEMETRY
from plantwarden.monitoring.register_map import RegisterMap
from plantwarden.monitoring.register_values import UNCONFIRMED, RegisterValues
from plantwarden.monitoring.sensor import Sensor, SensorOptions
from plantwarden.sim import modbus_messages as modbus
from plantwarden.sim.encoding import decode
from plantwarden.sim.traffic.generator import generate
from plantwarden.sim.traffic.run import Run
from plantwarden.sim.wire import IpHost, Link, Segment, TcpConnection, TcpEnd, ip_bytes, mac_bytes
from plantwarden.zones.plant.load import load_plant, load_plant_bytes
from plantwarden.zones.plant.model import SiteModel
from tests.tshark_support import fields

S = 1_000_000_000
ROOT = Path(__file__).resolve().parents[3]
RIVERSIDE = ROOT / "examples" / "riverside" / "plant.yaml"
PLANT = """\
version: 1
sites:
  - id: plant-a
    zones:
      - {id: cell, purdue_level: 1, subnets: [10.0.0.0/24], security_level: 2}
    conduits: []
    assets:
      - id: plc-1
        address: 10.0.0.2
        unit_id: 1
        registers:
          - {address: 0, name: speed, kind: holding, type: uint16, scale: 10}
          - {address: 1, name: offset, kind: holding, type: int16, scale: 10}
          - {address: 2, name: count_big, kind: holding, type: uint32}
          - {address: 4, name: count_little, kind: holding, type: uint32, word_order: little}
          - {address: 6, name: delta_big, kind: holding, type: int32}
          - {address: 8, name: delta_little, kind: holding, type: int32, word_order: little, scale: 100}
          - {address: 10, name: level_big, kind: holding, type: float32}
          - {address: 12, name: level_little, kind: holding, type: float32, word_order: little}
          - {address: 14, name: enabled, kind: holding, type: bool}
          - {address: 20, name: flow, kind: input, type: uint16, scale: 10}
          - {address: 0, name: run, kind: coil, type: bool}
          - {address: 9, name: reset, kind: coil, type: bool}
          - {address: 3, name: tripped, kind: discrete, type: bool}
      - id: plc-any
        address: 10.0.0.3
        registers:
          - {address: 0, name: speed, kind: holding, type: uint16}
"""
HOLDING_WORDS = {
    0: 123,  # speed 12.3
    1: 0xFFFB,  # offset -0.5
    2: 0x0001,  # count_big 70000 = 0x00011170
    3: 0x1170,
    4: 0x1170,  # count_little 70000, low word first
    5: 0x0001,
    6: 0xFFFF,  # delta_big -2
    7: 0xFFFE,
    8: 0xEE90,  # delta_little -70000 = 0xFFFEEE90, low word first; scale 100: -700
    9: 0xFFFE,
    10: 0x4148,  # level_big 12.5
    11: 0x0000,
    12: 0x0000,  # level_little 12.5, low word first
    13: 0x4148,
    14: 2,  # enabled: any non-zero word is 1
    15: 77,  # not in the map
}
EXPECTED = {
    "speed": 12.3,
    "offset": -0.5,
    "count_big": 70000.0,
    "count_little": 70000.0,
    "delta_big": -2.0,
    "delta_little": -700.0,
    "level_big": 12.5,
    "level_little": 12.5,
    "enabled": 1.0,
}


def site() -> SiteModel:
    return load_plant_bytes(PLANT.encode()).site("plant-a")


class Kept:
    """A record sink that keeps the telemetry batches it is given."""

    def __init__(self) -> None:
        self.batches: list[RecordBatch] = []

    def write(self, batch: RecordBatch) -> WriteReport:
        if batch.kind is TELEMETRY:
            self.batches.append(batch)
        return WriteReport(records=len(batch), stored=len(batch))

    def rows(self) -> list[dict[str, Any]]:
        return [row for batch in self.batches for row in batch.rows()]


class Wire:
    """One client's Modbus/TCP connection to a server, as frames."""

    def __init__(self, server: str = "10.0.0.2", client: str = "10.0.0.1", port: int = 40000) -> None:
        self.tcp = TcpConnection(
            TcpEnd(IpHost(ip_bytes(client)), port, 1000),
            TcpEnd(IpHost(ip_bytes(server)), 502, 5000, timestamps=False),
            Link(mac_bytes("02:00:00:00:00:01"), mac_bytes("02:00:00:00:00:02")),
        )
        self.time = 1.0
        self.segments: list[Segment] = list(self.tcp.handshake(self.time, 0.001))

    def send(self, from_client: bool, payload: bytes) -> None:
        self.time += 0.01
        self.segments.append(self.tcp.send(self.time, from_client, payload))

    def exchange(self, tid: int, request: bytes, answer: bytes | None, unit: int = 1) -> None:
        self.send(True, modbus.adu(tid, unit, request))
        if answer is not None:
            self.send(False, modbus.adu(tid, unit, answer))


def read(code: int, address: int, count: int, image: dict[str, dict[int, int]]) -> tuple[bytes, bytes]:
    request = modbus.read(code, address, count)
    return modbus.request_pdu(request), modbus.response_pdu(request, image)


def batches(segments: list[Segment], size: int) -> Iterator[PacketBatch]:
    for start in range(0, len(segments), size):
        part = segments[start : start + size]
        yield PacketBatch.from_packets([(round(s.time * S), s.frame) for s in part])


def run(
    segments: list[Segment], size: int = 10_000, model: SiteModel | None = None
) -> tuple[list[dict[str, Any]], RegisterValues]:
    kept = Kept()
    values = RegisterValues.from_site(model or site())
    sensor = Sensor(SensorOptions(site="plant-a"), kept, values=values)
    for batch in batches(segments, size):
        sensor.process(batch)
    sensor.finish()
    return kept.rows(), values


def by_name(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {row["variable"]: row["value"] for row in rows}


def test_every_type_word_order_and_scale_decodes_from_a_holding_read() -> None:
    wire = Wire()
    wire.exchange(1, *read(3, 0, 16, {"holding": HOLDING_WORDS}))
    rows, values = run(wire.segments)
    assert by_name(rows) == pytest.approx(EXPECTED)
    assert {(row["site"], row["device"], row["quality"]) for row in rows} == {("plant-a", "plc-1", 0)}
    assert {row["ts"] for row in rows} == {round(wire.time * S)}  # the time of the answer
    assert values.counters.unmapped == 1 and values.counters.reads == 1


def test_a_read_that_cuts_a_two_word_register_skips_it() -> None:
    wire = Wire()
    wire.exchange(1, *read(3, 3, 4, {"holding": HOLDING_WORDS}))  # count_big's low word .. delta_big's high
    rows, values = run(wire.segments)
    assert by_name(rows) == {"count_little": 70000.0}
    assert values.counters.unmapped == 2


def test_coils_and_discrete_inputs_are_read_bit_by_bit() -> None:
    wire = Wire()
    coils = dict(enumerate([1, 0, 0, 1, 0, 0, 0, 0, 0, 1]))
    wire.exchange(1, *read(1, 0, 10, {"coil": coils}))
    wire.exchange(2, *read(2, 0, 4, {"discrete": dict(enumerate([0, 0, 0, 1]))}))
    wire.exchange(3, *read(4, 20, 1, {"input": {20: 456}}))
    rows, values = run(wire.segments)
    assert by_name(rows) == {"run": 1.0, "reset": 1.0, "tripped": 1.0, "flow": 45.6}
    assert values.counters.unmapped == 8 + 3


def test_writes_give_samples_once_acknowledged_at_the_time_of_the_request() -> None:
    wire = Wire()
    single = modbus.request_pdu(modbus.write_single(6, 0, 250))
    wire.exchange(1, single, single)
    sent = wire.time - 0.01
    coil = modbus.request_pdu(modbus.write_single(5, 9, 1))
    wire.exchange(2, coil, coil)
    many = modbus.write_multiple(16, 10, [0x4148, 0x0000])
    wire.exchange(3, modbus.request_pdu(many), modbus.response_pdu(many, {"holding": HOLDING_WORDS}))
    bits = modbus.write_multiple(15, 0, [0] * 9 + [1])
    wire.exchange(
        4, modbus.request_pdu(bits), modbus.response_pdu(bits, {"coil": dict.fromkeys(range(10), 0)})
    )
    rows, values = run(wire.segments)
    assert by_name(rows) == {"speed": 25.0, "reset": 1.0, "level_big": 12.5, "run": 0.0}
    assert [row["ts"] for row in rows if row["variable"] == "speed"] == [round(sent * S)]
    assert values.counters.writes == 4 and {row["quality"] for row in rows} == {0}


def test_read_write_multiple_gives_its_write_and_its_read() -> None:
    wire = Wire()
    request = struct.pack(">BHHHHBHH", 23, 0, 2, 6, 2, 4, 0xFFFF, 0xFFFE)
    answer = struct.pack(">BBHH", 23, 4, 123, 0xFFFB)
    wire.exchange(1, request, answer)
    rows, _ = run(wire.segments)
    assert by_name(rows) == {"delta_big": -2.0, "speed": 12.3, "offset": -0.5}


def test_exceptions_give_no_sample_and_unanswered_writes_are_unconfirmed() -> None:
    wire = Wire()
    wire.exchange(1, modbus.request_pdu(modbus.read(3, 0, 2)), modbus.exception_pdu(3, 2))
    refused = modbus.request_pdu(modbus.write_single(6, 0, 999))
    wire.exchange(2, refused, modbus.exception_pdu(6, 3))
    wire.exchange(3, modbus.request_pdu(modbus.write_single(6, 0, 40)), None)
    rows, values = run(wire.segments)
    assert [(row["variable"], row["value"], row["quality"]) for row in rows] == [("speed", 4.0, UNCONFIRMED)]
    assert (values.counters.exceptions, values.counters.unconfirmed) == (2, 1)


def test_unknown_servers_units_and_addresses_are_skipped_and_counted() -> None:
    image = {"holding": HOLDING_WORDS}
    stranger, other_unit, any_unit = Wire("10.0.0.9"), Wire(port=40001), Wire("10.0.0.3", port=40002)
    stranger.exchange(1, *read(3, 0, 2, image))
    other_unit.exchange(1, *read(3, 0, 2, image), unit=7)
    any_unit.exchange(1, *read(3, 0, 1, image), unit=42)
    rows, values = run(
        sorted([*stranger.segments, *other_unit.segments, *any_unit.segments], key=lambda s: s.time)
    )
    assert [(row["device"], row["variable"], row["value"]) for row in rows] == [("plc-any", "speed", 123.0)]
    assert values.counters.unmapped == 4


def test_answers_pair_with_requests_of_earlier_batches() -> None:
    wire = Wire()
    for tid in range(1, 30):
        wire.exchange(tid, *read(3, 0, 16, {"holding": {**HOLDING_WORDS, 0: tid}}))
    whole, _ = run(wire.segments)
    for size in (1, 2, 3, 7):
        assert run(wire.segments, size)[0] == whole
    assert [row["value"] for row in whole if row["variable"] == "speed"] == [tid / 10 for tid in range(1, 30)]


def test_an_adu_split_over_two_segments_is_skipped_and_what_follows_it_kept() -> None:
    wire = Wire()
    image = {"holding": HOLDING_WORDS}
    first, second = (modbus.read(3, 0, 1), modbus.read(3, 1, 1))
    wire.send(
        True, modbus.adu(1, 1, modbus.request_pdu(first)) + modbus.adu(2, 1, modbus.request_pdu(second))
    )
    answers = modbus.adu(1, 1, modbus.response_pdu(first, image)) + modbus.adu(
        2, 1, modbus.response_pdu(second, image)
    )
    wire.send(False, answers[:9])
    wire.send(False, answers[9:])  # the end of the first answer, then the second whole
    rows, values = run(wire.segments)
    assert by_name(rows) == {"offset": -0.5}
    assert values.counters.unreachable == 1


def test_waiting_requests_stay_bounded() -> None:
    values = RegisterValues.from_site(site(), max_outstanding=4)
    wire = Wire()
    for tid in range(1, 50):
        wire.send(True, modbus.adu(tid, 1, modbus.request_pdu(modbus.write_single(6, 0, tid))))
    sensor = Sensor(SensorOptions(site="plant-a"), Kept(), values=values)
    sensor.process(next(batches(wire.segments, 10_000)))
    assert values.waiting == 4 and len(values._writes) == 4 and len(values._reads) == 0
    assert values.counters.unconfirmed == 45


def test_the_map_reads_the_riverside_plant() -> None:
    registers = RegisterMap.from_site(load_plant(RIVERSIDE).site("riverside"))
    assert len(registers) == 49
    assert set(registers.device) == {"tank-1", "tank-2", "pump-skid-1", "conveyor-1", "mixer-1", "boiler-1"}


# --- a generated capture of the simulated plant, read with the Riverside plant model ---

TRUTH: dict[tuple[str, str], set[float]] = defaultdict(set)
WRITES: list[tuple[str, str, float]] = []


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A capture, and (in `TRUTH`) every value the PLCs answered reads with or were written."""
    original = Run.answer

    def answer(self: Run, plc: str, request: modbus.Request) -> bytes | None:
        pdu = original(self, plc, request)
        if pdu is not None and not pdu[0] & 0x80 and request.function_code in modbus.TABLE_OF_FUNCTION:
            table = self.tables[plc][modbus.TABLE_OF_FUNCTION[request.function_code]]
            span = range(request.address, request.address + request.count)
            for register in self.plant.plc(plc).registers:
                if register.address in span and register.addresses[-1] in span and register.address in table:
                    words = [table[address] for address in register.addresses]
                    TRUTH[plc, register.name].add(decode(register, words))
                    if request.is_write:
                        WRITES.append((plc, register.name, decode(register, words)))
        return pdu

    path = tmp_path_factory.mktemp("registers") / "plant.pcapng"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Run, "answer", answer)
        generate(path, seed=5, packets=30_000)
    return path


def riverside_samples(capture: Path, size: int) -> tuple[list[dict[str, Any]], RegisterValues]:
    kept = Kept()
    values = RegisterValues.from_site(load_plant(RIVERSIDE).site("riverside"))
    sensor = Sensor(SensorOptions(site="riverside"), kept, values=values)
    for batch in read_capture(capture, batch_size=size):
        sensor.process(batch)
    sensor.finish()
    return kept.rows(), values


@pytest.fixture(scope="module")
def sampled(generated: Path) -> tuple[list[dict[str, Any]], RegisterValues]:
    return riverside_samples(generated, 4096)


def test_samples_are_what_the_simulated_plcs_held(
    sampled: tuple[list[dict[str, Any]], RegisterValues],
) -> None:
    rows, values = sampled
    assert len(rows) > 20_000
    wrong = [row for row in rows if row["value"] not in TRUTH[row["device"], row["variable"]]]
    assert wrong == []
    levels = [row["value"] for row in rows if (row["device"], row["variable"]) == ("tank-1", "level")]
    assert levels and min(levels) >= 0.0 and max(levels) <= 100.0
    counters = values.counters
    assert counters.unmapped == counters.malformed == 0
    assert 0 < counters.unreachable < 0.02 * counters.reads  # the split ADUs, about 1 in 100


def test_setpoints_read_back_as_written(sampled: tuple[list[dict[str, Any]], RegisterValues]) -> None:
    rows, values = sampled
    assert WRITES and values.counters.writes == len(WRITES)
    seen = Counter((row["device"], row["variable"], row["value"]) for row in rows)
    for write in WRITES:
        assert seen[write] >= 2, write  # the write's own sample and the read-back's


def test_samples_do_not_depend_on_how_packets_are_batched(
    generated: Path, sampled: tuple[list[dict[str, Any]], RegisterValues]
) -> None:
    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row["ts"], row["device"], row["variable"], row["value"], row["quality"])

    small, _ = riverside_samples(generated, 64)
    assert sorted(map(key, small)) == sorted(map(key, sampled[0]))


def test_raw_words_are_tshark_s(
    generated: Path, sampled: tuple[list[dict[str, Any]], RegisterValues]
) -> None:
    plant = load_plant(RIVERSIDE).site("riverside")
    where = {asset.id: str(asset.addresses[0]) for asset in plant.assets}
    registers = {
        (asset.id, register.name): register
        for asset in plant.assets
        for register in asset.registers
        if register.kind in ("holding", "input")
    }
    requests = {
        int(Decimal(row[0]) * S) for row in fields(generated, ["frame.time_epoch"], "tcp.dstport == 502")
    }
    ours: Counter[tuple[int, str, int, int]] = Counter()
    for row in sampled[0]:
        register = registers.get((row["device"], row["variable"]))
        if register is None or row["ts"] in requests:
            continue
        raw = _words(register.type, register.scale, row["value"])
        for address, word in zip(range(register.address, register.last + 1), raw, strict=True):
            ours[row["ts"], where[row["device"]], address, word] += 1
    theirs: Counter[tuple[int, str, int, int]] = Counter()
    names = ["frame.time_epoch", "ip.src", "modbus.regnum16", "modbus.regval_uint16"]
    for time, source, numbers, words in fields(
        generated, names, "modbus.regval_uint16 && tcp.srcport == 502"
    ):
        ts = int(Decimal(time) * S)
        for number, value in zip(numbers.split(","), words.split(","), strict=True):
            theirs[ts, source, int(number), int(value)] += 1
    assert theirs and not ours - theirs
    assert sum(ours.values()) >= 0.97 * sum(theirs.values())


def _words(kind: str, scale: float, value: float) -> tuple[int, ...]:
    if kind == "float32":
        return struct.unpack(">HH", struct.pack(">f", value))
    return (round(value * scale) & 0xFFFF,)
