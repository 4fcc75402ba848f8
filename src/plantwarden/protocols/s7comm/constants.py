"""S7comm's codes and their names, after the Wireshark s7comm dissector's documented layout
(packet-s7comm.c, packet-s7comm_szl_ids.c) and the Snap7 reference manual.

Function codes in a `Summary` are the protocol's own where it has one byte of them, and put in
their own ranges where S7comm names a function by two numbers or not at all:

- job and ack_data: the parameter's function code (0x00-0xFF);
- userdata: `USERDATA_BASE | group << 8 | subfunction` (0x1000-0x1FFF);
- a COTP TPDU that is not data: `COTP_BASE | TPDU type` (0x2000-0x20FF; 0x20F0: data TPDU with
  no user data or with user data of another protocol);
- S7comm-plus: `PLUS_BASE | opcode << 16 | function` (function 0 where the opcode has none;
  `PLUS_BASE` alone for a later fragment of a PDU split over several TSDUs, which has no opcode).
"""

from __future__ import annotations

from plantwarden.protocols.common import Operation

TPKT_VERSION = 3
TPKT_HEADER = 4
MIN_TPKT_LENGTH = 7
"""TPKT header, then at least a COTP data TPDU's 3 bytes."""
MAX_FRAGMENTS = 64
"""COTP data TPDUs without end of TSDU kept before the last one of a PDU."""

# COTP TPDU types (ISO 8073, the high nibble of the second octet).
COTP_CR, COTP_CC, COTP_DR, COTP_DC, COTP_DT = 0xE0, 0xD0, 0x80, 0xC0, 0xF0
COTP_ED, COTP_AK, COTP_EA, COTP_RJ, COTP_ER = 0x10, 0x60, 0x20, 0x50, 0x70
COTP_NAMES = {
    COTP_CR: "cotp_connection_request",
    COTP_CC: "cotp_connection_confirm",
    COTP_DR: "cotp_disconnect_request",
    COTP_DC: "cotp_disconnect_confirm",
    COTP_DT: "cotp_data",
    COTP_ED: "cotp_expedited_data",
    COTP_AK: "cotp_data_acknowledgement",
    COTP_EA: "cotp_expedited_data_acknowledgement",
    COTP_RJ: "cotp_reject",
    COTP_ER: "cotp_error",
}
COTP_MIN_LI = {COTP_CR: 6, COTP_CC: 6, COTP_DR: 6, COTP_DC: 5, COTP_DT: 2, COTP_ER: 3}
"""The fixed part of each TPDU's header (class 0), as its length indicator counts it."""
TSAP_SOURCE, TSAP_DESTINATION = 0xC1, 0xC2

S7COMM_ID, S7COMM_PLUS_ID = 0x32, 0x72
JOB, ACK, ACK_DATA, USERDATA = 1, 2, 3, 7
ROSCTR_NAMES = {JOB: "job", ACK: "ack", ACK_DATA: "ack_data", USERDATA: "userdata"}

USERDATA_BASE, COTP_BASE, PLUS_BASE = 0x1000, 0x2000, 0x72000000

# Job / ack_data parameter function codes.
CPU_SERVICES, SETUP_COMMUNICATION, READ_VAR, WRITE_VAR = 0x00, 0xF0, 0x04, 0x05
REQUEST_DOWNLOAD, DOWNLOAD_BLOCK, DOWNLOAD_ENDED = 0x1A, 0x1B, 0x1C
START_UPLOAD, UPLOAD, END_UPLOAD = 0x1D, 0x1E, 0x1F
PI_SERVICE, PLC_STOP = 0x28, 0x29
FUNCTION_NAMES = {
    CPU_SERVICES: "cpu_services",
    SETUP_COMMUNICATION: "setup_communication",
    READ_VAR: "read_var",
    WRITE_VAR: "write_var",
    REQUEST_DOWNLOAD: "request_download",
    DOWNLOAD_BLOCK: "download_block",
    DOWNLOAD_ENDED: "download_ended",
    START_UPLOAD: "start_upload",
    UPLOAD: "upload",
    END_UPLOAD: "end_upload",
    PI_SERVICE: "pi_service",
    PLC_STOP: "plc_stop",
}
FUNCTION_OPERATIONS = {
    CPU_SERVICES: Operation.OTHER,
    SETUP_COMMUNICATION: Operation.OTHER,
    READ_VAR: Operation.READ,
    WRITE_VAR: Operation.WRITE,
    REQUEST_DOWNLOAD: Operation.PROGRAM,
    DOWNLOAD_BLOCK: Operation.PROGRAM,
    DOWNLOAD_ENDED: Operation.PROGRAM,
    START_UPLOAD: Operation.PROGRAM,
    UPLOAD: Operation.PROGRAM,
    END_UPLOAD: Operation.PROGRAM,
    PI_SERVICE: Operation.CONTROL,
    PLC_STOP: Operation.CONTROL,
}
BLOCK_FUNCTIONS = frozenset(range(REQUEST_DOWNLOAD, END_UPLOAD + 1))
PROGRAM_PI_SERVICES = frozenset({"_INSE", "_DELE", "_MODU", "_GARB"})
"""PI services that change the logic: activate (insert) or delete blocks, copy RAM to ROM,
compress memory. Every other PI service (P_PROGRAM start, NC services) is CONTROL."""
BLOCK_TYPES = {"08": "OB", "0A": "DB", "0B": "SDB", "0C": "FC", "0D": "SFC", "0E": "FB", "0F": "SFB"}

