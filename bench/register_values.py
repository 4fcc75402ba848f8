"""Register values as telemetry: the sensor's extraction against tshark's, same capture, CPU time.

Input: a capture of the simulated plant with every attack scenario (`plantwarden sim generate`,
seed 1), read with the Riverside plant model (examples/riverside/plant.yaml), whose register
maps are those of the simulated PLCs. Measured, in this process pinned to one core, best of
`REPEATS`:

- the extraction alone: `RegisterValues.feed` over the batches the sensor has already decoded
  (layers, flows, Modbus PDUs), so only the pairing of reads and writes, the search of the map,
  the byte gathers and the decode are timed; samples per CPU second;
- the sensor with and without the extraction: what it adds to the whole pipeline;
- tshark, pinned to the same core, extracting the register values of the same capture (the
  register number and value of every read answer and write request: `modbus.regnum16`,
  `modbus.regval_uint16`, `modbus.bitnum`, `modbus.bitval`); values per CPU second.

tshark's values are raw 16-bit words and bits; ours are engineering values (two words make a
float32), so both rates count what each hands on, and the ratio is printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import PacketBatch
from plantwarden.capture.layers.columns import Layers
from plantwarden.capture.pcap import read_capture
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import TELEMETRY
from plantwarden.monitoring.modbus_streams import ModbusBatch
from plantwarden.monitoring.register_map import RegisterMap
from plantwarden.monitoring.register_values import RegisterValues
from plantwarden.monitoring.sensor import Sensor
from plantwarden.zones.plant.load import load_plant

REPEATS = 3
PLANT = Path(__file__).resolve().parents[1] / "examples" / "riverside" / "plant.yaml"
TSHARK_FIELDS = ("modbus.regnum16", "modbus.regval_uint16", "modbus.bitnum", "modbus.bitval")


def _values() -> RegisterValues:
    return RegisterValues.from_site(load_plant(PLANT).site("riverside"))


class _Recorder(RegisterValues):
    """Keeps what the sensor feeds it (the batches, their layers, flow ids and Modbus PDUs)."""

    def __init__(self) -> None:
        super().__init__(RegisterMap.from_site(load_plant(PLANT).site("riverside")), "riverside")
        self.fed: list[tuple[PacketBatch, Layers, npt.NDArray[np.int64], ModbusBatch]] = []

    def feed(
        self, batch: PacketBatch, layers: Layers, flow_ids: npt.NDArray[np.int64], modbus: ModbusBatch
    ) -> RecordBatch:
        self.fed.append((batch, layers, flow_ids, modbus))
        return RecordBatch.empty(TELEMETRY)


def measure_extraction(capture: Path) -> tuple[float, int]:
    """CPU seconds of `RegisterValues.feed` alone over the capture's decoded batches; samples."""
    recorder = _Recorder()
    sensor = Sensor(values=recorder)
    for batch in read_capture(capture):
        sensor.process(batch)
    warm = _values()  # the first pass imports and compiles what numpy loads lazily
    for arguments in recorder.fed:
        warm.feed(*arguments)
    values = _values()
    started = time.process_time()
    samples = sum(len(values.feed(*arguments)) for arguments in recorder.fed) + len(values.finish())
    return time.process_time() - started, samples


def measure_sensor(capture: Path, with_values: bool) -> float:
    """CPU seconds of the whole sensor over the capture, with or without the extraction."""
    sensor = Sensor(values=_values() if with_values else None)
    started = time.process_time()
    for batch in read_capture(capture):
        sensor.process(batch)
    sensor.finish()
    return time.process_time() - started


def measure_tshark(capture: Path) -> tuple[float, int]:
    """CPU seconds of tshark extracting the register values; how many values it gave."""
    tshark = shutil.which("tshark")
    if tshark is None:
        raise SystemExit("tshark is not installed: apt-get install tshark")
    command = ["taskset", "-c", str(_core()), tshark, "-n", "-r", str(capture), "-T", "fields"]
    for name in TSHARK_FIELDS:
        command += ["-e", name]
    command += ["-Y", "modbus.regval_uint16 || modbus.bitval"]
    before = os.times()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    values = 0
    for line in result.stdout.splitlines():
        columns = line.split("\t")
        values += sum(len(column.split(",")) for column in (columns[1], columns[3]) if column)
    return cpu, values


def _core() -> int:
    return max(os.sched_getaffinity(0))


def run(quick: bool = False) -> None:
    """Print samples per CPU second of our extraction and values per CPU second of tshark's."""
    packets = 50_000 if quick else 500_000
    repeats = 1 if quick else REPEATS
    os.sched_setaffinity(0, {_core()})
    with tempfile.TemporaryDirectory() as folder:
        capture = Path(folder) / "plant.pcap"
        started = time.perf_counter()
        command = [sys.executable, "-m", "plantwarden", "sim", "generate", "--seed", "1", "--attacks", "all"]
        subprocess.run([*command, "--packets", str(packets), str(capture)], capture_output=True, check=True)
        print(f"# generated {packets} packets in {time.perf_counter() - started:.1f} s")
        extraction = min(measure_extraction(capture) for _ in range(repeats))
        measure_sensor(capture, True)  # warm: lazy imports
        plain = min(measure_sensor(capture, False) for _ in range(repeats))
        full = min(measure_sensor(capture, True) for _ in range(repeats))
        tshark = min(measure_tshark(capture) for _ in range(repeats))
    cpu, samples = extraction
    ours, theirs = samples / cpu, tshark[1] / tshark[0]
    print(f"register values, extraction alone: {samples} samples in {cpu:.3f} CPU s, {ours:,.0f} samples/s")
    print(
        f"sensor: {plain:.2f} CPU s without, {full:.2f} CPU s with register values (+{full / plain - 1:.0%})"
    )
    print(f"tshark, register values: {tshark[1]} values in {tshark[0]:.2f} CPU s, {theirs:,.0f} values/s")
    print(f"ratio: x{ours / theirs:.0f} tshark")
