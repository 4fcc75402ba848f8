"""Payloads of the plant's everyday non-industrial traffic: DNS, NTP, TLS records and HTTP.

Each is well-formed for its protocol (RFC 1035 DNS, RFC 5905 NTP, TLS 1.2 application data
records, HTTP/1.1), so that a dissector reads it without complaint.
"""

from __future__ import annotations

import random
import struct

NTP_EPOCH_OFFSET = 2_208_988_800
"""Seconds from 1900-01-01 (NTP's era 0) to 1970-01-01."""

DNS_NAMES = (
    "erp.riverside.example",
    "mail.riverside.example",
    "historian-1.riverside.example",
    "update.vendor.example",
    "time.riverside.example",
    "intranet.riverside.example",
)


def _dns_name(name: str) -> bytes:
    return b"".join(bytes((len(part),)) + part.encode() for part in name.split(".")) + b"\x00"


def dns_query(identifier: int, name: str) -> bytes:
    """A standard query for the A record of `name`, recursion desired."""
    return struct.pack(">HHHHHH", identifier, 0x0100, 1, 0, 0, 0) + _dns_name(name) + struct.pack(">HH", 1, 1)


def dns_response(identifier: int, name: str, address: bytes, ttl: int = 300) -> bytes:
    """The answer to `dns_query`: one A record, by a pointer to the question's name."""
    header = struct.pack(">HHHHHH", identifier, 0x8180, 1, 1, 0, 0)
    question = _dns_name(name) + struct.pack(">HH", 1, 1)
    answer = struct.pack(">HHHIH", 0xC00C, 1, 1, ttl, 4) + address
    return header + question + answer


def _ntp_time(time: float) -> bytes:
    seconds = int(time) + NTP_EPOCH_OFFSET
    fraction = int((time - int(time)) * (1 << 32)) & 0xFFFFFFFF
    return struct.pack(">II", seconds & 0xFFFFFFFF, fraction)


def ntp_request(time: float) -> bytes:
    """An NTPv4 client request (mode 3) sent at `time`."""
    return struct.pack(">BBbb", 0x23, 0, 6, -20) + bytes(12) + bytes(16) + bytes(8) + _ntp_time(time)


def ntp_response(request_time: float, receive_time: float, send_time: float) -> bytes:
    """An NTPv4 server answer (mode 4, stratum 2) to a request sent at `request_time`."""
    head = struct.pack(">BBbbII", 0x24, 2, 6, -23, 0x00000200, 0x00000400) + bytes((10, 10, 0, 1))
    reference = _ntp_time(receive_time - 30.0)
    return head + reference + _ntp_time(request_time) + _ntp_time(receive_time) + _ntp_time(send_time)


def tls_records(rng: random.Random, lengths: tuple[int, ...]) -> bytes:
    """TLS 1.2 application data records of the given lengths (encrypted data is random bytes)."""
    return b"".join(struct.pack(">BHH", 0x17, 0x0303, length) + rng.randbytes(length) for length in lengths)


def http_request(
    method: str, path: str, host: str, headers: tuple[tuple[str, str], ...] = (), body: bytes = b""
) -> bytes:
    """An HTTP/1.1 request with a keep-alive connection."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    ]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def http_response(status: int, reason: str, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """An HTTP/1.1 response with an HTML body."""
    lines = [f"HTTP/1.1 {status} {reason}", "server: uvicorn", "content-type: text/html; charset=utf-8"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
