"""The Modbus oracle: the sensor's PDUs against tshark's dissection, frame by frame and PDU by PDU.

tshark's JSON output (with `--no-duplicate-keys`, several PDUs of one frame become a list) gives
each PDU of each frame with its fields; the sensor gives its rows with the packet that completed
them. Both are keyed by (frame number, index of the PDU within the frame) and compared field by
field; PDUs only one side has are counted as missing or extra.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plantwarden.capture.pcap import read_capture
from plantwarden.monitoring.sensor import Sensor, SensorOptions
from plantwarden.protocols.modbus import ModbusFinding
from tests.tshark_support import tshark

FIELDS = ("transaction_id", "unit_id", "function_code", "address", "quantity", "exception_code")
Pdu = dict[str, int | None]


def tshark_pdus(capture: Path, ports: tuple[int, ...] = (502,)) -> dict[tuple[int, int], Pdu]:
    """Every Modbus PDU tshark dissects, by (frame number, index within the frame)."""
    command = [tshark(), "-n", "-r", str(capture), "-T", "json", "--no-duplicate-keys", "-Y", "mbtcp"]
    for port in ports:
        if port != 502:
            command += ["-d", f"tcp.port=={port},mbtcp"]
    output = subprocess.run(command, capture_output=True, check=True, timeout=600).stdout
    pdus: dict[tuple[int, int], Pdu] = {}
    for packet in json.loads(output or b"[]"):
        layers = packet["_source"]["layers"]
        frame = int(layers["frame"]["frame.number"])
        headers, bodies = _listed(layers.get("mbtcp")), _listed(layers.get("modbus"))
        for index, header in enumerate(headers):
            body = bodies[index] if index < len(bodies) else {}
            pdus[frame, index] = _tshark_pdu(header, body)
    return pdus


def _listed(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _number(fields: dict[str, Any], *names: str) -> int | None:
    for name in names:
        if name in fields:
            value = fields[name]
            return int(value[0] if isinstance(value, list) else value, 0)
    return None


def _tshark_pdu(header: dict[str, Any], body: dict[str, Any]) -> Pdu:
    return {
        "transaction_id": _number(header, "mbtcp.trans_id"),
        "unit_id": _number(header, "mbtcp.unit_id"),
        "function_code": _number(body, "modbus.func_code"),
        "address": _number(body, "modbus.reference_num"),
        "quantity": _number(body, "modbus.word_cnt", "modbus.bit_cnt"),
        "exception_code": _number(body, "modbus.exception_code"),
    }


def sensor_pdus(capture: Path, ports: tuple[int, ...] = (502,)) -> tuple[dict[tuple[int, int], Pdu], Sensor]:
    """Every Modbus PDU the sensor records, by (frame number, index within the frame)."""
    sensor = Sensor(SensorOptions(modbus_ports=ports))
    pdus: dict[tuple[int, int], Pdu] = {}
    for batch in read_capture(capture):
        modbus = sensor.process(batch)
        columns = modbus.columns
        frames = (modbus.packet + batch.first_number).tolist()
        seen: Counter[int] = Counter()
        for row, frame in enumerate(frames):
            pdus[frame, seen[frame]] = _sensor_pdu(columns.row(row))
            seen[frame] += 1
    sensor.finish()
    return pdus, sensor


def _sensor_pdu(row: dict[str, int]) -> Pdu:
    return {
        "transaction_id": row["transaction_id"],
        "unit_id": row["unit_id"],
        "function_code": row["function_code"],
        "address": row["address"] if row["address"] >= 0 else None,
        "quantity": row["quantity"],  # 0 is both "none" and a quantity of 0: tshark decides
        "exception_code": row["exception_code"] if row["is_exception"] else None,
        "finding": row["finding"],
    }


UNFRAMED = (ModbusFinding.BAD_LENGTH, ModbusFinding.BAD_PROTOCOL_ID)
"""Findings on bytes that are not a frame at all: tshark shows no PDU there (it waits for more)."""


@dataclass
class Comparison:
    """What the two sides agree and disagree on."""

    matched: int = 0
    missing: list[tuple[int, int]] = field(default_factory=list)
    extra: list[tuple[int, int]] = field(default_factory=list)
    unframed: list[tuple[int, int]] = field(default_factory=list)
    differences: list[tuple[int, int, str, int | None, int | None]] = field(default_factory=list)
    agreeing: Counter[str] = field(default_factory=Counter)


def compare(theirs: dict[tuple[int, int], Pdu], ours: dict[tuple[int, int], Pdu]) -> Comparison:
    """Field by field where both sides have a value; missing and extra PDUs apart."""
    result = Comparison()
    result.missing = sorted(set(theirs) - set(ours))
    only_ours = sorted(set(ours) - set(theirs))
    result.unframed = [key for key in only_ours if ours[key]["finding"] in UNFRAMED]
    result.extra = [key for key in only_ours if ours[key]["finding"] not in UNFRAMED]
    for key in sorted(set(theirs) & set(ours)):
        result.matched += 1
        for name in FIELDS:
            their, our = theirs[key][name], ours[key][name]
            if their is None:
                continue
            if their == our:
                result.agreeing[name] += 1
            else:
                result.differences.append((*key, name, their, our))
    return result