# S7ANY item fields.
VARIABLE_SPECIFICATION, SYNTAX_S7ANY, SYNTAX_DBREAD = 0x12, 0x10, 0xB0
S7ANY_LENGTH = 10
TS_BIT, TS_BYTE, TS_CHAR, TS_WORD, TS_INT, TS_DWORD, TS_DINT, TS_REAL = 1, 2, 3, 4, 5, 6, 7, 8
TS_COUNTER, TS_TIMER, TS_IEC_TIMER, TS_IEC_COUNTER = 0x1C, 0x1D, 0x1E, 0x1F
TRANSPORT_SIZES = {
    TS_BIT: "BOOL",
    TS_BYTE: "BYTE",
    TS_CHAR: "CHAR",
    TS_WORD: "WORD",
    TS_INT: "INT",
    TS_DWORD: "DWORD",
    TS_DINT: "DINT",
    TS_REAL: "REAL",
    9: "DATE",
    10: "TOD",
    11: "TIME",
    12: "S5TIME",
    15: "DATE_AND_TIME",
    TS_COUNTER: "COUNTER",
    TS_TIMER: "TIMER",
    TS_IEC_TIMER: "IEC_TIMER",
    TS_IEC_COUNTER: "IEC_COUNTER",
    0x20: "HS_COUNTER",
}
WIDTH_LETTERS = {1: "B", 2: "W", 4: "D"}
TYPE_WIDTHS = {TS_BYTE: 1, TS_CHAR: 1, TS_WORD: 2, TS_INT: 2, 9: 2, 12: 2, TS_DWORD: 4, TS_DINT: 4}
TYPE_WIDTHS |= {TS_REAL: 4, 10: 4, 11: 4}
AREA_DB, AREA_DI, AREA_COUNTER, AREA_TIMER = 0x84, 0x85, 0x1C, 0x1D
AREA_LETTERS = {0x80: "P", 0x81: "I", 0x82: "Q", 0x83: "M", 0x86: "L", 0x87: "V"}
"""Areas addressed as a letter, a width letter and a byte (English mnemonics: I, Q, M)."""
NUMBERED_AREAS = {AREA_COUNTER: "C", AREA_TIMER: "T", 0x1E: "C", 0x1F: "T"}
"""Counters and timers: the address is the number (not shifted by 3)."""

# Data item transport sizes whose length counts bits.
DATA_BIT_LENGTHS = frozenset({0x03, 0x04, 0x05})
ITEM_OK = 0xFF

