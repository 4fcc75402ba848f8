"""BACnet's codes: BVLC functions (Annex J), network layer messages (clause 6), APDU types and
services (clauses 20 and 21), reject and abort reasons, and what each does (`Operation`).

Names are spelled as the standard's identifiers, in lower case with words joined by
underscores ("read_property_multiple", "i_am", "who_is_router_to_network").
"""

from __future__ import annotations

from plantwarden.protocols.common import Operation

BVLC_TYPE_IP = 0x81
"""BVLC type of BACnet/IP (Annex J.2)."""
BVLC_HEADER = 4
"""Type, function and the 2-byte length (which counts the whole BVLL message)."""
BACNET_PORT = 47808

RESULT, WRITE_BDT, READ_BDT, READ_BDT_ACK, FORWARDED_NPDU = 0x00, 0x01, 0x02, 0x03, 0x04
REGISTER_FOREIGN_DEVICE, READ_FDT, READ_FDT_ACK, DELETE_FDT_ENTRY = 0x05, 0x06, 0x07, 0x08
DISTRIBUTE_BROADCAST, ORIGINAL_UNICAST, ORIGINAL_BROADCAST, SECURED_BVLL = 0x09, 0x0A, 0x0B, 0x0C

BVLC_FUNCTIONS: dict[int, str] = {
    RESULT: "bvlc_result",
    WRITE_BDT: "write_broadcast_distribution_table",
    READ_BDT: "read_broadcast_distribution_table",
    READ_BDT_ACK: "read_broadcast_distribution_table_ack",
    FORWARDED_NPDU: "forwarded_npdu",
    REGISTER_FOREIGN_DEVICE: "register_foreign_device",
    READ_FDT: "read_foreign_device_table",
    READ_FDT_ACK: "read_foreign_device_table_ack",
    DELETE_FDT_ENTRY: "delete_foreign_device_table_entry",
    DISTRIBUTE_BROADCAST: "distribute_broadcast_to_network",
    ORIGINAL_UNICAST: "original_unicast_npdu",
    ORIGINAL_BROADCAST: "original_broadcast_npdu",
    SECURED_BVLL: "secured_bvll",
}
NPDU_FUNCTIONS = frozenset({FORWARDED_NPDU, DISTRIBUTE_BROADCAST, ORIGINAL_UNICAST, ORIGINAL_BROADCAST})
"""The BVLC functions that carry an NPDU (Forwarded-NPDU after the 6-byte originating address)."""
BVLC_OPERATIONS: dict[int, Operation] = {
    WRITE_BDT: Operation.CONTROL,
    READ_BDT: Operation.READ,
    READ_BDT_ACK: Operation.READ,
    REGISTER_FOREIGN_DEVICE: Operation.CONTROL,
    READ_FDT: Operation.READ,
    READ_FDT_ACK: Operation.READ,
    DELETE_FDT_ENTRY: Operation.CONTROL,
}
BVLC_RESPONSES = frozenset({RESULT, READ_BDT_ACK, READ_FDT_ACK})
BDT_ENTRY, FDT_ENTRY, ADDRESS = 10, 10, 6
"""Sizes: a BDT entry (address, port, mask), an FDT entry (address, port, TTL, time remaining),
a B/IP address (IPv4 address and port)."""

NPDU_VERSION = 1
NETWORK_MESSAGE, DESTINATION, SOURCE = 0x80, 0x20, 0x08
"""NPDU control bits: network layer message, DNET/DLEN/DADR present, SNET/SLEN/SADR present."""
PROPRIETARY_MESSAGE = 0x80
"""Network message types from here on carry a 2-byte vendor id."""
NETWORK_MESSAGES: dict[int, str] = {
    0x00: "who_is_router_to_network",
    0x01: "i_am_router_to_network",
    0x02: "i_could_be_router_to_network",
    0x03: "reject_message_to_network",
    0x04: "router_busy_to_network",
    0x05: "router_available_to_network",
    0x06: "initialize_routing_table",
    0x07: "initialize_routing_table_ack",
    0x08: "establish_connection_to_network",
    0x09: "disconnect_connection_to_network",
    0x0A: "challenge_request",
    0x0B: "security_payload",
    0x0C: "security_response",
    0x0D: "request_key_update",
    0x0E: "update_key_set",
    0x0F: "update_distribution_key",
    0x10: "request_master_key",
    0x11: "set_master_key",
    0x12: "what_is_network_number",
    0x13: "network_number_is",
}
NETWORK_OPERATIONS: dict[int, Operation] = {
    0x00: Operation.IDENTIFY,
    0x01: Operation.IDENTIFY,
    0x02: Operation.IDENTIFY,
    0x06: Operation.CONTROL,
    0x07: Operation.CONTROL,
    0x08: Operation.CONTROL,
    0x09: Operation.CONTROL,
    0x12: Operation.IDENTIFY,
    0x13: Operation.IDENTIFY,
}
NETWORK_RESPONSES = frozenset({0x01, 0x02, 0x03, 0x07, 0x13})
"""Network messages that answer another: I-Am-Router, I-Could-Be-Router, Reject-Message,
Initialize-Routing-Table-Ack, Network-Number-Is."""

