"""The ASDU type identifications: name, size of one information element, operation category.

After IEC 60870-5-101:2003 sec. 7.2.1.1 and 7.3 (the types and their information elements, sizes
from IEC 60870-5-4 / 101 sec. 7.2.6) and IEC 60870-5-104:2006 sec. 8 (the types used over TCP,
C_TS_TA_1 107). Types defined only for 101 (the CP24Time2a variants 2, 4, 6, ..., C_TS_NA_1 104,
C_CD_NA_1 106) are decoded as well: gateways forward them.

The element size excludes the 3-byte information object address. `VARIABLE` marks F_SG_NA_1
(125), whose segment length is in the element; `UNKNOWN` a reserved or private type, whose
objects cannot be walked.

Operation categories (what the ASDU does to the outstation):

- monitor direction data M_* (1-40): READ (the outstation's process data, sent by it);
- M_EI_NA_1 (70, end of initialisation): OTHER, a station announcement;
- commands C_SC, C_DC, C_RC, C_SE, C_BO (45-51, 58-64) and C_RP_NA_1 reset process (105): CONTROL;
- interrogation C_IC_NA_1 (100), counter interrogation C_CI_NA_1 (101), read C_RD_NA_1 (102): READ;
- clock synchronisation C_CS_NA_1 (103): OTHER (sets the outstation's clock, not its process);
- test C_TS_NA_1 / C_TS_TA_1 (104, 107), delay acquisition C_CD_NA_1 (106): DIAGNOSTIC;
- parameters P_ME_NA/NB/NC_1, P_AC_NA_1 (110-113): WRITE;
- file transfer F_* (120-127): PROGRAM. The type alone does not tell a disturbance record read
  from a file loaded into the outstation (101 sec. 7.4.11 allows both directions), and loading a
  file is how configuration reaches a device: the strictest category is the safe one;
- reserved and private types: OTHER.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Operation

VARIABLE = -2
UNKNOWN = -1

# type id: (name, element size, operation)
_TYPES: dict[int, tuple[str, int, Operation]] = {
    1: ("M_SP_NA_1", 1, Operation.READ),
    2: ("M_SP_TA_1", 4, Operation.READ),
    3: ("M_DP_NA_1", 1, Operation.READ),
    4: ("M_DP_TA_1", 4, Operation.READ),
    5: ("M_ST_NA_1", 2, Operation.READ),
    6: ("M_ST_TA_1", 5, Operation.READ),
    7: ("M_BO_NA_1", 5, Operation.READ),
    8: ("M_BO_TA_1", 8, Operation.READ),
    9: ("M_ME_NA_1", 3, Operation.READ),
    10: ("M_ME_TA_1", 6, Operation.READ),
    11: ("M_ME_NB_1", 3, Operation.READ),
    12: ("M_ME_TB_1", 6, Operation.READ),
    13: ("M_ME_NC_1", 5, Operation.READ),
    14: ("M_ME_TC_1", 8, Operation.READ),
    15: ("M_IT_NA_1", 5, Operation.READ),
    16: ("M_IT_TA_1", 8, Operation.READ),
    17: ("M_EP_TA_1", 6, Operation.READ),
    18: ("M_EP_TB_1", 7, Operation.READ),
    19: ("M_EP_TC_1", 7, Operation.READ),
    20: ("M_PS_NA_1", 5, Operation.READ),
    21: ("M_ME_ND_1", 2, Operation.READ),
    30: ("M_SP_TB_1", 8, Operation.READ),
    31: ("M_DP_TB_1", 8, Operation.READ),
    32: ("M_ST_TB_1", 9, Operation.READ),
    33: ("M_BO_TB_1", 12, Operation.READ),
    34: ("M_ME_TD_1", 10, Operation.READ),
    35: ("M_ME_TE_1", 10, Operation.READ),
    36: ("M_ME_TF_1", 12, Operation.READ),
    37: ("M_IT_TB_1", 12, Operation.READ),
    38: ("M_EP_TD_1", 10, Operation.READ),
    39: ("M_EP_TE_1", 11, Operation.READ),
    40: ("M_EP_TF_1", 11, Operation.READ),
    45: ("C_SC_NA_1", 1, Operation.CONTROL),
    46: ("C_DC_NA_1", 1, Operation.CONTROL),
    47: ("C_RC_NA_1", 1, Operation.CONTROL),
    48: ("C_SE_NA_1", 3, Operation.CONTROL),
    49: ("C_SE_NB_1", 3, Operation.CONTROL),
    50: ("C_SE_NC_1", 5, Operation.CONTROL),
    51: ("C_BO_NA_1", 4, Operation.CONTROL),
    58: ("C_SC_TA_1", 8, Operation.CONTROL),
    59: ("C_DC_TA_1", 8, Operation.CONTROL),
    60: ("C_RC_TA_1", 8, Operation.CONTROL),
    61: ("C_SE_TA_1", 10, Operation.CONTROL),
    62: ("C_SE_TB_1", 10, Operation.CONTROL),
    63: ("C_SE_TC_1", 12, Operation.CONTROL),
    64: ("C_BO_TA_1", 11, Operation.CONTROL),
    70: ("M_EI_NA_1", 1, Operation.OTHER),
    100: ("C_IC_NA_1", 1, Operation.READ),
    101: ("C_CI_NA_1", 1, Operation.READ),
    102: ("C_RD_NA_1", 0, Operation.READ),
    103: ("C_CS_NA_1", 7, Operation.OTHER),
    104: ("C_TS_NA_1", 2, Operation.DIAGNOSTIC),
    105: ("C_RP_NA_1", 1, Operation.CONTROL),
    106: ("C_CD_NA_1", 2, Operation.DIAGNOSTIC),
    107: ("C_TS_TA_1", 9, Operation.DIAGNOSTIC),
    110: ("P_ME_NA_1", 3, Operation.WRITE),
    111: ("P_ME_NB_1", 3, Operation.WRITE),
    112: ("P_ME_NC_1", 5, Operation.WRITE),
    113: ("P_AC_NA_1", 1, Operation.WRITE),
    120: ("F_FR_NA_1", 6, Operation.PROGRAM),
    121: ("F_SR_NA_1", 7, Operation.PROGRAM),
    122: ("F_SC_NA_1", 4, Operation.PROGRAM),
    123: ("F_LS_NA_1", 5, Operation.PROGRAM),
    124: ("F_AF_NA_1", 4, Operation.PROGRAM),
    125: ("F_SG_NA_1", VARIABLE, Operation.PROGRAM),
    126: ("F_DR_TA_1", 13, Operation.PROGRAM),
    127: ("F_SC_NB_1", 16, Operation.PROGRAM),
}
PRIVATE_FROM = 128
"""Types 128-135 are reserved for routing, 136-255 for special use (IEC 60870-5-101 7.2.1.1)."""
SEGMENT_HEADER = 4
"""F_SG_NA_1: name of file (2), name of section (1), length of segment (1), then the segment."""


def type_name(type_id: int) -> str:
    """The type's name in lower case (e.g. "m_me_nc_1"); "reserved_<n>", "private_<n>" if none."""
    known = _TYPES.get(type_id)
    if known is not None:
        return known[0].lower()
    return f"private_{type_id}" if type_id >= PRIVATE_FROM else f"reserved_{type_id}"


