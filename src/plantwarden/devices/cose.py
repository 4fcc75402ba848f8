"""The COSE pieces of the telemetry envelope (RFC 9052, RFC 9053): labels, structures, key derivation.

Only what the envelope needs, written for speed on the platform's hot path: the to-be-signed and
to-be-encrypted structures are concatenated from precomputed CBOR heads instead of encoded from
lists, and ES256 signatures are converted between COSE's fixed-size r||s and the DER form that
`cryptography` takes without going through ASN.1 objects. docs/telemetry-envelope.md is the
specification; this module follows it.
"""

from __future__ import annotations

from typing import Final

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# COSE header labels (RFC 9052 sec. 3.1, RFC 9053 sec. 5.1) and COSE_Key labels (RFC 9053 sec. 7.1).
ALG: Final = 1
KID: Final = 4
PARTIAL_IV: Final = 6
EPHEMERAL_KEY: Final = -1
PARTY_U_IDENTITY: Final = -21
PARTY_U_NONCE: Final = -22
KEY_TYPE: Final = 1
EC2: Final = 2
EC2_CURVE: Final = -1
EC2_X: Final = -2
EC2_Y: Final = -3
P256: Final = 1

# Algorithms.
ES256: Final = -7
A128GCM: Final = 1
IV_GENERATION: Final = "IV-GENERATION"  # AlgorithmID of the Base IV derivation (RFC 8152 sec. 12.1.2)
KEY_BYTES: Final = 16
IV_BYTES: Final = 12
PARTIAL_IV_BYTES: Final = 8  # the counter, big-endian; left-padded with zeros to the IV's 12 bytes
EPOCH_BYTES: Final = 4

# Private-use header labels (RFC 9052 sec. 16.2: below -65536) binding the message to its sender.
DEVICE: Final = -65537
TOPIC: Final = -65538
EPOCH: Final = -65539
COUNTER: Final = -65540
TIME: Final = -65541

# CBOR tags of the two messages.
COSE_ENCRYPT0: Final = 16
COSE_SIGN1: Final = 18

MAX_EPOCH: Final = 2**32 - 1
MAX_COUNTER: Final = 2**64 - 1
MAX_TIME: Final = 2**64 - 1

_P256_ORDER_BYTES: Final = 32
_ENCRYPT0_CONTEXT: Final = cbor2.dumps("Encrypt0")
_SIGNATURE1_CONTEXT: Final = cbor2.dumps("Signature1")


def head(major: int, length: int) -> bytes:
    """The CBOR head of an item of major type `major` (2 bstr, 3 tstr...) and `length`, shortest form."""
    top = major << 5
    if length < 24:
        return bytes((top | length,))
    if length < 0x100:
        return bytes((top | 24, length))
    if length < 0x10000:
        return bytes((top | 25,)) + length.to_bytes(2, "big")
    if length < 0x100000000:
        return bytes((top | 26,)) + length.to_bytes(4, "big")
    return bytes((top | 27,)) + length.to_bytes(8, "big")


_SHORT_BSTR_HEADS: Final = tuple(head(2, length) for length in range(0x100))


def bstr(value: bytes) -> bytes:
    """`value` encoded as a CBOR byte string."""
    length = len(value)
    return (_SHORT_BSTR_HEADS[length] if length < 0x100 else head(2, length)) + value


def byte_string_at(data: bytes, offset: int) -> tuple[int, int]:
    """Where the CBOR byte string whose head is at `offset` starts and ends in `data`.

    Only the shortest head for the length is taken (RFC 8949 sec. 4.1, preferred serialization),
    so one value has one encoding. ValueError when there is no such byte string, IndexError when
    `data` ends inside the head.
    """
    first = data[offset]
    if 0x40 <= first < 0x58:
        start, length = offset + 1, first - 0x40
    elif first == 0x58:
        start, length = offset + 2, data[offset + 1]
        minimum = 24
    elif first == 0x59:
        start, length = offset + 3, int.from_bytes(data[offset + 1 : offset + 3], "big")
        minimum = 0x100
    elif first == 0x5A:
        start, length = offset + 5, int.from_bytes(data[offset + 1 : offset + 5], "big")
        minimum = 0x10000
    else:
        raise ValueError(f"expected a definite-length byte string at offset {offset}")
    if first >= 0x58 and length < minimum:
        raise ValueError(f"the byte string at offset {offset} has a longer head than its length needs")
    end = start + length
    if end > len(data):
        raise ValueError(f"the byte string at offset {offset} runs past the end")
    return start, end


def enc_structure(protected: bytes, external_aad: bytes) -> bytes:
    """The Enc_structure of a COSE_Encrypt0 (RFC 9052 sec. 5.3): the AEAD's associated data."""
    return enc_structure_prefix(protected) + bstr(external_aad)


