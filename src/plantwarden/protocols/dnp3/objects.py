"""Object headers (IEEE 1815-2012, 4.2.2.7) and the walk over an application fragment's objects.

An object header is group, variation, qualifier (prefix code bits 6-4, range specifier code
bits 3-0) and a range: start and stop indexes (codes 0-5), nothing (6: all objects) or a count
(7-9, and 11 for free-format objects). Requests that only name objects (read, freezes, enable
and disable unsolicited, assign class) carry no object data, only the index prefixes; other
messages carry each object's data after its prefix, of the size its group and variation define
(`SIZES`), or of the size its prefix gives (prefix codes 4-6). An object of unknown size ends
the walk with `ParseStatus.PARTIAL`: what comes after it cannot be found.
"""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.protocols.common import ParseStatus
from plantwarden.protocols.dnp3 import functions as fc
from plantwarden.protocols.dnp3.findings import Dnp3Finding

_BITS = -1
"""Marks a packed object: its size is in bits, not bytes."""

_COUNTER_EVENT = {1: 5, 2: 3, 3: 5, 4: 3, 5: 11, 6: 9, 7: 11, 8: 9}
_ANALOG_EVENT = {1: 5, 2: 3, 3: 11, 4: 9, 5: 5, 6: 9, 7: 11, 8: 15}

SIZES: dict[int, dict[int, int]] = {
    1: {1: _BITS, 2: 1},  # binary input: packed, with flags
    2: {1: 1, 2: 7, 3: 3},  # binary input event: without time, absolute time, relative time
    3: {1: _BITS * 2, 2: 1},  # double-bit binary input: packed (2 bits), with flags
    4: {1: 1, 2: 7, 3: 3},  # double-bit binary input event
    10: {1: _BITS, 2: 1},  # binary output: packed, output status with flags
    11: {1: 1, 2: 7},  # binary output event
    12: {1: 11, 2: 11, 3: _BITS},  # CROB, pattern control block, pattern mask
    13: {1: 1, 2: 7},  # binary output command event
    20: {1: 5, 2: 3, 3: 5, 4: 3, 5: 4, 6: 2, 7: 4, 8: 2},  # counter
    21: {1: 5, 2: 3, 3: 5, 4: 3, 5: 11, 6: 9, 7: 11, 8: 9, 9: 4, 10: 2, 11: 4, 12: 2},  # frozen counter
    22: _COUNTER_EVENT,  # counter event
    23: _COUNTER_EVENT,  # frozen counter event
    30: {1: 5, 2: 3, 3: 4, 4: 2, 5: 5, 6: 9},  # analog input
    31: {1: 5, 2: 3, 3: 11, 4: 9, 5: 4, 6: 2, 7: 5, 8: 9},  # frozen analog input
    32: _ANALOG_EVENT,  # analog input event
    33: _ANALOG_EVENT,  # frozen analog input event
    34: {1: 2, 2: 4, 3: 4},  # analog input deadband
    40: {1: 5, 2: 3, 3: 5, 4: 9},  # analog output status
    41: {1: 5, 2: 3, 3: 5, 4: 9},  # analog output block
    42: _ANALOG_EVENT,  # analog output event
    43: _ANALOG_EVENT,  # analog output command event
    50: {1: 6, 2: 10, 3: 6, 4: 11},  # time and date; with interval; last recorded; indexed
    51: {1: 6, 2: 6},  # common time of occurrence: synchronised, unsynchronised
    52: {1: 2, 2: 2},  # time delay: coarse, fine
    60: {1: 0, 2: 0, 3: 0, 4: 0},  # class 0, 1, 2, 3 data: no object data
    80: {1: _BITS},  # internal indications
    121: {1: 7},  # security statistic
    120: {3: 6, 4: 2},  # authentication: aggressive mode request, session key status request
    122: {1: 7, 2: 13},  # security statistic event
}
"""Object sizes in bytes by group and variation (`_BITS` times n: packed, n bits each). Groups
110-113 (octet string, its event, virtual terminal output block and event) are as long as their
variation; group 0 (device attributes) gives each attribute's length in its second byte; the
file (70) and authentication (120) objects come with a size prefix. Any other object's size is
unknown."""
OCTET_STRING_GROUPS = (110, 111, 112, 113)
DEVICE_ATTRIBUTES = 0