CONFIRMED, UNCONFIRMED, SIMPLE_ACK, COMPLEX_ACK, SEGMENT_ACK, ERROR, REJECT, ABORT = range(8)
PDU_TYPES = (
    "confirmed_request",
    "unconfirmed_request",
    "simple_ack",
    "complex_ack",
    "segment_ack",
    "error",
    "reject",
    "abort",
)
SEGMENTED, MORE_FOLLOWS = 0x08, 0x04
"""APDU header flags of confirmed requests and complex ACKs."""
SERVER = 0x01
"""The SRV flag of segment ACKs and aborts: sent by the server."""

R, W, C = Operation.READ, Operation.WRITE, Operation.CONTROL
ID, OT = Operation.IDENTIFY, Operation.OTHER
CONFIRMED_SERVICES: dict[int, tuple[str, Operation]] = {
    0: ("acknowledge_alarm", OT),
    1: ("confirmed_cov_notification", OT),
    2: ("confirmed_event_notification", OT),
    3: ("get_alarm_summary", R),
    4: ("get_enrollment_summary", R),
    5: ("subscribe_cov", R),
    6: ("atomic_read_file", R),
    7: ("atomic_write_file", W),
    8: ("add_list_element", W),
    9: ("remove_list_element", W),
    10: ("create_object", W),
    11: ("delete_object", W),
    12: ("read_property", R),
    13: ("read_property_conditional", R),
    14: ("read_property_multiple", R),
    15: ("write_property", W),
    16: ("write_property_multiple", W),
    17: ("device_communication_control", C),
    18: ("confirmed_private_transfer", OT),
    19: ("confirmed_text_message", OT),
    20: ("reinitialize_device", C),
    21: ("vt_open", OT),
    22: ("vt_close", OT),
    23: ("vt_data", OT),
    24: ("authenticate", OT),
    25: ("request_key", OT),
    26: ("read_range", R),
    27: ("life_safety_operation", C),
    28: ("subscribe_cov_property", R),
    29: ("get_event_information", R),
    30: ("subscribe_cov_property_multiple", R),
    31: ("confirmed_cov_notification_multiple", OT),
    32: ("confirmed_audit_notification", OT),
    33: ("audit_log_query", R),
}
UNCONFIRMED_SERVICES: dict[int, tuple[str, Operation]] = {
    0: ("i_am", ID),
    1: ("i_have", ID),
    2: ("unconfirmed_cov_notification", OT),
    3: ("unconfirmed_event_notification", OT),
    4: ("unconfirmed_private_transfer", OT),
    5: ("unconfirmed_text_message", OT),
    6: ("time_synchronization", OT),
    7: ("who_has", ID),
    8: ("who_is", ID),
    9: ("utc_time_synchronization", OT),
    10: ("write_group", W),
    11: ("unconfirmed_cov_notification_multiple", OT),
    12: ("unconfirmed_audit_notification", OT),
    13: ("who_am_i", ID),
    14: ("you_are", C),
}
I_AM, I_HAVE, WHO_HAS, WHO_IS = 0, 1, 7, 8
ANSWERS = frozenset({I_AM, I_HAVE})
"""Unconfirmed services that answer another (Who-Is, Who-Has): `is_response`."""

SUBSCRIBE_COV, ATOMIC_READ_FILE, ATOMIC_WRITE_FILE = 5, 6, 7
READ_PROPERTY, READ_PROPERTY_MULTIPLE, WRITE_PROPERTY, WRITE_PROPERTY_MULTIPLE = 12, 14, 15, 16
DEVICE_COMMUNICATION_CONTROL, REINITIALIZE_DEVICE, READ_RANGE, SUBSCRIBE_COV_PROPERTY = 17, 20, 26, 28
TIME_SYNCHRONIZATION, UTC_TIME_SYNCHRONIZATION = 6, 9

RESULT_ERROR, RESULT_REJECT, RESULT_ABORT = 1 << 24, 2 << 24, 3 << 24
"""The `Summary.result` of an error (| class << 16 | code), reject (| reason) and abort (| reason):
each kind apart, and never 0 (reason 0 and error code 0 are "other")."""


def confirmed_service(code: int) -> tuple[str, Operation]:
    """A confirmed service's name and operation ("confirmed_service_N", OTHER if unknown)."""
    return CONFIRMED_SERVICES.get(code) or (f"confirmed_service_{code}", Operation.OTHER)


def unconfirmed_service(code: int) -> tuple[str, Operation]:
    """An unconfirmed service's name and operation ("unconfirmed_service_N", OTHER if unknown)."""
    return UNCONFIRMED_SERVICES.get(code) or (f"unconfirmed_service_{code}", Operation.OTHER)


def network_message(code: int) -> str:
    """A network layer message's name ("proprietary_network_message_N" from 0x80 on)."""
    if code >= PROPRIETARY_MESSAGE:
        return f"proprietary_network_message_{code}"
    return NETWORK_MESSAGES.get(code) or f"network_message_{code}"


def error_result(error_class: int, error_code: int) -> int:
    """`Summary.result` of an error (class and code clipped to 8 and 16 bits)."""
    return RESULT_ERROR | (min(error_class, 0xFF) << 16) | min(error_code, 0xFFFF)