def enc_structure_prefix(protected: bytes) -> bytes:
    """The Enc_structure up to its external_aad, the same for every message of a device epoch."""
    return b"\x83" + _ENCRYPT0_CONTEXT + bstr(protected)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The Sig_structure of a COSE_Sign1 with empty external_aad (RFC 9052 sec. 4.4): what is signed."""
    return b"\x84" + _SIGNATURE1_CONTEXT + bstr(protected) + b"\x40" + bstr(payload)


def nonce(base_iv: int, counter: int) -> bytes:
    """The AEAD nonce of a message: the Base IV XOR the left-padded Partial IV (RFC 9052 sec. 3.1)."""
    return (base_iv ^ counter).to_bytes(IV_BYTES, "big")


def _der_prefixes(r_pad: int, s_pad: int) -> tuple[bytes, bytes]:
    r_length, s_length = _P256_ORDER_BYTES + r_pad, _P256_ORDER_BYTES + s_pad
    before_r = bytes((0x30, 4 + r_length + s_length, 0x02, r_length)) + b"\x00" * r_pad
    return before_r, bytes((0x02, s_length)) + b"\x00" * s_pad


_DER_PREFIXES: Final = tuple(_der_prefixes(r_pad, s_pad) for r_pad in (0, 1) for s_pad in (0, 1))
"""DER framing of (r, s) when neither starts with a zero byte, by which of them needs a 0x00 pad."""


def signature_to_der(raw: bytes) -> bytes:
    """A COSE ES256 signature (r || s, 32 bytes each) as the DER ECDSA-Sig-Value `cryptography` verifies."""
    r0, s0 = raw[0], raw[_P256_ORDER_BYTES]
    if r0 and s0:  # 255 times in 256: fixed framing, only the sign pads vary
        before_r, before_s = _DER_PREFIXES[(r0 >> 7) * 2 + (s0 >> 7)]
        return before_r + raw[:_P256_ORDER_BYTES] + before_s + raw[_P256_ORDER_BYTES:]
    r = _der_integer(raw[:_P256_ORDER_BYTES])
    s = _der_integer(raw[_P256_ORDER_BYTES:])
    body = r + s
    return b"\x30" + bytes((len(body),)) + body


def _der_integer(value: bytes) -> bytes:
    value = value.lstrip(b"\x00") or b"\x00"
    if value[0] & 0x80:
        value = b"\x00" + value
    return b"\x02" + bytes((len(value),)) + value


def signature_from_der(der: bytes) -> bytes:
    """A DER ECDSA-Sig-Value (what `cryptography` signs) as COSE's fixed-size r || s."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(_P256_ORDER_BYTES, "big") + s.to_bytes(_P256_ORDER_BYTES, "big")


def cose_key(public_key: ec.EllipticCurvePublicKey) -> dict[int, int | bytes]:
    """A P-256 public key as a COSE_Key (EC2, uncompressed: x and y, 32 bytes each)."""
    numbers = public_key.public_numbers()
    return {
        KEY_TYPE: EC2,
        EC2_CURVE: P256,
        EC2_X: numbers.x.to_bytes(32, "big"),
        EC2_Y: numbers.y.to_bytes(32, "big"),
    }


def public_key_from_cose(key: object) -> ec.EllipticCurvePublicKey:
    """The P-256 public key a COSE_Key map describes; ValueError when it is not a valid P-256 point."""
    if not isinstance(key, dict) or key.get(KEY_TYPE) != EC2 or key.get(EC2_CURVE) != P256:
        raise ValueError("the ephemeral key is not an EC2 P-256 COSE_Key")
    x, y = key.get(EC2_X), key.get(EC2_Y)
    if not (isinstance(x, bytes) and isinstance(y, bytes) and len(x) == 32 and len(y) == 32):
        raise ValueError("the ephemeral key needs x and y as 32-byte strings (uncompressed)")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)


def kdf_context(algorithm: int | str, bits: int, device: bytes, epoch: int, recipient_kid: bytes) -> bytes:
    """The COSE_KDF_Context (RFC 9053 sec. 5.2) of one derivation.

    PartyU is the device (identity: its id in UTF-8, nonce: the epoch as 4 bytes), PartyV the
    platform recipient (identity: the recipient kid), SuppPubInfo [bits, h''] (no recipient
    structure, so no protected header to bind).
    """
    return cbor2.dumps(
        [
            algorithm,
            [device, epoch.to_bytes(4, "big"), None],
            [recipient_kid, None, None],
            [bits, b""],
        ]
    )


def derive(shared_secret: bytes, device: bytes, epoch: int, recipient_kid: bytes) -> tuple[bytes, bytes]:
    """The A128GCM key and the Base IV of one device epoch, from the ECDH shared secret (HKDF-SHA256)."""
    key = _hkdf(shared_secret, KEY_BYTES, kdf_context(A128GCM, 8 * KEY_BYTES, device, epoch, recipient_kid))
    base_iv = _hkdf(
        shared_secret, IV_BYTES, kdf_context(IV_GENERATION, 8 * IV_BYTES, device, epoch, recipient_kid)
    )
    return key, base_iv


def _hkdf(secret: bytes, length: int, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)
