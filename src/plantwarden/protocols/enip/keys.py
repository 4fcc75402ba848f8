"""How EtherNet/IP answers find their requests, within a connection.

A connected (class 3) CIP request in SendUnitData is answered with its 16-bit sequence count;
every other encapsulation command by a reply echoing its 8-byte sender context (folded here to
30 bits). NOP and class 1 I/O are not requests; UnRegisterSession expects no reply.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import NOT_RECORDED, ONE_WAY, RequestKeys, SummaryColumns, one_way_requests
from plantwarden.protocols.enip.messages import NOP, SEND_UNIT_DATA, UNREGISTER_SESSION

CONNECTED_KEYS = 1 << 30
"""Connected messages' keys: this plus the sequence count (sender contexts fold below it)."""


def _keys(own: dict[str, npt.NDArray[Any]], summary: SummaryColumns) -> npt.NDArray[np.int64]:
    command, context = own["command"], own["sender_context"].astype(np.int64)
    keys = one_way_requests(summary)
    known = command >= 0
    folded = (context ^ (context >> 30) ^ (context >> 60)) & (CONNECTED_KEYS - 1)
    keys[known] = folded[known]
    connected = (command == SEND_UNIT_DATA) & (own["sequence"] >= 0)
    keys[connected] = CONNECTED_KEYS + (own["sequence"][connected] & 0xFFFF)
    keys[(command == UNREGISTER_SESSION) & ~summary.is_response] = ONE_WAY
    keys[(command == NOP) | own["io"].astype(bool)] = NOT_RECORDED
    return keys


REQUEST_KEYS = RequestKeys(("command", "sender_context", "sequence", "io"), _keys)