# Userdata.
USERDATA_HEAD = b"\x00\x01\x12"
METHOD_REQUEST, METHOD_RESPONSE = 0x11, 0x12
TYPE_PUSH, TYPE_REQUEST, TYPE_RESPONSE = 0x0, 0x4, 0x8
GROUP_MODE, GROUP_PROGRAMMER, GROUP_CYCLIC, GROUP_BLOCK = 0, 1, 2, 3
GROUP_CPU, GROUP_SECURITY, GROUP_PBC, GROUP_TIME, GROUP_NC = 4, 5, 6, 7, 0xF
READ_SZL = 1
CLOCK_READ, CLOCK_SET, CLOCK_READ_FOLLOWING, CLOCK_SET_ALTERNATIVE = 1, 2, 3, 4
GROUP_NAMES = {
    GROUP_MODE: "mode_transition",
    GROUP_PROGRAMMER: "programmer_commands",
    GROUP_CYCLIC: "cyclic_data",
    GROUP_BLOCK: "block_functions",
    GROUP_CPU: "cpu_functions",
    GROUP_SECURITY: "security",
    GROUP_PBC: "pbc_bsend_brecv",
    GROUP_TIME: "time_functions",
    GROUP_NC: "nc_programming",
}
SUBFUNCTION_NAMES = {
    (GROUP_PROGRAMMER, 0x01): "request_diag_data",
    (GROUP_PROGRAMMER, 0x02): "vartab",
    (GROUP_PROGRAMMER, 0x0C): "erase",
    (GROUP_PROGRAMMER, 0x0E): "read_diag_data",
    (GROUP_PROGRAMMER, 0x0F): "remove_diag_data",
    (GROUP_PROGRAMMER, 0x10): "forces",
    (GROUP_PROGRAMMER, 0x13): "request_diag_data_2",
    (GROUP_CYCLIC, 0x01): "cyclic_memory",
    (GROUP_CYCLIC, 0x04): "cyclic_unsubscribe",
    (GROUP_CYCLIC, 0x05): "cyclic_memory_changedriven",
    (GROUP_CYCLIC, 0x07): "cyclic_ras_changedriven",
    (GROUP_BLOCK, 0x01): "list_blocks",
    (GROUP_BLOCK, 0x02): "list_blocks_of_type",
    (GROUP_BLOCK, 0x03): "get_block_info",
    (GROUP_CPU, READ_SZL): "read_szl",
    (GROUP_CPU, 0x02): "message_service",
    (GROUP_CPU, 0x03): "diagnostic_message",
    (GROUP_CPU, 0x05): "alarm8_indication",
    (GROUP_CPU, 0x06): "notify_indication",
    (GROUP_CPU, 0x07): "alarm8_lock",
    (GROUP_CPU, 0x08): "alarm8_unlock",
    (GROUP_CPU, 0x09): "scan_indication",
    (GROUP_CPU, 0x0B): "alarm_ack",
    (GROUP_CPU, 0x0C): "alarm_ack_indication",
    (GROUP_CPU, 0x0D): "alarm_lock_indication",
    (GROUP_CPU, 0x0E): "alarm_unlock_indication",
    (GROUP_CPU, 0x11): "alarm_sq_indication",
    (GROUP_CPU, 0x12): "alarm_s_indication",
    (GROUP_CPU, 0x13): "alarm_query",
    (GROUP_CPU, 0x16): "notify8_indication",
    (GROUP_SECURITY, 0x01): "plc_password",
    (GROUP_SECURITY, 0x02): "clean_session",
    (GROUP_TIME, CLOCK_READ): "clock_read",
    (GROUP_TIME, CLOCK_SET): "clock_set",
    (GROUP_TIME, CLOCK_READ_FOLLOWING): "clock_read_following",
    (GROUP_TIME, CLOCK_SET_ALTERNATIVE): "clock_set_alternative",
}
GROUP_OPERATIONS = {
    GROUP_MODE: Operation.DIAGNOSTIC,
    GROUP_PROGRAMMER: Operation.DIAGNOSTIC,
    GROUP_CYCLIC: Operation.READ,
    GROUP_BLOCK: Operation.DIAGNOSTIC,
    GROUP_CPU: Operation.DIAGNOSTIC,
    GROUP_SECURITY: Operation.OTHER,
    GROUP_PBC: Operation.OTHER,
    GROUP_TIME: Operation.READ,
    GROUP_NC: Operation.OTHER,
}
SUBFUNCTION_OPERATIONS = {
    (GROUP_TIME, CLOCK_SET): Operation.WRITE,
    (GROUP_TIME, CLOCK_SET_ALTERNATIVE): Operation.WRITE,
    (GROUP_CYCLIC, 0x04): Operation.OTHER,
}
IDENTIFY_SZL_LISTS = frozenset({0x11, 0x1C})
"""SZL partial lists (the SZL id's low byte) that identify the device: module identification
(0x0011 and its extracts 0x0111, 0x0F11) and component identification (0x001C, 0x011C ...)."""

# S7comm-plus (detect-only).
PLUS_DIGEST_LENGTH = 0x20
PLUS_OPCODES = {0x31: "request", 0x32: "response", 0x33: "notification", 0x02: "response2"}
PLUS_FUNCTIONS = {
    0x04BB: "explore",
    0x04CA: "create_object",
    0x04D4: "delete_object",
    0x04F2: "set_variable",
    0x04FC: "get_variable",
    0x0524: "add_link",
    0x0542: "set_multi_variables",
    0x054C: "get_multi_variables",
    0x0556: "begin_sequence",
    0x0560: "end_sequence",
    0x056B: "invoke",
    0x0586: "get_var_substreamed",
}
"""Function names after the ICSNPP S7comm-plus log and the s7comm_plus Wireshark plugin."""
PLUS_FUNCTION_OPERATIONS = {
    0x04BB: Operation.READ,
    0x04CA: Operation.WRITE,
    0x04D4: Operation.WRITE,
    0x04F2: Operation.WRITE,
    0x04FC: Operation.READ,
    0x0542: Operation.WRITE,
    0x054C: Operation.READ,
    0x0586: Operation.READ,
}
