"""Streaming capture writers: classic pcap and pcapng, Ethernet frames, one record at a time.

Both write through a buffer of about a megabyte and keep nothing else, so a capture of tens of
millions of packets takes the memory of one buffer. Nothing in the files depends on the machine
or the time of writing (the pcapng section header names Plantwarden, not the host), so the same
frames and times give byte-identical files. `capture_format` picks the format from the file name.

Formats: pcap as in the tcpdump file format (libpcap, magic 0xa1b2c3d4, microseconds, or
0xa1b23c4d, nanoseconds); pcapng per draft-ietf-opsawg-pcapng (section header, one interface
description with `if_tsresol`, enhanced packet blocks).
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from plantwarden.core.errors import InvalidInput

LINKTYPE_ETHERNET = 1
SNAPLEN = 262144
FLUSH_AT = 1 << 20
PCAP_MAGIC_MICRO = 0xA1B2C3D4
PCAP_MAGIC_NANO = 0xA1B23C4D
SECTION_HEADER = 0x0A0D0D0A
INTERFACE_DESCRIPTION = 0x00000001
ENHANCED_PACKET = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPTION_END = 0
OPTION_COMMENT = 1
SHB_USERAPPL = 4
IF_NAME = 2
IF_TSRESOL = 9
APPLICATION = "Plantwarden traffic generator"


class CaptureWriter(Protocol):
    """What the generator and the tap write frames to."""

    packets: int

    def write(self, time: float, frame: bytes) -> None:
        """Append one frame captured at `time` (seconds since the epoch)."""

    def flush(self) -> None:
        """Hand everything buffered to the file."""

    def close(self) -> None:
        """Flush, and close the file if the writer opened it."""


def _units(time: float, per_second: int) -> int:
    # Round, don't truncate: 1.000001 must not become 1.000000 through the float.
    return round(time * per_second)


class _BufferedWriter:
    """The buffer both formats share: bytes gathered and handed to the file a megabyte at a time."""

    def __init__(self, stream: BinaryIO, *, owns_stream: bool) -> None:
        self.stream = stream
        self.owns_stream = owns_stream
        self.buffer = bytearray()
        self.packets = 0
        self.bytes_written = 0

    def _append(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Hand everything buffered to the file (and the file's buffer to the system)."""
        if self.buffer:
            self.stream.write(self.buffer)
            self.bytes_written += len(self.buffer)
            self.buffer = bytearray()
        self.stream.flush()

    def close(self) -> None:
        """Flush, and close the file if the writer opened it."""
        self.flush()
        if self.owns_stream:
            self.stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class PcapWriter(_BufferedWriter):
    """A classic pcap file of Ethernet frames, little-endian, in micro- or nanoseconds."""

    def __init__(self, stream: BinaryIO, *, nanoseconds: bool = False, owns_stream: bool = False) -> None:
        super().__init__(stream, owns_stream=owns_stream)
        self.per_second = 1_000_000_000 if nanoseconds else 1_000_000
        magic = PCAP_MAGIC_NANO if nanoseconds else PCAP_MAGIC_MICRO
        self._append(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))

    def write(self, time: float, frame: bytes) -> None:
        """Append one frame captured at `time` (seconds since the epoch)."""
        seconds, fraction = divmod(_units(time, self.per_second), self.per_second)
        self._append(struct.pack("<IIII", seconds, fraction, len(frame), len(frame)) + frame)
        self.packets += 1


def _option(code: int, value: bytes) -> bytes:
    padding = -len(value) % 4
    return struct.pack("<HH", code, len(value)) + value + bytes(padding)


def _block(block_type: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


class PcapngWriter(_BufferedWriter):
    """A pcapng file: one section, one Ethernet interface, enhanced packet blocks.

    `comment` puts a comment on the section header (what the capture is, never a host name);
    timestamps are in microseconds, or nanoseconds with `nanoseconds=True` (`if_tsresol` 9).
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        nanoseconds: bool = False,
        owns_stream: bool = False,
        interface: str = "plant-tap",
        comment: str = "",
    ) -> None:
        super().__init__(stream, owns_stream=owns_stream)
        self.per_second = 1_000_000_000 if nanoseconds else 1_000_000
        options = _option(SHB_USERAPPL, APPLICATION.encode())
        if comment:
            options += _option(OPTION_COMMENT, comment.encode())
        section = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + options + _option(OPTION_END, b"")
        self._append(_block(SECTION_HEADER, section))
        resolution = bytes((9 if nanoseconds else 6,))
        interface_options = _option(IF_NAME, interface.encode()) + _option(IF_TSRESOL, resolution)
        description = struct.pack("<HHI", LINKTYPE_ETHERNET, 0, SNAPLEN) + interface_options
        self._append(_block(INTERFACE_DESCRIPTION, description + _option(OPTION_END, b"")))

    def write(self, time: float, frame: bytes) -> None:
        """Append one frame captured at `time` (seconds since the epoch)."""
        stamp = _units(time, self.per_second)
        padding = -len(frame) % 4
        length = 32 + len(frame) + padding
        head = struct.pack(
            "<IIIIIII", ENHANCED_PACKET, length, 0, stamp >> 32, stamp & 0xFFFFFFFF, len(frame), len(frame)
        )
        self._append(head + frame + bytes(padding) + struct.pack("<I", length))
        self.packets += 1


def capture_format(path: Path) -> str:
    """`pcap` or `pcapng`, from the file name; InvalidInput for any other suffix."""
    suffix = path.suffix.lower()
    if suffix in (".pcap", ".cap"):
        return "pcap"
    if suffix in (".pcapng", ".ntar"):
        return "pcapng"
    raise InvalidInput(f"{path.name}: name the capture file .pcap or .pcapng")


def capture_writer(
    stream: BinaryIO, kind: str, *, nanoseconds: bool = False, comment: str = ""
) -> PcapWriter | PcapngWriter:
    """A writer of a new capture of `kind` (pcap or pcapng, `capture_format`) to `stream`, which
    the caller closes (a file of `core.files.atomic_open`: whole or not at all)."""
    if kind == "pcap":
        return PcapWriter(stream, nanoseconds=nanoseconds)
    return PcapngWriter(stream, nanoseconds=nanoseconds, comment=comment)