RANGE_SIZES = {0: 1, 1: 2, 2: 4, 3: 1, 4: 2, 5: 4, 6: 0, 7: 1, 8: 2, 9: 4, 11: 1}
"""Range field bytes by range specifier code; codes 0-5 hold a start and a stop of this size each."""
START_STOP = range(6)
ALL_OBJECTS = 6
PREFIX_SIZES = {0: 0, 1: 1, 2: 2, 3: 4, 4: 1, 5: 2, 6: 4}
"""Prefix bytes by prefix code: none, an index (1-3) or an object size (4-6)."""
SIZE_PREFIXES = (4, 5, 6)

FILE_COMMAND = (70, 3)
FILE_MODE = 20
"""Offset of the operational mode in a g70v3 object: after the file name offset and size (2, 2),
creation time (6), permissions (2), authentication key (4) and file size (4)."""

NO_DATA_FUNCTIONS = frozenset({1, 7, 8, 9, 10, 20, 21, 22})
"""Request functions whose objects carry no data (read, freezes, (dis)enable unsolicited, assign
class); freeze at time (11, 12) carries only its time-and-date object (group 50)."""


@dataclass(frozen=True, slots=True)
class ObjectHeader:
    """One object header: group, variation, qualifier and its range, as read."""

    group: int
    variation: int
    qualifier: int
    start: int = -1
    """Start index (range codes 0-5), -1 otherwise."""
    stop: int = -1
    count: int = 0
    """Objects the header covers: stop - start + 1, the count, or 0 for all objects (code 6)."""
    first_index: int = -1
    """The first object's index prefix (prefix codes 1-3), -1 when there is none or it is not
    there."""

    @property
    def prefix_code(self) -> int:
        return (self.qualifier >> 4) & 0x07

    @property
    def range_code(self) -> int:
        return self.qualifier & 0x0F

    def text(self) -> str:
        """The header as a target: "g30v2 0-9", "g12v1 count 1", "g60v2 all"."""
        range_code = self.qualifier & 0x0F
        if range_code < ALL_OBJECTS:
            return f"g{self.group}v{self.variation} {self.start}-{self.stop}"
        if range_code == ALL_OBJECTS:
            return f"g{self.group}v{self.variation} all"
        return f"g{self.group}v{self.variation} count {self.count}"

    @property
    def address(self) -> int:
        """The first object's index: the start index, else the first index prefix, else -1."""
        return self.start if self.qualifier & 0x0F < ALL_OBJECTS else self.first_index


@dataclass(frozen=True, slots=True)
class Objects:
    """What the walk over a fragment's objects found."""

    headers: tuple[ObjectHeader, ...]
    status: ParseStatus
    finding: Dnp3Finding
    file_mode: int = -1
    """The operational mode of a first object g70v3 (file command), -1 when there is none."""


def _object_size(group: int, variation: int) -> int | None:
    """Bytes of one object (negative: -bits of a packed one), None when unknown here."""
    if group in OCTET_STRING_GROUPS:
        return variation if variation else None
    return SIZES.get(group, {}).get(variation)


_SIZE_BY_CODE = {
    **{group << 8 | variation: size for group, sizes in SIZES.items() for variation, size in sizes.items()},
    **{group << 8 | variation: variation for group in OCTET_STRING_GROUPS for variation in range(1, 256)},
}
"""`_object_size` by group << 8 | variation, for the objects whose size is known."""
MALFORMED = ParseStatus.MALFORMED
UNKNOWN_SIZE = -1
"""`_objects_end`: the objects' size is unknown."""


