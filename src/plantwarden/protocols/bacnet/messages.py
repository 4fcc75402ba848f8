"""The exact path's record: one `BacnetMessage` per datagram, and the schema of the protocol's own
columns (declared once, in `SCHEMA`: name, dtype, "none" value).

The message's scalar fields named in `SCHEMA` are exactly the columns of `BacnetColumns`; the
addresses (`dadr`, `sadr`) and the written value (`value`) live only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from plantwarden.protocols.bacnet.findings import BacnetFinding
from plantwarden.protocols.bacnet.tags import Value
from plantwarden.protocols.common import MAX_TARGETS, Operation, ParseStatus, Summary


class Column(NamedTuple):
    """One of the protocol's own columns: its name (a `BacnetMessage` field), dtype, "none" value."""

    name: str
    dtype: type[np.generic]
    none: int
    help: str


SCHEMA: tuple[Column, ...] = (
    Column("bvlc_type", np.int16, -1, "BVLC type (0x81: BACnet/IP)"),
    Column("bvlc_function", np.int16, -1, "BVLC function"),
    Column("bvlc_length", np.int32, -1, "BVLC length (the whole message)"),
    Column("bvlc_result", np.int32, -1, "BVLC-Result code"),
    Column("origin", np.int64, -1, "Forwarded-NPDU originating address: IPv4 << 16 | port"),
    Column("npdu_version", np.int16, -1, "NPDU protocol version"),
    Column("npdu_control", np.int16, -1, "NPDU control octet"),
    Column("dnet", np.int32, -1, "destination network"),
    Column("dlen", np.int16, -1, "destination MAC address length"),
    Column("snet", np.int32, -1, "source network"),
    Column("slen", np.int16, -1, "source MAC address length"),
    Column("hop_count", np.int16, -1, "hop count"),
    Column("network_message", np.int16, -1, "network layer message type"),
    Column("pdu_type", np.int16, -1, "APDU type (0 confirmed request ... 7 abort)"),
    Column("pdu_flags", np.int16, -1, "APDU type octet's low 4 bits (SEG, MOR, SA; NAK, SRV)"),
    Column("invoke_id", np.int16, -1, "invoke id"),
    Column("sequence_number", np.int16, -1, "segment sequence number"),
    Column("window_size", np.int16, -1, "proposed or actual window size"),
    Column("service_choice", np.int16, -1, "confirmed or unconfirmed service choice"),
    Column("object_type", np.int32, -1, "first target's object type"),
    Column("instance", np.int32, -1, "first target's object instance"),
    Column("property_id", np.int64, -1, "first target's property identifier"),
    Column("array_index", np.int64, -1, "first target's property array index"),
    Column("priority", np.int64, -1, "writeProperty priority"),
    Column("value_tag", np.int16, -1, "application tag of the first value written or read"),
    Column("device_instance", np.int32, -1, "I-Am / I-Have device instance"),
    Column("max_apdu", np.int64, -1, "I-Am max APDU length accepted"),
    Column("segmentation", np.int64, -1, "I-Am segmentation supported"),
    Column("vendor_id", np.int64, -1, "I-Am vendor identifier; proprietary network message vendor"),
    Column("low_limit", np.int64, -1, "Who-Is / Who-Has device instance range low limit"),
    Column("high_limit", np.int64, -1, "Who-Is / Who-Has device instance range high limit"),
    Column("error_class", np.int64, -1, "error class (Error-PDU; first failed property of an RPM-ACK)"),
    Column("error_code", np.int64, -1, "error code"),
    Column("reason", np.int16, -1, "reject or abort reason"),
    Column("state", np.int64, -1, "reinitializeDevice state, deviceCommunicationControl enable"),
)
NAMES = tuple(column.name for column in SCHEMA)
DEFAULTS: dict[str, Any] = {column.name: column.none for column in SCHEMA}


@dataclass(frozen=True, slots=True)
class BacnetMessage:
    """One BACnet/IP datagram as the exact decoder reads it; "none" is -1."""

    segment: int = 0
    pdu_index: int = 0
    offset: int = 0
    function_code: int = -1
    """The service choice of an APDU with one; else the network message type; else the BVLC
    function (BVLC messages without an NPDU); -1 for segment ACK, reject, abort, and when none
    could be read."""
    function: str = ""
    operation: Operation = Operation.MALFORMED
    is_response: bool = False
    address: int = -1
    """The first target's object identifier (type << 22 | instance)."""
    targets: tuple[str, ...] = ()
    """Every target (the summary keeps `MAX_TARGETS`)."""
    result: int = -1
    status: ParseStatus = ParseStatus.MALFORMED
    finding: BacnetFinding = BacnetFinding.OK
    bvlc_type: int = -1
    bvlc_function: int = -1
    bvlc_length: int = -1
    bvlc_result: int = -1
    origin: int = -1
    npdu_version: int = -1
    npdu_control: int = -1
    dnet: int = -1
    dlen: int = -1
    snet: int = -1
    slen: int = -1
    hop_count: int = -1
    network_message: int = -1
    pdu_type: int = -1
    pdu_flags: int = -1
    invoke_id: int = -1
    sequence_number: int = -1
    window_size: int = -1
    service_choice: int = -1
    object_type: int = -1
    instance: int = -1
    property_id: int = -1
    array_index: int = -1
    priority: int = -1
    value_tag: int = -1
    device_instance: int = -1
    max_apdu: int = -1
    segmentation: int = -1
    vendor_id: int = -1
    low_limit: int = -1
    high_limit: int = -1
    error_class: int = -1
    error_code: int = -1
    reason: int = -1
    state: int = -1
    dadr: bytes = b""
    sadr: bytes = b""
    value: Value = None
    """writeProperty's first application-tagged value; readProperty-ACK's."""

    def summary(self) -> Summary:
        """The common fields; `unit` is the device instance of an I-Am or I-Have."""
        return Summary(
            function_code=self.function_code,
            function=self.function,
            operation=self.operation,
            is_response=self.is_response,
            unit=self.device_instance,
            address=self.address,
            quantity=len(self.targets),
            targets=self.targets[:MAX_TARGETS],
            result=self.result,
            status=self.status,
            finding=int(self.finding),
        )
