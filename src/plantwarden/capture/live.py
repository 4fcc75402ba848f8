"""Live capture on Linux: an AF_PACKET socket with a TPACKET_V3 ring shared with the kernel.

The kernel fills blocks of the ring (`block_size` bytes each) with packets and hands a block over
when it is full or `block_timeout_ms` after its first packet. Each block handed over is copied out
once and given straight back, then read with numpy into one `PacketBatch` (Python only follows
the chain of packet headers). Frames start at their link header: Ethernet for Ethernet interfaces
and for `lo` (which Linux frames as Ethernet with zero addresses), raw IP for interfaces without a
link header (tun, WireGuard). The kernel takes VLAN tags off the frames it delivers; they are put
back, as libpcap does, so a tagged frame reads as it was on the wire.

Outgoing packets: a packet socket sees what the host sends as well (`sll_pkttype` PACKET_OUTGOING).
On `lo` every packet is sent and received, so it would be seen twice, once outgoing and once
incoming; by default the capture ignores outgoing packets on loopback (PACKET_IGNORE_OUTGOING, or
by `sll_pkttype` where the kernel lacks that option) and keeps them on other interfaces.

Needs root or CAP_NET_RAW.
"""

from __future__ import annotations

import math
import mmap
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import numpy as np
import numpy.typing as npt

from plantwarden.capture.batch import LINKTYPE_ETHERNET, LINKTYPE_RAW, PacketBatch
from plantwarden.capture.errors import InterfaceNotFound, LiveCaptureError, LiveCaptureNotPermitted

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 0xFFFE
LINKTYPES = {ARPHRD_ETHER: LINKTYPE_ETHERNET, ARPHRD_LOOPBACK: LINKTYPE_ETHERNET, ARPHRD_NONE: LINKTYPE_RAW}

# struct tpacket_block_desc (with tpacket_hdr_v1) and struct tpacket3_hdr, byte offsets.
_BLOCK_STATUS, _BLOCK_PACKETS, _BLOCK_FIRST, _BLOCK_LENGTH = 8, 12, 16, 20
_SLL_PKTTYPE = 48 + 10  # the sockaddr_ll follows the 48-byte tpacket3_hdr
_U32 = struct.Struct("=I")


@dataclass(frozen=True, slots=True)
class LiveStats:
    """Counters since the capture opened.

    `packets` were handed out in batches; `received`, `dropped` and `freeze_queue` are the kernel's
    tp_packets, tp_drops and tp_freeze_q_cnt (for TPACKET_V3 the kernel counts dropped packets in
    `received` too).
    """

    packets: int = 0
    received: int = 0
    dropped: int = 0
    freeze_queue: int = 0


