"""How MQTT answers find their requests: the packet identifier, within a connection.

From the client: CONNECT is answered by CONNACK, PINGREQ by PINGRESP (one in flight each: fixed
keys above every packet id); PUBLISH with QoS 1 by PUBACK, with QoS 2 by PUBREC, then PUBREL by
PUBCOMP, SUBSCRIBE by SUBACK and UNSUBSCRIBE by UNSUBACK, each with its packet id. A QoS 0
PUBLISH and DISCONNECT expect nothing. What the broker publishes to a subscriber, and the
client's acknowledgements of it, are not requests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import NOT_RECORDED, RequestKeys, SummaryColumns, one_way_requests
from plantwarden.protocols.mqtt.messages import (
    CONNACK,
    CONNECT,
    PINGREQ,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBACK,
    SUBSCRIBE,
    UNSUBACK,
    UNSUBSCRIBE,
)

CONNECT_KEY, PING_KEY = 0x10000, 0x10001
"""Above every 16-bit packet id."""
CLIENT_ASKS = (PUBLISH, PUBREL, SUBSCRIBE, UNSUBSCRIBE)
SERVER_ANSWERS = (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK)
CLIENT_ACKS = (PUBACK, PUBREC, PUBCOMP)
"""Sent by a client when the broker publishes to it (PUBREL then comes from the broker)."""


def _keys(own: dict[str, npt.NDArray[Any]], summary: SummaryColumns) -> npt.NDArray[np.int64]:
    kind, packet_id = own["packet_type"], own["packet_id"].astype(np.int64)
    response = summary.is_response
    keys = one_way_requests(summary)
    with_id = packet_id >= 0
    asks = ~response & np.isin(kind, CLIENT_ASKS) & with_id
    answers = response & np.isin(kind, SERVER_ANSWERS) & with_id
    keys[asks | answers] = packet_id[asks | answers]
    keys[~response & np.isin(kind, CLIENT_ACKS)] = NOT_RECORDED
    keys[~response & (kind == CONNECT)] = CONNECT_KEY
    keys[response & (kind == CONNACK)] = CONNECT_KEY
    keys[~response & (kind == PINGREQ)] = PING_KEY
    keys[response & (kind == PINGRESP)] = PING_KEY
    return keys


REQUEST_KEYS = RequestKeys(("packet_type", "packet_id"), _keys)
