"""SZL (system status list) answers that say what a PLC is: module identification (SZL-ID
W#16#xy11), component identification (xy1C) and the current mode (xy24).

The exact decoder keeps a Read SZL answer's data in `S7Message.data`: SZL-ID, index, the length
of one record, the number of records, then the records. `decode_szl` reads that header and cuts
the records; `module_identification`, `component_identification` and `mode_transition` read
their fields, per Siemens "System Software for S7-300/400, System and Standard Functions",
chapter "System Status Lists":

- xy11, 28-byte records: index, MlfB (order number, 20 characters), BGTyp (module type id),
  Ausbg, Ausbe. Index 0x0001 identifies the module, 0x0006 the basic hardware, 0x0007 the basic
  firmware: there Ausbg is "V" and the major version, Ausbe the minor and patch ("V3.2.6").
- xy1C, 34-byte records: index, then 32 bytes: 0x0001 the PLC's name, 0x0002 the module's name,
  0x0003 its plant tag, 0x0005 its serial number (24 characters each), 0x0004 the copyright
  (26), 0x0007 the module type name, 0x0008 the memory card's serial number, 0x000B the location
  (32), 0x0009 the manufacturer id (a PROFIBUS vendor id: 0x002A is Siemens) and profile.
- xy24, 20-byte records: event id, ae, the mode byte (requested mode in its low nibble, previous
  mode in its high nibble), then start-up details and a time stamp.

Text fields are fixed-size and padded with spaces or NULs: they are cut at the first NUL and
their trailing spaces stripped. Pure functions of bytes; a short or inconsistent list raises
`SzlError` (the caller decides what to do with a damaged answer).
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER_SIZE = 8
MODULE_IDENTIFICATION, COMPONENT_IDENTIFICATION, MODES = 0x11, 0x1C, 0x24
"""The partial list numbers (the SZL-ID's low byte) read here."""
MODULE_RECORD, COMPONENT_RECORD, MODE_RECORD = 28, 34, 20

MODULE, BASIC_HARDWARE, BASIC_FIRMWARE = 0x0001, 0x0006, 0x0007
PLC_NAME, MODULE_NAME, PLANT_TAG, COPYRIGHT, SERIAL_NUMBER = 0x0001, 0x0002, 0x0003, 0x0004, 0x0005
MODULE_TYPE_NAME, MEMORY_CARD_SERIAL, MANUFACTURER, LOCATION = 0x0007, 0x0008, 0x0009, 0x000B
SIEMENS = 0x002A
"""The PROFIBUS manufacturer id of Siemens."""

MODE_NAMES: dict[int, str] = {
    0x1: "STOP (update)",
    0x2: "STOP (memory reset)",
    0x3: "STOP (self initialization)",
    0x4: "STOP (internal)",
    0x5: "Startup (complete restart)",
    0x6: "Startup (cold restart)",
    0x7: "Restart",
    0x8: "RUN",
    0x9: "RUN (redundant)",
    0xA: "HOLD",
    0xD: "DEFECT",
}
"""The modes of SZL-ID xy24 (requested and previous mode), named as Wireshark names them."""


COMPONENT_TEXTS: dict[int, tuple[str, int]] = {
    PLC_NAME: ("plc_name", 24),
    MODULE_NAME: ("module_name", 24),
    PLANT_TAG: ("plant_tag", 32),
    COPYRIGHT: ("copyright", 26),
    SERIAL_NUMBER: ("serial_number", 24),
    MODULE_TYPE_NAME: ("module_type_name", 32),
    MEMORY_CARD_SERIAL: ("memory_card_serial", 32),
    LOCATION: ("location", 32),
}
"""The text records of xy1C: index -> (`ComponentIdentity` field, size of the text)."""


class SzlError(ValueError):
    """An SZL answer too short for its header or its records, or of unexpected record size."""


@dataclass(frozen=True, slots=True)
class SzlList:
    """One SZL answer's header and its records (each `record_length` bytes)."""

    szl_id: int
    index: int
    record_length: int
    records: tuple[bytes, ...]

    @property
    def partial_list(self) -> int:
        """The SZL-ID's low byte: which list (0x11 module identification, 0x1C components...)."""
        return self.szl_id & 0xFF


@dataclass(frozen=True, slots=True)
class ModuleRecord:
    """One xy11 record: which identification it is, the order number, type id and versions."""

    index: int
    order_number: str
    module_type: int
    ausbg: int
    ausbe: int

    @property
    def firmware(self) -> str:
        """The firmware version of a basic firmware record ("V3.2.6"), else ""."""
        if self.index != BASIC_FIRMWARE or self.ausbg >> 8 != ord("V"):
            return ""
        return f"V{self.ausbg & 0xFF}.{self.ausbe >> 8}.{self.ausbe & 0xFF}"


@dataclass(frozen=True, slots=True)
class ComponentIdentity:
    """What an xy1C answer names; "" (or -1) for what it does not carry."""

    plc_name: str = ""
    module_name: str = ""
    plant_tag: str = ""
    copyright: str = ""
    serial_number: str = ""
    module_type_name: str = ""
    memory_card_serial: str = ""
    location: str = ""
    manufacturer_id: int = -1


@dataclass(frozen=True, slots=True)
class ModeTransition:
    """One xy24 record: the event id and the requested and previous modes (numbers and names)."""

    event_id: int
    requested_mode: int
    previous_mode: int

    @property
    def requested_name(self) -> str:
        return MODE_NAMES.get(self.requested_mode, "")


def decode_szl(data: bytes) -> SzlList:
    """The header and records of a Read SZL answer's data (`S7Message.data`)."""
    if len(data) < HEADER_SIZE:
        raise SzlError(f"an SZL answer needs {HEADER_SIZE} header bytes, not {len(data)}")
    szl_id, index, length, count = (int.from_bytes(data[at : at + 2], "big") for at in (0, 2, 4, 6))
    if HEADER_SIZE + length * count > len(data):
        raise SzlError(f"{count} records of {length} bytes do not fit in {len(data) - HEADER_SIZE}")
    records = tuple(data[HEADER_SIZE + length * n : HEADER_SIZE + length * (n + 1)] for n in range(count))
    return SzlList(szl_id, index, length, records)


def module_identification(szl: SzlList) -> tuple[ModuleRecord, ...]:
    """The records of an xy11 list (module identification)."""
    _expect(szl, MODULE_IDENTIFICATION, MODULE_RECORD)
    return tuple(
        ModuleRecord(_word(record, 0), _text(record[2:22]), *(_word(record, at) for at in (22, 24, 26)))
        for record in szl.records
    )


def component_identification(szl: SzlList) -> ComponentIdentity:
    """The names, serial numbers and manufacturer of an xy1C list (component identification)."""
    _expect(szl, COMPONENT_IDENTIFICATION, COMPONENT_RECORD)
    texts: dict[str, str] = {}
    manufacturer_id = -1
    for record in szl.records:
        index = _word(record, 0)
        if index in COMPONENT_TEXTS:
            name, size = COMPONENT_TEXTS[index]
            texts.setdefault(name, _text(record[2 : 2 + size]))
        elif index == MANUFACTURER and manufacturer_id < 0:
            manufacturer_id = _word(record, 2)
    return ComponentIdentity(**texts, manufacturer_id=manufacturer_id)


def mode_transition(szl: SzlList) -> tuple[ModeTransition, ...]:
    """The records of an xy24 list (modes): the requested mode is the PLC's mode now."""
    _expect(szl, MODES, MODE_RECORD)
    return tuple(ModeTransition(_word(record, 0), record[3] & 0x0F, record[3] >> 4) for record in szl.records)


def _expect(szl: SzlList, partial_list: int, record_length: int) -> None:
    if szl.partial_list != partial_list:
        raise SzlError(f"SZL-ID 0x{szl.szl_id:04x} is not list 0x{partial_list:02x}")
    if szl.record_length != record_length and szl.records:
        raise SzlError(
            f"SZL-ID 0x{szl.szl_id:04x} has records of {szl.record_length} bytes, not {record_length}"
        )


def _word(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "big")


def _text(field: bytes) -> str:
    """A fixed-size text field: up to its first NUL, trailing spaces stripped, Latin-1."""
    return field.split(b"\x00", 1)[0].decode("latin-1").rstrip(" ")
