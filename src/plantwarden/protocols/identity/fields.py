"""What the four identity decoders share: how addresses read as text, and the identity a frame
claims (the `Identity` every message gives, one row of `IdentityColumns`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class Identity(NamedTuple):
    """Who a frame says a device is; "none" is -1 for numbers, "" for texts, False for flags."""

    mac: int = -1
    """ARP sender hardware address, DHCP chaddr (Ethernet), LLDP MAC chassis id, DCP MAC block."""
    ip: int = -1
    """IPv4 as an integer: ARP sender address (not 0.0.0.0), DHCP yiaddr, else ciaddr, else the
    requested address (50); LLDP IPv4 management address, else an IPv4 chassis id; DCP IP block."""
    name: str = ""
    """DHCP host name (12), LLDP system name, DCP NameOfStation."""
    vendor_text: str = ""
    """DHCP vendor class id (60), LLDP system description, DCP vendor text (type of station)."""
    vendor_id: int = -1
    """DCP device id block: PROFINET vendor id."""
    device_id: int = -1
    """DCP device id block: device id."""
    xid: int = -1
    """DHCP and DCP transaction id."""
    gratuitous: bool = False
    """ARP: sender and target protocol addresses equal (an announcement or a takeover)."""
    probe: bool = False
    """ARP: a request from sender address 0.0.0.0 (RFC 5227 address probe)."""
    sets_ip: bool = False
    """DCP Set request with an IP parameter or full IP suite block."""
    sets_name: bool = False
    """DCP Set request with a NameOfStation block."""
    resets: bool = False
    """DCP Set request with a factory reset block (5/5 or 5/6)."""


def mac_text(value: int) -> str:
    """A 48-bit address as aa:bb:cc:dd:ee:ff."""
    return ":".join(f"{value >> shift & 0xFF:02x}" for shift in range(40, -8, -8))


def ipv4_text(value: int) -> str:
    """A 32-bit address as dotted quad."""
    return ".".join(str(value >> shift & 0xFF) for shift in (24, 16, 8, 0))


def text(data: bytes) -> str:
    """A protocol string: UTF-8 (undecodable bytes replaced), up to the first NUL."""
    return data.split(b"\x00", 1)[0].decode("utf-8", "replace")


def bytes_at(buffer: npt.NDArray[np.uint8], index: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The byte at each index of `buffer`, 0 past its end (the fast paths read fixed offsets of
    every row and mask the rows too short for them; no copy of the buffer is made)."""
    if not len(buffer):
        return np.zeros(len(index), dtype=np.int64)
    inside = index < len(buffer)
    return np.where(inside, buffer[np.minimum(index, len(buffer) - 1)], 0).astype(np.int64)


def big_endian_at(
    buffer: npt.NDArray[np.uint8], index: npt.NDArray[np.int64], size: int
) -> npt.NDArray[np.int64]:
    """The unsigned big-endian integer of `size` bytes (at most 7) at each index of `buffer`."""
    value = np.zeros(len(index), dtype=np.int64)
    for offset in range(size):
        value = value << 8 | bytes_at(buffer, index + offset)
    return value
