"""The telemetry envelope: a COSE_Sign1 by the device key inside a COSE_Encrypt0 to the platform.

`Sealer` is the device side (one per device epoch: its ephemeral key pair is the epoch's), `Opener`
the platform side. Both are pure: bytes and keys in, bytes or an `Opened` out; the caller finds
certificates (`key_for`), persists counters and judges replays (`devices.replay`).
docs/telemetry-envelope.md specifies the format so that another implementation can interoperate.

`Opener.open` is the platform's hot path (target: 10,000 messages/s on one core, of which the ECDSA
verification alone takes ~85 us). Everything else is kept to a few microseconds: the C CBOR
decoder, structures concatenated from CBOR heads, and one ECDH and HKDF per device epoch (the
derived AEAD is cached by ephemeral key, device and epoch in a bounded LRU).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import cbor2
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from plantwarden.core.errors import InvalidInput, PlantwardenError
from plantwarden.devices import cose
from plantwarden.devices.cose import (
    A128GCM,
    ALG,
    COUNTER,
    DEVICE,
    EPHEMERAL_KEY,
    EPOCH,
    ES256,
    KID,
    PARTIAL_IV,
    PARTY_U_IDENTITY,
    PARTY_U_NONCE,
    TIME,
    TOPIC,
)

RefusalReason = Literal[
    "malformed",
    "wrong_recipient",
    "undecryptable",
    "unsigned",
    "unknown_key",
    "bad_signature",
    "binding_mismatch",
]
KeyLookup = Callable[[bytes], ec.EllipticCurvePublicKey | None]
"""Finds a device's public key by its kid (SHA-256 of the certificate's DER); None when unknown."""

MAX_DEVICE_BYTES = 200
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_SIGNATURE_BYTES = 64
_KID_BYTES = 32


class EnvelopeRefused(PlantwardenError):
    """A telemetry message was refused; `reason` (a `RefusalReason`) is stable, `detail` is for people."""

    code = "envelope_refused"

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(f"telemetry message refused ({reason}): {detail}", details={"reason": reason})
        self.reason: RefusalReason = reason
        self.detail = detail


class Opened(NamedTuple):
    """A message that decrypted, verified and matched its bindings; not yet judged for replay."""

    device: str
    kid: bytes
    """SHA-256 of the signing certificate's DER: the caller checks that it belongs to `device`."""
    topic: str
    epoch: int
    counter: int
    time_ns: int
    payload: bytes
    digest: bytes
    """SHA-256 of the whole message: tells a redelivery (same bytes) from a reused counter."""


class Sealer:
    """Seals one device's telemetry for one epoch; make a new Sealer (a new epoch) on every start.

    The epoch's ephemeral key pair is made here and never leaves the object, so the AEAD key is
    new for every Sealer; within it the counter must increase, which keeps every IV unique.
    """

    def __init__(
        self,
        device: str,
        device_key: ec.EllipticCurvePrivateKey,
        device_kid: bytes,
        recipient_public_key: ec.EllipticCurvePublicKey,
        recipient_kid: bytes,
        epoch: int,
    ) -> None:
        device_bytes = _check_device(device)
        _check_p256(device_key.curve, "the device key")
        _check_p256(recipient_public_key.curve, "the platform recipient key")
        if len(device_kid) != _KID_BYTES or not recipient_kid:
            raise InvalidInput(
                "the device kid is the 32-byte SHA-256 of its certificate; the recipient kid is set"
            )
        if not 0 <= epoch <= cose.MAX_EPOCH:
            raise InvalidInput(f"epoch {epoch} is out of range: 0 to {cose.MAX_EPOCH}")
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        key, base_iv = cose.derive(
            ephemeral.exchange(ec.ECDH(), recipient_public_key), device_bytes, epoch, recipient_kid
        )
        self.device, self.epoch, self.last_counter = device, epoch, -1
        self._device_key, self._device_kid = device_key, device_kid
        self._aead, self._base_iv = AESGCM(key), int.from_bytes(base_iv, "big")
        self._protected = cbor2.dumps(
            {ALG: A128GCM, KID: recipient_kid, EPHEMERAL_KEY: cose.cose_key(ephemeral.public_key())}
            | {PARTY_U_IDENTITY: device_bytes, PARTY_U_NONCE: epoch.to_bytes(cose.EPOCH_BYTES, "big")}
        )
        self._aad_prefix = cose.enc_structure_prefix(self._protected)

    def seal(self, payload: bytes, *, topic: str, counter: int, time_ns: int) -> bytes:
        """The COSE_Encrypt0 carrying `payload` signed for `topic` under (epoch, counter) at `time_ns`."""
        if not self.last_counter < counter <= cose.MAX_COUNTER:
            raise InvalidInput(
                f"counter {counter} must be above the last sealed one ({self.last_counter}) and at most "
                f"{cose.MAX_COUNTER}: an IV must never repeat; start a new epoch when it runs out"
            )
        if not topic or not 0 <= time_ns <= cose.MAX_TIME:
            raise InvalidInput("a message needs a topic and a time in ns since the Unix epoch")
        signed = cbor2.dumps(
            {ALG: ES256, KID: self._device_kid, DEVICE: self.device, TOPIC: topic}
            | {EPOCH: self.epoch, COUNTER: counter, TIME: time_ns}
        )
        der = self._device_key.sign(cose.sig_structure(signed, payload), _ECDSA_SHA256)
        sign1 = cbor2.dumps(
            cbor2.CBORTag(cose.COSE_SIGN1, [signed, {}, payload, cose.signature_from_der(der)])
        )
        aad = self._aad_prefix + cose.bstr(topic.encode())
        ciphertext = self._aead.encrypt(cose.nonce(self._base_iv, counter), sign1, aad)
        self.last_counter = counter
        partial_iv = counter.to_bytes(cose.PARTIAL_IV_BYTES, "big")
        return cbor2.dumps(
            cbor2.CBORTag(cose.COSE_ENCRYPT0, [self._protected, {PARTIAL_IV: partial_iv}, ciphertext])
        )


