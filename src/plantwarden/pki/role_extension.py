"""The Modbus/TCP Security role extension (OID 1.3.6.1.4.1.50316.802.1): exactly one role, as the
DER encoding of an ASN.1 UTF8String. Encoded and decoded here by hand (it is one tag, one length
and the bytes), so that a malformed or multi-valued extension is refused with a clear reason."""

from __future__ import annotations

from cryptography import x509

from plantwarden.pki.errors import InvalidRequest

ROLE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.50316.802.1")
UTF8_STRING = 0x0C
SEQUENCE = 0x30
SET = 0x31
MAX_ROLE_BYTES = 255


def encode_role(role: str) -> bytes:
    """DER of UTF8String(role)."""
    check_role(role)
    data = role.encode("utf-8")
    return bytes([UTF8_STRING]) + _length(len(data)) + data


def decode_role(der: bytes) -> str:
    """The role in the DER of the extension's value; `InvalidRequest` when it is not exactly one
    UTF8String (a SEQUENCE or SET of roles, trailing bytes, a bad length or bad UTF-8)."""
    if not der:
        raise InvalidRequest("the role extension is empty")
    if der[0] in (SEQUENCE, SET):
        raise InvalidRequest("the role extension holds a list of values; exactly one role is allowed")
    if der[0] != UTF8_STRING:
        raise InvalidRequest(f"the role extension is not a UTF8String (tag 0x{der[0]:02x})")
    length, offset = _read_length(der, 1)
    if offset + length < len(der):
        raise InvalidRequest("the role extension holds more than one value; exactly one role is allowed")
    if offset + length > len(der):
        raise InvalidRequest("the role extension is truncated")
    try:
        role = der[offset : offset + length].decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequest(f"the role extension is not valid UTF-8: {error}") from error
    check_role(role)
    return role


def check_role(role: str) -> None:
    """A role is a short printable name (as the plant model's roles are)."""
    if not role or not role.strip() or role != role.strip():
        raise InvalidRequest("a role must be a non-empty name without surrounding spaces")
    if len(role.encode("utf-8")) > MAX_ROLE_BYTES or not role.isprintable():
        raise InvalidRequest(f"role {role[:40]!r} is too long or holds control characters")


def _length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _read_length(der: bytes, offset: int) -> tuple[int, int]:
    """(length, offset of the content): DER lengths only (short form, or minimal long form)."""
    if offset >= len(der):
        raise InvalidRequest("the role extension is truncated (no length)")
    first = der[offset]
    if first < 0x80:
        return first, offset + 1
    count = first & 0x7F
    if count == 0 or count > 2 or offset + 1 + count > len(der):
        raise InvalidRequest("the role extension has a malformed length")
    length = int.from_bytes(der[offset + 1 : offset + 1 + count], "big")
    if length < 0x80 or der[offset + 1] == 0:
        raise InvalidRequest("the role extension's length is not in DER (minimal) form")
    return length, offset + 1 + count