def _interface_index(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        known = ", ".join(sorted(n for _, n in socket.if_nameindex()))
        raise InterfaceNotFound(f"no network interface is named {name!r} (there are: {known})") from None


def _packet_socket() -> socket.socket:
    """A packet socket bound to no protocol yet, so that it queues nothing before the ring exists."""
    try:
        return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError:
        program = os.path.realpath(sys.executable)
        message = f"live capture needs root or CAP_NET_RAW (setcap cap_net_raw+ep {program})"
        raise LiveCaptureNotPermitted(message) from None


class LiveCapture:
    """Packets arriving on one network interface, a ring block at a time.

    Use as a context manager; `read(timeout)` returns the next batch or None, `batches(timeout)`
    iterates them, `stats()` gives the counters. `linktype` is the link type of every packet;
    `last_error` the last error the socket reported (errno; e.g. ENETDOWN when the interface went
    down), after which the capture goes on. `outgoing` keeps the packets the host sends (default:
    yes, but not on loopback, where each would be seen twice). `block_size` must be a multiple of
    the page size; a block is handed over when full or `block_timeout_ms` after its first packet.
    """

    def __init__(
        self,
        interface: str,
        *,
        promiscuous: bool = False,
        outgoing: bool | None = None,
        block_size: int = 1 << 20,
        block_count: int = 64,
        block_timeout_ms: int = 50,
    ) -> None:
        self.interface = interface
        self._index = _interface_index(interface)
        self._socket = _packet_socket()
        self._block_size, self._block_count = block_size, block_count
        self._block, self._packets = 0, 0
        self._counters = [0, 0, 0]
        self.last_error = 0
        try:
            self._ring = self._map_ring(block_timeout_ms)
            self._socket.bind((interface, ETH_P_ALL))
            hardware_type = self._socket.getsockname()[3]
            self.linktype = self._linktype(hardware_type)
            want_outgoing = hardware_type != ARPHRD_LOOPBACK if outgoing is None else outgoing
            self._drop_outgoing = not want_outgoing and not self._ignore_outgoing()
            if promiscuous:
                membership = struct.pack("iHH8s", self._index, PACKET_MR_PROMISC, 0, b"")
                self._socket.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, membership)
        except BaseException:
            self.close()
            raise
        self._poll = select.poll()
        self._poll.register(self._socket, select.POLLIN | select.POLLERR)

    def _map_ring(self, block_timeout_ms: int) -> mmap.mmap:
        frame_size = 2048
        frames = self._block_size // frame_size * self._block_count
        request = struct.pack(
            "7I", self._block_size, self._block_count, frame_size, frames, block_timeout_ms, 0, 0
        )
        try:
            self._socket.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            self._socket.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
            size = self._block_size * self._block_count
            return mmap.mmap(self._socket.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as error:
            sizes = f"{self._block_count} blocks of {self._block_size} bytes"
            raise LiveCaptureError(f"cannot set up the capture ring ({sizes}): {error}") from None

    def _linktype(self, hardware_type: int) -> int:
        if hardware_type not in LINKTYPES:
            message = f"interface {self.interface} has hardware type {hardware_type}, which is not supported"
            raise LiveCaptureError(message)
        return LINKTYPES[hardware_type]

    def _ignore_outgoing(self) -> bool:
        """Ask the kernel to leave outgoing packets out (Linux 4.20+); False where it cannot."""
        try:
            self._socket.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            return False
        return True

    def fileno(self) -> int:
        """The socket's descriptor, to wait on it with select or an event loop."""
        return self._socket.fileno()

    def read(self, timeout: float | None = None) -> PacketBatch | None:
        """The packets of the next block the kernel hands over; None if none came within `timeout`
        seconds (None: wait as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            batch = self._next_block()
            if batch is not None:
                if len(batch):
                    return batch
                continue  # a block of outgoing packets only
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self._wait(remaining)

    def _wait(self, seconds: float | None) -> None:
        """Wait for the kernel to hand over a block. An error on the socket (the interface went
        down) is read, which clears it: the capture goes on when the interface comes back."""
        milliseconds = None if seconds is None else max(1, math.ceil(seconds * 1000))
        for _, events in self._poll.poll(milliseconds):
            if events & select.POLLERR:
                self.last_error = self._socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)

    def batches(self, timeout: float | None = None) -> Iterator[PacketBatch]:
        """Batches as they come, until nothing has come for `timeout` seconds (None: forever)."""
        while (batch := self.read(timeout)) is not None:
            yield batch

    def stats(self) -> LiveStats:
        """The counters so far (the kernel's are read and added up: reading them resets them)."""
        raw = self._socket.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        for position, value in enumerate(struct.unpack("3I", raw)):
            self._counters[position] += value
        received, dropped, freeze = self._counters
        return LiveStats(self._packets, received, dropped, freeze)

    def close(self) -> None:
        """Give the ring back and close the socket (leaving promiscuous mode)."""
        ring = getattr(self, "_ring", None)
        if ring is not None:
            ring.close()
        self._socket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _ready(self) -> bool:
        start = self._block * self._block_size
        return bool(_U32.unpack_from(self._ring, start + _BLOCK_STATUS)[0] & TP_STATUS_USER)

    def _next_block(self) -> PacketBatch | None:
        """Copy out the current block if the kernel has handed it over, give it back, read it."""
        if not self._ready():
            return None
        start = self._block * self._block_size
        (length,) = _U32.unpack_from(self._ring, start + _BLOCK_LENGTH)
        block = self._ring[start : start + min(length, self._block_size)]
        _U32.pack_into(self._ring, start + _BLOCK_STATUS, TP_STATUS_KERNEL)
        self._block = (self._block + 1) % self._block_count
        batch = self._read_block(block)
        self._packets += len(batch)
        return batch

    def _read_block(self, block: bytes) -> PacketBatch:
        count, first = struct.unpack_from("=II", block, _BLOCK_PACKETS)
        headers = np.array(_packet_positions(block, first, count), np.int64)
        buffer = np.frombuffer(block, np.uint8)
        words = np.frombuffer(block, np.uint32, count=len(block) // 4)
        if self._drop_outgoing:
            headers = headers[buffer[headers + _SLL_PKTTYPE] != PACKET_OUTGOING]
        index = headers >> 2
        status = words[index + 5]
        offsets = headers + np.frombuffer(block, np.uint16, count=len(block) // 2)[(headers + 24) >> 1]
        lengths, wire = words[index + 3].astype(np.int32), words[index + 4].astype(np.int32)
        ts_ns = words[index + 1].astype(np.int64) * 1_000_000_000 + words[index + 2]
        tagged = ((status & TP_STATUS_VLAN_VALID) != 0) & (lengths >= 12)
        if self.linktype == LINKTYPE_ETHERNET and tagged.any():
            buffer, offsets = _put_tags_back(block, headers, offsets, tagged)
            lengths, wire = lengths + 4 * tagged.astype(np.int32), wire + 4 * tagged.astype(np.int32)
        return PacketBatch(
            buffer=buffer,
            offsets=offsets,
            lengths=lengths,
            wire_lengths=wire,
            ts_ns=ts_ns,
            linktypes=np.full(len(headers), self.linktype, np.uint16),
            interfaces=np.zeros(len(headers), np.uint16),
            first_number=self._packets + 1,
        )


def _packet_positions(block: bytes, first: int, count: int) -> list[int]:
    """Where each tpacket3_hdr of a block starts, following tp_next_offset."""
    positions: list[int] = []
    append, next_offset = positions.append, _U32.unpack_from
    position = first
    for _ in range(count):
        append(position)
        position += next_offset(block, position)[0]
    return positions


def _put_tags_back(
    block: bytes,
    headers: npt.NDArray[np.int64],
    offsets: npt.NDArray[np.int64],
    tagged: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The block with the VLAN tags the kernel took off put back after the frames' addresses (as
    libpcap does), and where the packets start then."""
    which = headers[tagged]
    status = np.frombuffer(block, np.uint32, count=len(block) // 4)[(which >> 2) + 5]
    tci = np.frombuffer(block, np.uint32, count=len(block) // 4)[(which >> 2) + 8]
    tpid = np.frombuffer(block, np.uint16, count=len(block) // 2)[(which + 36) >> 1]
    tpid = np.where((status & TP_STATUS_VLAN_TPID_VALID != 0) & (tpid != 0), tpid, ETH_P_8021Q)
    tags = np.empty((len(which), 4), np.uint8)
    tags[:, 0], tags[:, 1], tags[:, 2], tags[:, 3] = tpid >> 8, tpid & 0xFF, tci >> 8 & 0xFF, tci & 0xFF
    buffer = np.insert(np.frombuffer(block, np.uint8), np.repeat(offsets[tagged] + 12, 4), tags.ravel())
    before: npt.NDArray[np.int64] = np.cumsum(tagged) - tagged  # tags put back in front of each packet
    return buffer, offsets + 4 * before