class _Epoch(NamedTuple):
    """What a device epoch's protected header gives, once parsed, checked and derived."""

    aead: AESGCM
    base_iv: int
    aad_prefix: bytes
    device: str
    epoch: int


class Opener:
    """Opens messages sealed to one platform recipient key (another key: another Opener)."""

    def __init__(
        self, recipient_private_key: ec.EllipticCurvePrivateKey, recipient_kid: bytes, cache_size: int = 4096
    ) -> None:
        _check_p256(recipient_private_key.curve, "the platform recipient key")
        if cache_size < 1:
            raise InvalidInput("the key cache needs room for at least one device epoch")
        self.recipient_kid = recipient_kid
        self.derivations = 0
        """How many ECDH + HKDF derivations ran (one per device epoch while the cache holds it)."""
        self._private_key = recipient_private_key
        self._epochs: OrderedDict[bytes, _Epoch] = OrderedDict()
        self._cache_size = cache_size

    def open(
        self,
        message: bytes | bytearray | memoryview,
        *,
        topic: str,
        key_for: KeyLookup,
        device: str | None = None,
    ) -> Opened:
        """Decrypt, verify and check the bindings of `message` received on `topic`.

        `key_for` finds the signing key by its kid; `device`, when given (the device the MQTT topic
        or the TLS client certificate names), must be the device id the message carries. Either
        way the caller must make sure the certificate of `Opened.kid` is the one of `Opened.device`
        (a `key_for` that only finds the keys of `device` does). Raises EnvelopeRefused with the
        first reason found, in this order: malformed, wrong_recipient, undecryptable, unsigned,
        unknown_key, bad_signature, binding_mismatch.
        """
        data = message if type(message) is bytes else bytes(message)  # a client library's buffer
        protected, partial_iv, ciphertext = _outer(data)
        epoch = self._epochs.get(protected)
        if epoch is None:
            epoch = self._learn(protected)
        else:
            self._epochs.move_to_end(protected)
        counter = int.from_bytes(partial_iv, "big")
        try:
            nonce = (epoch.base_iv ^ counter).to_bytes(cose.IV_BYTES, "big")  # RFC 9052 sec. 3.1
            plaintext = epoch.aead.decrypt(nonce, ciphertext, epoch.aad_prefix + cose.bstr(topic.encode()))
        except (InvalidTag, ValueError):
            raise EnvelopeRefused(
                "undecryptable", "the message was altered, moved to another topic or sealed with another key"
            ) from None
        signed, payload, signature = _inner(plaintext)
        kid, signer, inner_topic, inner_epoch, inner_counter, time_ns = _bindings(
            _header(signed, "the Sign1")
        )
        key = key_for(kid)
        if key is None:
            raise EnvelopeRefused("unknown_key", f"no valid device certificate has kid {kid.hex()}")
        try:
            key.verify(cose.signature_to_der(signature), cose.sig_structure(signed, payload), _ECDSA_SHA256)
        except InvalidSignature:
            raise EnvelopeRefused("bad_signature", "the device signature does not verify") from None
        if (
            signer != epoch.device
            or inner_topic != topic
            or inner_epoch != epoch.epoch
            or inner_counter != counter
            or (device is not None and signer != device)
        ):
            signed_binding = (signer, inner_topic, inner_epoch, inner_counter)
            raise _mismatch(signed_binding, (epoch.device, topic, epoch.epoch, counter), device)
        digest = hashlib.sha256(data).digest()
        return Opened(signer, kid, topic, inner_epoch, counter, time_ns, payload, digest)

    def _learn(self, protected: bytes) -> _Epoch:
        """Parse and check a device epoch's protected header, derive its AEAD (one ECDH) and cache it."""
        header = _header(protected, "the Encrypt0")
        if type(header.get(ALG)) is not int or header[ALG] != A128GCM:
            raise EnvelopeRefused(
                "malformed", f"the Encrypt0 algorithm must be A128GCM (1), not {header.get(ALG)!r}"
            )
        if header.get(KID) != self.recipient_kid:
            raise EnvelopeRefused("wrong_recipient", "the message is sealed to another platform key (kid)")
        device, nonce = header.get(PARTY_U_IDENTITY), header.get(PARTY_U_NONCE)
        if type(device) is not bytes or not 0 < len(device) <= MAX_DEVICE_BYTES:
            raise EnvelopeRefused(
                "malformed", "the PartyU identity (-21, the device id) is missing or too long"
            )
        if type(nonce) is not bytes or len(nonce) != cose.EPOCH_BYTES:
            raise EnvelopeRefused("malformed", "the PartyU nonce (-22) must be the epoch as 4 bytes")
        try:
            device_id = device.decode()
            public_key = cose.public_key_from_cose(header.get(EPHEMERAL_KEY))
        except ValueError as error:  # UnicodeDecodeError is a ValueError
            raise EnvelopeRefused("malformed", f"the Encrypt0 header is not usable: {error}") from None
        epoch = int.from_bytes(nonce, "big")
        key, base_iv = cose.derive(
            self._private_key.exchange(ec.ECDH(), public_key), device, epoch, self.recipient_kid
        )
        self.derivations += 1
        learnt = _Epoch(
            AESGCM(key),
            int.from_bytes(base_iv, "big"),
            cose.enc_structure_prefix(protected),
            device_id,
            epoch,
        )
        self._epochs[protected] = learnt
        if len(self._epochs) > self._cache_size:
            self._epochs.popitem(last=False)
        return learnt


