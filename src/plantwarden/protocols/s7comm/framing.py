"""The TPKT framer (RFC 1006) with COTP (ISO 8073) data reassembly: one direction's payload in,
whole PDUs and the leftover bytes out.

A payload starts at a TPKT boundary. A TPKT is version 3, a reserved 0 and a 16-bit length that
counts its own 4 bytes. A PDU is one TPKT, except that COTP data TPDUs without end of TSDU
(EOT) join the TPKTs after them, up to the one that ends the TSDU (or up to `MAX_FRAGMENTS`).
The walk stops at:

- the end of the payload;
- a partial PDU (a partial TPKT header or TPKT, or data TPDUs still waiting for their end):
  its bytes are left over for the next segment of the same direction; not a finding;
- a TPKT header that cannot be one (version not 3, reserved not 0, length below 7): the rest of
  the payload is one last PDU, which the decoder reports as `BAD_TPKT_HEADER`.
"""

from __future__ import annotations

from typing import NamedTuple

from plantwarden.protocols.s7comm import constants as c


class Frames(NamedTuple):
    """(offset, size, TPKTs) of each PDU, and the bytes left over."""

    pdus: list[tuple[int, int, int]]
    leftover: int


def tpkt_is_sound(payload: bytes, at: int) -> bool:
    """Whether the TPKT header at `at` (4 bytes present) is version 3, reserved 0, length >= 7."""
    length = payload[at + 2] << 8 | payload[at + 3]
    return payload[at] == c.TPKT_VERSION and payload[at + 1] == 0 and length >= c.MIN_TPKT_LENGTH


def continues(payload: bytes, at: int, length: int) -> bool:
    """Whether the TPKT at `at` holds a COTP data TPDU without end of TSDU."""
    li = payload[at + 4]
    return li >= 2 and 5 + li <= length and payload[at + 5] == c.COTP_DT and not payload[at + 6] & 0x80


def split_pdus(payload: bytes) -> Frames:
    """The whole PDUs of `payload` and how many bytes of a partial last one are left over."""
    pdus: list[tuple[int, int, int]] = []
    start = at = count = 0
    end = len(payload)
    while at < end:
        if end - at < c.TPKT_HEADER:
            return Frames(pdus, end - start)
        if not tpkt_is_sound(payload, at):
            pdus.append((start, end - start, count + 1))
            return Frames(pdus, 0)
        length = payload[at + 2] << 8 | payload[at + 3]
        if end - at < length:
            return Frames(pdus, end - start)
        count += 1
        more = continues(payload, at, length) and count < c.MAX_FRAGMENTS
        at += length
        if not more:
            pdus.append((start, at - start, count))
            start, count = at, 0
    return Frames(pdus, end - start)