def element_size(type_id: int) -> int:
    """Bytes of one information element (without its address); `VARIABLE` or `UNKNOWN`."""
    known = _TYPES.get(type_id)
    return UNKNOWN if known is None else known[1]


def operation_of(type_id: int) -> Operation:
    known = _TYPES.get(type_id)
    return Operation.OTHER if known is None else known[2]


def is_reserved(type_id: int) -> bool:
    """Neither a defined type nor in the private range."""
    return type_id not in _TYPES and type_id < PRIVATE_FROM


def _column(value: dict[int, int], none: int, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
    table = np.full(256, none, dtype=dtype)
    for key, item in value.items():
        table[key] = item
    return table


ELEMENT_SIZES = _column({k: v[1] for k, v in _TYPES.items()}, UNKNOWN, np.int32)
"""`element_size` as a 256-entry table (the column extractor's)."""
OPERATIONS = _column({k: int(v[2]) for k, v in _TYPES.items()}, int(Operation.OTHER), np.uint8)
"""`operation_of` as a 256-entry table."""
NAMES = np.array([type_name(code) for code in range(256)], dtype=object)
"""`type_name` as a 256-entry table."""

SELECT_OFFSETS: dict[int, int] = {
    45: 0,
    46: 0,
    47: 0,
    58: 0,
    59: 0,
    60: 0,  # SCO, DCO, RCO: S/E is bit 8 of the element's first byte
    48: 2,
    49: 2,
    61: 2,
    62: 2,  # NVA or SVA (2 bytes), then QOS
    50: 4,
    63: 4,  # short floating point (4 bytes), then QOS
}
"""Where a command's qualifier (SCO, DCO, RCO or QOS) sits in its element: its bit 8 is S/E, 1
select, 0 execute (IEC 60870-5-101 sec. 7.2.6.15-7.2.6.17, 7.2.6.39). C_BO (51, 64) has none."""
SELECT_BYTE = _column(SELECT_OFFSETS, -1, np.int32)
"""`SELECT_OFFSETS` as a 256-entry table (-1: no qualifier)."""

# Causes of transmission (IEC 60870-5-101 sec. 7.2.3): 1-13, 20-41 and 44-47 are defined,
# 48-63 are for special use; 0, 14-19, 42 and 43 are not assigned.
CAUSE_UNKNOWN_FROM, CAUSE_UNKNOWN_TO = 44, 47
"""44 unknown type, 45 unknown cause, 46 unknown common address, 47 unknown object address: the
outstation's negative answers, kept as the summary's result."""
CONFIRMATIONS = frozenset({7, 9, 10})
"""Activation confirmation, deactivation confirmation, activation termination."""
UNASSIGNED_CAUSES = frozenset({0, 14, 15, 16, 17, 18, 19, 42, 43})
UNASSIGNED_CAUSE_TABLE = np.zeros(64, dtype=np.bool_)
UNASSIGNED_CAUSE_TABLE[sorted(UNASSIGNED_CAUSES)] = True


def result_of(cause: int, negative: bool) -> int:
    """The summary's result: the cause for the "unknown ..." answers (44-47); for a
    confirmation (7, 9, 10) 1 if the P/N bit says negative, else 0; -1 otherwise."""
    if CAUSE_UNKNOWN_FROM <= cause <= CAUSE_UNKNOWN_TO:
        return cause
    if cause in CONFIRMATIONS:
        return 1 if negative else 0
    return -1


# U-format functions: the control field's first octet (IEC 60870-5-104 sec. 5.3).
U_FUNCTIONS: dict[int, tuple[str, Operation]] = {
    0x07: ("startdt_act", Operation.OTHER),
    0x0B: ("startdt_con", Operation.OTHER),
    0x13: ("stopdt_act", Operation.OTHER),
    0x23: ("stopdt_con", Operation.OTHER),
    0x43: ("testfr_act", Operation.DIAGNOSTIC),
    0x83: ("testfr_con", Operation.DIAGNOSTIC),
}
"""STARTDT and STOPDT switch the connection's data transfer (not the outstation's process):
OTHER; TESTFR checks the connection: DIAGNOSTIC."""
FORMAT_CODE_BASE = 256
"""S and U frames' function code: 256 plus the control field's first octet (257 for S, 263
STARTDT act, ..., 387 TESTFR con), clear of the ASDU type ids 0-255."""
S_FUNCTION = "s_format"
U_UNKNOWN = "u_format"