_ENCRYPT0_START = bytes((0xC0 | cose.COSE_ENCRYPT0, 0x83))
_SIGN1_START = bytes((0xC0 | cose.COSE_SIGN1, 0x84))
_UNPROTECTED = bytes((0xA1, PARTIAL_IV, 0x40 | cose.PARTIAL_IV_BYTES))
"""The only unprotected header allowed: {6: an 8-byte Partial IV}, up to the Partial IV's bytes."""
_SIGNATURE_HEAD = bytes((0x58, _SIGNATURE_BYTES))


def _outer(message: bytes) -> tuple[bytes, bytes, bytes]:
    """The protected header, Partial IV and ciphertext of a tagged COSE_Encrypt0.

    Read straight from the bytes (faster than decoding and type-checking a CBOR tree): tag 16, an
    array of three, the protected header as a byte string, exactly {6: 8-byte Partial IV}, the
    ciphertext, and nothing after it; every head in its shortest form.
    """
    try:
        if message[:2] != _ENCRYPT0_START:
            raise ValueError("the message must start as a tagged COSE_Encrypt0 (tag 16, array of 3)")
        protected_start, protected_end = cose.byte_string_at(message, 2)
        partial_iv_start = protected_end + len(_UNPROTECTED)
        if message[protected_end:partial_iv_start] != _UNPROTECTED:
            raise ValueError("the unprotected header must be exactly {6: 8-byte Partial IV}")
        partial_iv_end = partial_iv_start + cose.PARTIAL_IV_BYTES
        ciphertext_start, ciphertext_end = cose.byte_string_at(message, partial_iv_end)
        if ciphertext_end != len(message):
            raise ValueError("there are bytes after the COSE_Encrypt0")
    except (ValueError, IndexError, TypeError) as error:
        raise EnvelopeRefused("malformed", str(error) or "the message ends too early") from None
    return (
        message[protected_start:protected_end],
        message[partial_iv_start:partial_iv_end],
        message[ciphertext_start:ciphertext_end],
    )


