"""How DNP3 answers find their requests: the outstation's address and the application sequence.

A request (from the master) is answered by a response (129) from the outstation it addressed,
with the same 4-bit application sequence; several outstations may share a connection (behind a
gateway), so the key holds the outstation's link address too. Confirms, unsolicited responses
(130), frames that do not end an application fragment and link-layer frames are not requests;
the "no acknowledgement" functions (6, 8, 10, 12) expect no response.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import NOT_RECORDED, RequestKeys, SummaryColumns, one_way_requests
from plantwarden.protocols.dnp3.functions import CONFIRM

RESPONSE, UNSOLICITED_RESPONSE = 129, 130
NO_RESPONSE = (6, 8, 10, 12)
"""Direct operate, immediate freeze, freeze and clear, freeze at time: each "no ack"."""
SEQUENCE = 0x0F


def _keys(own: dict[str, npt.NDArray[Any]], summary: SummaryColumns) -> npt.NDArray[np.int64]:
    function = own["app_function"]
    keys = one_way_requests(summary)
    application = function >= 0
    keys[~application & (own["control"] >= 0)] = NOT_RECORDED
    outstation = np.where(summary.is_response, own["source"], own["destination"]).astype(np.int64)
    paired = application & (function != CONFIRM) & ~np.isin(function, (*NO_RESPONSE, UNSOLICITED_RESPONSE))
    paired &= ~summary.is_response | (function == RESPONSE)
    keys[paired] = (outstation[paired] & 0xFFFF) << 4 | (own["app_control"][paired] & SEQUENCE)
    keys[(function == CONFIRM) | (function == UNSOLICITED_RESPONSE)] = NOT_RECORDED
    return keys


REQUEST_KEYS = RequestKeys(("app_function", "app_control", "control", "source", "destination"), _keys)
