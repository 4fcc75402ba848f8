"""The protocol modules the sensor decodes beside Modbus, each adapted to the stream path.

Every module exports `MODULE` (its `ProtocolModule`), `extract(buffer, starts, lengths,
from_server)` giving columns with `summary`, `segment` (per row) and `leftover` (per segment),
and `decode_payload(payload, from_server)` giving messages with `summary()` and the bytes of a
partial last PDU.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from plantwarden.monitoring.protocol_streams import StreamProtocol
from plantwarden.protocols import bacnet, dnp3, iec104, mqtt, opcua
from plantwarden.protocols.common import ProtocolModule, Summary, SummaryColumns


class _Module(Protocol):
    MODULE: ProtocolModule

    def extract(self, buffer: Any, starts: Any, lengths: Any, from_server: Any) -> Any: ...

    def decode_payload(self, payload: bytes, from_server: bool) -> tuple[list[Any], bytes]: ...


def stream_protocol(module: _Module) -> StreamProtocol:
    """`module` on the stream path."""

    def extract(
        buffer: npt.NDArray[np.uint8],
        starts: npt.NDArray[np.int64],
        lengths: npt.NDArray[np.int64],
        from_server: npt.NDArray[np.bool_],
    ) -> tuple[SummaryColumns, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        columns = module.extract(buffer, starts, lengths, from_server)
        segment = np.asarray(columns.segment, dtype=np.int64)
        leftover = np.asarray(columns.leftover, dtype=np.int64)
        summary: SummaryColumns = columns.summary
        return summary, segment, leftover

    def decode_payload(payload: bytes, from_server: bool) -> tuple[list[Summary], bytes]:
        messages, rest = module.decode_payload(payload, from_server)
        return [message.summary() for message in messages], rest

    return StreamProtocol(module.MODULE, extract, decode_payload)


PROTOCOLS: dict[str, StreamProtocol] = {
    module.MODULE.name: stream_protocol(module) for module in (bacnet, dnp3, iec104, mqtt, opcua)
}
"""Every protocol the sensor decodes beside Modbus, by name."""