def _inner(plaintext: bytes) -> tuple[bytes, bytes, bytes]:
    """The protected header, payload and r||s signature of the decrypted COSE_Sign1 (read as `_outer`)."""
    if plaintext[:2] != _SIGN1_START:
        raise EnvelopeRefused("unsigned", "the decrypted content is not a COSE_Sign1 (tag 18, array of 4)")
    try:
        signed_start, signed_end = cose.byte_string_at(plaintext, 2)
        if plaintext[signed_end] != 0xA0:
            raise ValueError("the Sign1's unprotected header must be empty")
        payload_start, payload_end = cose.byte_string_at(plaintext, signed_end + 1)
        if plaintext[payload_end : payload_end + 2] != _SIGNATURE_HEAD or (
            len(plaintext) != payload_end + 2 + _SIGNATURE_BYTES
        ):
            raise ValueError("the Sign1 must end with a 64-byte ES256 signature")
    except (ValueError, IndexError) as error:
        raise EnvelopeRefused("malformed", str(error) or "the COSE_Sign1 ends too early") from None
    return (
        plaintext[signed_start:signed_end],
        plaintext[payload_start:payload_end],
        plaintext[payload_end + 2 :],
    )


def _header(protected: bytes, what: str) -> dict[Any, Any]:
    """A protected header map; a label given twice (RFC 9052 sec. 3) is refused."""
    try:
        header = cbor2.loads(protected, max_depth=4)
    except Exception:  # hostile input: any failure of the decoder means the same thing
        raise EnvelopeRefused("malformed", f"{what} protected header is not CBOR") from None
    if type(header) is not dict or not 0xA0 <= protected[0] <= 0xB7 or len(header) != protected[0] - 0xA0:
        raise EnvelopeRefused("malformed", f"{what} protected header must be a map without repeated labels")
    return header


def _bindings(header: dict[Any, Any]) -> tuple[bytes, str, str, int, int, int]:
    """kid, device, topic, epoch, counter and time of the Sign1 header, checked for type and range."""
    kid, device, topic = header.get(KID), header.get(DEVICE), header.get(TOPIC)
    epoch, counter, time_ns = header.get(EPOCH), header.get(COUNTER), header.get(TIME)
    if type(header.get(ALG)) is not int or header[ALG] != ES256:
        raise EnvelopeRefused("malformed", f"the Sign1 algorithm must be ES256 (-7), not {header.get(ALG)!r}")
    if type(kid) is not bytes or len(kid) != _KID_BYTES or type(device) is not str or type(topic) is not str:
        raise EnvelopeRefused("malformed", "the Sign1 needs a 32-byte kid, a device id and a topic")
    if type(epoch) is not int or type(counter) is not int or type(time_ns) is not int:
        raise EnvelopeRefused(
            "malformed", "the Sign1 needs an epoch, a counter and a time (unsigned integers)"
        )
    if not (
        0 <= epoch <= cose.MAX_EPOCH and 0 <= counter <= cose.MAX_COUNTER and 0 <= time_ns <= cose.MAX_TIME
    ):
        raise EnvelopeRefused("malformed", "the Sign1's epoch, counter or time is out of range")
    return kid, device, topic, epoch, counter, time_ns


def _mismatch(
    signed: tuple[str, str, int, int], envelope: tuple[str, str, int, int], device: str | None
) -> EnvelopeRefused:
    """The refusal of a message whose signed device, topic, epoch or counter is not the envelope's."""
    names = ("device id", "topic", "epoch", "counter")
    differences = [
        f"{name} {inside!r} signed, {outside!r} in the envelope"
        for name, inside, outside in zip(names, signed, envelope, strict=True)
        if inside != outside
    ]
    if device is not None and signed[0] != device:
        differences.append(f"device id {signed[0]!r} signed, {device!r} expected")
    return EnvelopeRefused("binding_mismatch", "; ".join(differences))


def _check_device(device: str) -> bytes:
    encoded = device.encode()
    if not 0 < len(encoded) <= MAX_DEVICE_BYTES:
        raise InvalidInput(f"a device id is 1 to {MAX_DEVICE_BYTES} bytes of UTF-8, not {len(encoded)}")
    return encoded


def _check_p256(curve: ec.EllipticCurve, what: str) -> None:
    if not isinstance(curve, ec.SECP256R1):
        raise InvalidInput(f"{what} must be on P-256 (secp256r1), not {curve.name}")


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The platform recipient's kid: SHA-256 of its public key (SubjectPublicKeyInfo, DER), so
    that re-issuing the recipient's certificate for the same key changes nothing for devices."""
    return hashlib.sha256(public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).digest()
