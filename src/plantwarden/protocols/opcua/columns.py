"""`OpcuaColumns`: one row per message, one numpy array per field; the schema is declared once."""

from __future__ import annotations

import numpy as np

from plantwarden.protocols.common import Column, MessageColumns

SCHEMA: tuple[Column, ...] = (
    Column("message_type", np.uint8, 0),
    Column("chunk_type", np.int16, -1),
    Column("message_size", np.int64, -1),
    Column("protocol_version", np.int64, -1),
    Column("receive_buffer_size", np.int64, -1),
    Column("send_buffer_size", np.int64, -1),
    Column("max_message_size", np.int64, -1),
    Column("max_chunk_count", np.int64, -1),
    Column("error_code", np.int64, -1),
    Column("secure_channel_id", np.int64, -1),
    Column("token_id", np.int64, -1),
    Column("sequence_number", np.int64, -1),
    Column("request_id", np.int64, -1),
    Column("body_readable", np.bool_, False),
    Column("service_id", np.int32, -1),
    Column("service_result", np.int64, -1),
    Column("request_type", np.int64, -1),
    Column("security_mode", np.int64, -1),
    Column("security_policy", object, ""),
    Column("endpoint_url", object, ""),
)
NAMES = tuple(column.name for column in SCHEMA)

OpcuaColumns = MessageColumns
"""Per message: segment, index within it, offset, `summary`, and the `SCHEMA` columns in `own`;
per segment `leftover` (see `MessageColumns`)."""
