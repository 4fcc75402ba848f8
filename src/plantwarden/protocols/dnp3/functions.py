"""DNP3 function codes: the data link layer's (IEEE 1815-2012, 9.2.4.1.3) and the application
layer's (4.2.2.5, table 4-1 and 4-2), with their names and operation categories.
"""

from __future__ import annotations

from plantwarden.protocols.common import Operation

LINK_PRIMARY: dict[int, str] = {
    0: "reset_link_states",
    1: "reset_user_process",
    2: "test_link_states",
    3: "confirmed_user_data",
    4: "unconfirmed_user_data",
    9: "request_link_status",
}
"""Link functions of a frame from the primary station (PRM = 1); 1 is obsolete (DNP3 1.0)."""
LINK_SECONDARY: dict[int, str] = {
    0: "ack",
    1: "nack",
    11: "link_status",
    14: "link_not_functioning",
    15: "not_supported",
}
"""Link functions of a frame from the secondary station (PRM = 0); 14 is obsolete."""
USER_DATA = (3, 4)
"""The primary link functions that carry a transport segment."""

CONFIRM = 0
READ = 1
WRITE = 2
FREEZE_AT_TIME = (11, 12)
OPEN_FILE = 25
RESPONSES = (129, 130, 131)
"""Response, unsolicited response, authenticate response: they carry IIN after the function."""

NAMES: dict[int, str] = {
    0: "confirm",
    1: "read",
    2: "write",
    3: "select",
    4: "operate",
    5: "direct_operate",
    6: "direct_operate_nr",
    7: "immed_freeze",
    8: "immed_freeze_nr",
    9: "freeze_clear",
    10: "freeze_clear_nr",
    11: "freeze_at_time",
    12: "freeze_at_time_nr",
    13: "cold_restart",
    14: "warm_restart",
    15: "initialize_data",
    16: "initialize_appl",
    17: "start_appl",
    18: "stop_appl",
    19: "save_config",
    20: "enable_unsolicited",
    21: "disable_unsolicited",
    22: "assign_class",
    23: "delay_measure",
    24: "record_current_time",
    25: "open_file",
    26: "close_file",
    27: "delete_file",
    28: "get_file_info",
    29: "authenticate_file",
    30: "abort_file",
    31: "activate_config",
    32: "authenticate_req",
    33: "auth_req_no_ack",
    129: "response",
    130: "unsolicited_response",
    131: "authenticate_resp",
}

_OPERATIONS: dict[int, Operation] = {
    1: Operation.READ,
    2: Operation.WRITE,
    **dict.fromkeys(range(3, 13), Operation.CONTROL),  # select, operate, direct operate, freezes
    **dict.fromkeys(range(13, 19), Operation.CONTROL),  # restarts, initialize, start/stop application
    19: Operation.PROGRAM,  # save configuration
    20: Operation.OTHER,  # enable unsolicited: reporting configuration
    21: Operation.OTHER,  # disable unsolicited
    22: Operation.OTHER,  # assign class
    23: Operation.DIAGNOSTIC,  # delay measurement
    24: Operation.DIAGNOSTIC,  # record current time (LAN time synchronisation)
    25: Operation.READ,  # open file: PROGRAM when the mode is write or append (`file_operation`)
    26: Operation.READ,  # close file
    27: Operation.PROGRAM,  # delete file
    28: Operation.READ,  # get file information
    29: Operation.READ,  # authenticate file (gets the key for the file functions)
    30: Operation.READ,  # abort file transfer
    31: Operation.PROGRAM,  # activate configuration
}
FILE_GROUP = 70
FILE_MODES_CHANGING = (2, 3)
"""g70v3 operational modes that change a file: write, append."""


def operation_of(code: int, first_group: int = -1, file_mode: int = -1) -> Operation:
    """The category of application function `code`; a write of file objects (group 70) and an
    open file for writing or appending are PROGRAM. Confirm, responses, authentication and
    unknown codes are OTHER."""
    if code == WRITE and first_group == FILE_GROUP:
        return Operation.PROGRAM
    if code == OPEN_FILE and file_mode in FILE_MODES_CHANGING:
        return Operation.PROGRAM
    return _OPERATIONS.get(code, Operation.OTHER)


def link_name(control: int) -> str | None:
    """The name of the link function of `control`, None when the code is not defined."""
    names = LINK_PRIMARY if control & 0x40 else LINK_SECONDARY
    return names.get(control & 0x0F)
