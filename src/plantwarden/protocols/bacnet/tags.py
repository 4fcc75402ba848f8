"""BACnet's tagged encoding (ANSI/ASHRAE 135, clause 20.2): the tags of service parameters.

A tag's initial octet holds its number (bits 7-4; 15: the number is in the next octet), its class
(bit 3: context-specific) and length/value/type (bits 2-0: a length 0-4; 5: the length is in the
next octet, or in the 2 (254) or 4 (255) octets after it; for context tags 6 opens and 7 closes a
constructed value; for the application boolean the value itself).

`Reader` walks a service's parameters tag by tag; a broken encoding raises `Malformed` with the
finding to report (`BAD_TAG`, `MISSING_PARAMETER`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from plantwarden.protocols.bacnet.findings import BacnetFinding

NULL, BOOLEAN, UNSIGNED, SIGNED, REAL, DOUBLE, OCTETS, CHARACTERS, BITS = range(9)
ENUMERATED, DATE, TIME, OBJECT_ID = 9, 10, 11, 12
EXTENDED_NUMBER, EXTENDED_LENGTH, OPENING, CLOSING = 15, 5, 6, 7
INSTANCE_BITS = 22
INSTANCE_MASK = (1 << INSTANCE_BITS) - 1
CHARACTER_SETS = {0: "utf-8", 3: "utf-32-be", 4: "utf-16-be", 5: "latin-1"}
"""Python codecs of the character sets of clause 20.2.9 (0 UTF-8, 3 UCS-4, 4 UCS-2, 5 ISO 8859-1)."""
MAX_INTEGER = 8
"""Octets of an application unsigned, signed or enumerated value (Unsigned64 and beyond: broken)."""
MAX_DEPTH = 32
"""Nesting of constructed values deeper than this is taken as broken (a guard for fuzzed input)."""


class Malformed(Exception):
    """The parameters break clause 20.2 or the service's definition: `finding` says how."""

    def __init__(self, finding: BacnetFinding) -> None:
        super().__init__(finding.name)
        self.finding = finding


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag: its number, class and kind, and where its contents lie."""

    number: int
    context: bool
    lvt: int
    """The initial octet's low 3 bits (the boolean application tag's value)."""
    start: int
    """The first content octet."""
    end: int
    """After the last content octet: where the next tag starts."""

    @property
    def opening(self) -> bool:
        return self.context and self.lvt == OPENING and self.start == self.end

    @property
    def closing(self) -> bool:
        return self.context and self.lvt == CLOSING and self.start == self.end


def read_tag(data: bytes, at: int, end: int) -> Tag:
    """The tag at `at` (before `end`); `Malformed(BAD_TAG)` if it runs past `end`."""
    if at >= end:
        raise Malformed(BacnetFinding.BAD_TAG)
    octet = data[at]
    number, context, lvt = octet >> 4, bool(octet & 0x08), octet & 0x07
    at += 1
    if number == EXTENDED_NUMBER:
        if at >= end:
            raise Malformed(BacnetFinding.BAD_TAG)
        number = data[at]
        at += 1
    if context and lvt in (OPENING, CLOSING):
        return Tag(number, context, lvt, at, at)
    if not context and lvt in (OPENING, CLOSING):
        raise Malformed(BacnetFinding.BAD_TAG)
    if not context and number == BOOLEAN:
        return Tag(number, context, lvt, at, at)
    length = lvt
    if lvt == EXTENDED_LENGTH:
        if at >= end:
            raise Malformed(BacnetFinding.BAD_TAG)
        length = data[at]
        at += 1
        if length in (254, 255):
            size = 2 if length == 254 else 4
            if at + size > end:
                raise Malformed(BacnetFinding.BAD_TAG)
            length = int.from_bytes(data[at : at + size], "big")
            at += size
    if at + length > end:
        raise Malformed(BacnetFinding.BAD_TAG)
    return Tag(number, context, lvt, at, at + length)


def unsigned(data: bytes, tag: Tag) -> int:
    """An unsigned integer or enumerated value (1-4 octets, clause 20.2.4 and 20.2.11)."""
    if not 1 <= tag.end - tag.start <= 4:
        raise Malformed(BacnetFinding.BAD_TAG)
    return int.from_bytes(data[tag.start : tag.end], "big")


def object_id(data: bytes, tag: Tag) -> tuple[int, int]:
    """An object identifier (4 octets: 10-bit type, 22-bit instance, clause 20.2.14)."""
    if tag.end - tag.start != 4:
        raise Malformed(BacnetFinding.BAD_TAG)
    value = int.from_bytes(data[tag.start : tag.end], "big")
    return value >> INSTANCE_BITS, value & INSTANCE_MASK


Value = None | bool | int | float | str | bytes | tuple[int, int]


def application_value(data: bytes, tag: Tag) -> Value:
    """An application-tagged primitive's value: None, bool, int, float, str (character strings
    as text by their character set: UTF-8, UCS-4, UCS-2, ISO 8859-1; the others read as
    ISO 8859-1), bytes (octet and bit strings, dates,
    times, reserved tags as their contents), or an object identifier (type, instance)."""
    content = data[tag.start : tag.end]
    size = len(content)
    match tag.number:
        case 0:
            if size:
                raise Malformed(BacnetFinding.BAD_TAG)
            return None
        case 1:
            if tag.lvt > 1:
                raise Malformed(BacnetFinding.BAD_TAG)
            return bool(tag.lvt)
        case 2 | 3 | 9:
            if not 1 <= size <= MAX_INTEGER:
                raise Malformed(BacnetFinding.BAD_TAG)
            return int.from_bytes(content, "big", signed=tag.number == SIGNED)
        case 4 | 5:
            if size != (4 if tag.number == REAL else 8):
                raise Malformed(BacnetFinding.BAD_TAG)
            return float(struct.unpack(">f" if size == 4 else ">d", content)[0])
        case 7:
            if not size:
                raise Malformed(BacnetFinding.BAD_TAG)
            return content[1:].decode(CHARACTER_SETS.get(content[0], "latin-1"), errors="replace")
        case 10 | 11:
            if size != 4:
                raise Malformed(BacnetFinding.BAD_TAG)
            return content
        case 12:
            return object_id(data, tag)
        case _:
            return content


class Reader:
    """Walks the tags of `data[at:end]` in order."""

    def __init__(self, data: bytes, at: int, end: int) -> None:
        self.data, self.at, self.end = data, at, end

    def done(self) -> bool:
        return self.at >= self.end

    def peek(self) -> Tag | None:
        """The next tag, not consumed (None at the end)."""
        return None if self.done() else read_tag(self.data, self.at, self.end)

    def take(self) -> Tag:
        tag = read_tag(self.data, self.at, self.end)
        self.at = tag.end
        return tag

    def is_context(self, number: int) -> bool:
        """Whether the next tag is the primitive context tag `number`."""
        tag = self.peek()
        return (
            tag is not None and tag.context and tag.number == number and not tag.opening and not tag.closing
        )

    def is_opening(self, number: int) -> bool:
        tag = self.peek()
        return tag is not None and tag.opening and tag.number == number

    def context(self, number: int) -> Tag:
        """The primitive context tag `number` (else `MISSING_PARAMETER`)."""
        if not self.is_context(number):
            raise Malformed(BacnetFinding.MISSING_PARAMETER)
        return self.take()

    def context_unsigned(self, number: int) -> int:
        return unsigned(self.data, self.context(number))

    def optional_unsigned(self, number: int) -> int:
        """The optional context tag `number`'s unsigned value, -1 if absent."""
        return self.context_unsigned(number) if self.is_context(number) else -1

    def context_object(self, number: int) -> tuple[int, int]:
        return object_id(self.data, self.context(number))

    def application(self, number: int) -> Tag:
        """The application tag `number` (else `MISSING_PARAMETER`)."""
        tag = self.peek()
        if tag is None or tag.context or tag.number != number:
            raise Malformed(BacnetFinding.MISSING_PARAMETER)
        return self.take()

    def opening(self, number: int) -> None:
        if not self.is_opening(number):
            raise Malformed(BacnetFinding.MISSING_PARAMETER)
        self.take()

    def through_closing(self, number: int) -> Tag | None:
        """After an opening tag `number`: every tag up to its closing tag (consumed), nested
        constructed values balanced; the first application tag met at the outer level, if any."""
        depth, first = [number], None
        while True:
            tag = self.take()
            if tag.opening:
                if len(depth) >= MAX_DEPTH:
                    raise Malformed(BacnetFinding.BAD_TAG)
                depth.append(tag.number)
            elif tag.closing:
                if tag.number != depth.pop():
                    raise Malformed(BacnetFinding.BAD_TAG)
                if not depth:
                    return first
            elif not tag.context:
                application_value(self.data, tag)
                if first is None and len(depth) == 1:
                    first = tag

    def rest(self) -> None:
        """Every remaining tag, balanced (a structural check of parameters not interpreted)."""
        while not self.done():
            tag = self.take()
            if tag.opening:
                self.through_closing(tag.number)
            elif tag.closing:
                raise Malformed(BacnetFinding.BAD_TAG)
            elif not tag.context:
                application_value(self.data, tag)
