"""`MqttColumns`: one row per packet, one numpy array per field; the schema is declared once."""

from __future__ import annotations

import numpy as np

from plantwarden.protocols.common import Column, MessageColumns

SCHEMA: tuple[Column, ...] = (
    Column("packet_type", np.int8, -1),
    Column("flags", np.int8, -1),
    Column("remaining_length", np.int64, -1),
    Column("qos", np.int8, -1),
    Column("retain", np.bool_, False),
    Column("dup", np.bool_, False),
    Column("packet_id", np.int32, -1),
    Column("protocol_level", np.int16, -1),
    Column("connect_flags", np.int16, -1),
    Column("keep_alive", np.int32, -1),
    Column("clean_session", np.bool_, False),
    Column("will_flag", np.bool_, False),
    Column("has_username", np.bool_, False),
    Column("has_password", np.bool_, False),
    Column("password_length", np.int32, -1),
    Column("credentials_in_clear", np.bool_, False),
    Column("session_present", np.bool_, False),
    Column("return_code", np.int16, -1),
    Column("protocol_name", object, ""),
    Column("client_id", object, ""),
    Column("username", object, ""),
)
NAMES = tuple(column.name for column in SCHEMA)

MqttColumns = MessageColumns
"""Per packet: segment, index within it, offset, `summary`, and the `SCHEMA` columns in `own`;
per segment `leftover` (see `MessageColumns`)."""
