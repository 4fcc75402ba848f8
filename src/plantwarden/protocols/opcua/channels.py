"""OPC UA secure channels, tracked across a connection: which carry their messages unencrypted.

An OpenSecureChannel request names the channel's security policy and its MessageSecurityMode
(OPC 10000-4 sec. 7.15): None (1) sends messages as they are, Sign (2) signs them but leaves them
readable, SignAndEncrypt (3) encrypts them. The check flags the first sign that a connection's
messages are readable, once per connection:

- `unencrypted_channel`: on an OpenSecureChannel request with mode None or Sign, or with the
  SecurityPolicy None;
- `readable_messages`: on the first message whose body could be read, on a connection whose
  OpenSecureChannel was not seen (the capture began after it).
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import StreamCheck, SummaryColumns
from plantwarden.protocols.opcua.messages import MSG, OPN

MODE_NONE, MODE_SIGN, MODE_SIGN_AND_ENCRYPT = 1, 2, 3
POLICY_NONE = "http://opcfoundation.org/UA/SecurityPolicy#None"


class OpcuaChannel(enum.IntEnum):
    """What the channel check says of a message (0: nothing)."""

    OK = 0
    UNENCRYPTED_CHANNEL = 1
    READABLE_MESSAGES = 2


def check_channels(
    state: dict[int, Any],
    connection: npt.NDArray[np.int64],
    from_server: npt.NDArray[np.bool_],
    own: dict[str, npt.NDArray[Any]],
    _: SummaryColumns,
) -> npt.NDArray[np.uint8]:
    """Per row, its `OpcuaChannel` code; `state` holds per connection whether it was flagged."""
    kind, mode, policy, readable = (
        own["message_type"],
        own["security_mode"],
        own["security_policy"],
        own["body_readable"],
    )
    codes = np.zeros(len(kind), dtype=np.uint8)
    opens = (kind == OPN) & ~from_server
    unsecured = opens & (np.isin(mode, (MODE_NONE, MODE_SIGN)) | (policy == POLICY_NONE))
    secured = opens & ~unsecured & (mode == MODE_SIGN_AND_ENCRYPT)
    plain = (kind == MSG) & readable.astype(bool)
    rows = np.flatnonzero(unsecured | secured | plain)
    for row, flow, is_open, is_secured in zip(
        rows.tolist(), connection[rows].tolist(), opens[rows].tolist(), secured[rows].tolist(), strict=True
    ):
        known = state.get(flow)
        if is_open:
            state[flow] = "encrypted" if is_secured else "unencrypted"
            if not is_secured and known != "unencrypted":
                codes[row] = OpcuaChannel.UNENCRYPTED_CHANNEL
        elif known is None:
            state[flow] = "unencrypted"
            codes[row] = OpcuaChannel.READABLE_MESSAGES
    return codes


CHANNEL_CHECK = StreamCheck(
    ("message_type", "security_mode", "security_policy", "body_readable"), OpcuaChannel, check_channels
)