def walk(function: int, body: bytes) -> Objects:
    """The object headers of an application fragment's `body` (what follows the function code,
    and IIN in a response) for application `function`."""
    headers: list[ObjectHeader] = []
    at, end = 0, len(body)
    file_mode = -1
    no_data = function in NO_DATA_FUNCTIONS
    freeze_at_time = function in fc.FREEZE_AT_TIME
    while at < end:
        if at + 3 > end:
            return Objects(tuple(headers), MALFORMED, Dnp3Finding.OBJECT_TRUNCATED, file_mode)
        group, variation, qualifier = body[at], body[at + 1], body[at + 2]
        at += 3
        prefix, range_code = (qualifier >> 4) & 0x07, qualifier & 0x0F
        width = RANGE_SIZES.get(range_code)
        if qualifier & 0x80 or prefix == 7 or width is None:
            return Objects(tuple(headers), MALFORMED, Dnp3Finding.BAD_QUALIFIER, file_mode)
        start = stop_index = -1
        if range_code < ALL_OBJECTS:
            if at + 2 * width > end:
                return Objects(tuple(headers), MALFORMED, Dnp3Finding.OBJECT_TRUNCATED, file_mode)
            if width == 1:
                start, stop_index = body[at], body[at + 1]
            else:
                start = int.from_bytes(body[at : at + width], "little")
                stop_index = int.from_bytes(body[at + width : at + 2 * width], "little")
            if stop_index < start:
                return Objects(tuple(headers), MALFORMED, Dnp3Finding.BAD_RANGE, file_mode)
            count = stop_index - start + 1
            at += 2 * width
        elif range_code == ALL_OBJECTS:
            count = 0
        else:
            if at + width > end:
                return Objects(tuple(headers), MALFORMED, Dnp3Finding.OBJECT_TRUNCATED, file_mode)
            count = body[at] if width == 1 else int.from_bytes(body[at : at + width], "little")
            at += width
        prefix_size = PREFIX_SIZES[prefix]
        first_index = -1
        if 1 <= prefix <= 3 and count and at + prefix_size <= end:
            first_index = int.from_bytes(body[at : at + prefix_size], "little")
        headers.append(ObjectHeader(group, variation, qualifier, start, stop_index, count, first_index))
        if len(headers) == 1 and (group, variation) == FILE_COMMAND and prefix in SIZE_PREFIXES and count:
            file_mode = _file_mode(body, at, prefix_size)
        with_data = not no_data and not (freeze_at_time and group != 50)
        if prefix in SIZE_PREFIXES or (with_data and group == DEVICE_ATTRIBUTES and variation):
            at = _objects_end(body, at, group, variation, prefix, count, with_data)
        elif not with_data:
            at += count * prefix_size
        else:  # `_objects_end` for objects of a size from the tables: most of them, inline
            size = _SIZE_BY_CODE.get(group << 8 | variation)
            if size is None or (size < 0 and prefix):
                at = UNKNOWN_SIZE
            else:
                at += (count * -size + 7) // 8 if size < 0 else count * (prefix_size + size)
        if at == UNKNOWN_SIZE:
            return Objects(tuple(headers), ParseStatus.PARTIAL, Dnp3Finding.OK, file_mode)
        if at > end:
            return Objects(tuple(headers), MALFORMED, Dnp3Finding.OBJECT_TRUNCATED, file_mode)
    return Objects(tuple(headers), ParseStatus.OK, Dnp3Finding.OK, file_mode)


REQUEST_CACHE_SIZE = 4096
"""Requests `walk_fragment` remembers before it forgets them all."""
_requests: dict[tuple[int, bytes], Objects] = {}


def walk_fragment(function: int, body: bytes) -> Objects:
    """`walk`, remembering what it found in requests by their bytes: a plant's masters poll with
    the same requests over and over. Responses carry changing data, so each is walked."""
    if function in fc.RESPONSES:
        return walk(function, body)
    key = (function, bytes(body))
    found = _requests.get(key)
    if found is None:
        if len(_requests) >= REQUEST_CACHE_SIZE:
            _requests.clear()
        found = _requests[key] = walk(function, body)
    return found


def _objects_end(
    body: bytes, at: int, group: int, variation: int, prefix: int, count: int, with_data: bool
) -> int:
    """Where the `count` objects (prefixes and data) of a header end when they start at `at`:
    past the end of `body` when they do not fit, `UNKNOWN_SIZE` when their size is unknown."""
    prefix_size, end = PREFIX_SIZES[prefix], len(body)
    if prefix in SIZE_PREFIXES:  # free-format objects: each after its size, in any message
        for _ in range(count):
            if at + prefix_size > end:
                return end + 1
            at += prefix_size + int.from_bytes(body[at : at + prefix_size], "little")
            if at > end:
                return at
        return at
    if not with_data:
        return at + count * prefix_size
    if group == DEVICE_ATTRIBUTES and variation:  # data type code, length, value
        for _ in range(count):
            at += prefix_size + 2
            if at > end:
                return at
            at += body[at - 1]
        return at
    size = _object_size(group, variation)
    if size is None or (size < 0 and prefix):
        return UNKNOWN_SIZE
    if size < 0:
        return at + (count * -size + 7) // 8
    return at + count * (prefix_size + size)


def _file_mode(body: bytes, at: int, prefix_size: int) -> int:
    """The operational mode of the g70v3 file command object whose size prefix is at `at`, -1
    when the object is too short or cut off."""
    size = int.from_bytes(body[at : at + prefix_size], "little")
    data = body[at + prefix_size : at + prefix_size + size]
    return int.from_bytes(data[FILE_MODE : FILE_MODE + 2], "little") if len(data) >= FILE_MODE + 2 else -1
