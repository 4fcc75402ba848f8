"""The telemetry envelope: round trips, and every way a message is refused.

`craft` builds messages by hand from docs/telemetry-envelope.md (literal labels, the KDF context
written out, cbor2 and `cryptography` only), independently of `Sealer`: it makes the messages a
device could never seal (unsigned, re-wrapped onto another topic, a disagreeing counter) and
checks that the specification and the code agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.core.errors import InvalidInput
from plantwarden.devices.envelope import EnvelopeRefused, Opened, Opener, Sealer

TOPIC = "plantwarden/plant-a/devices/press-7/telemetry"
TIME_NS = 1_795_000_000_123_456_789


@dataclass
class Party:
    """A key pair and the kid of its (notional) certificate."""

    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def kid(self) -> bytes:
        """Stands in for SHA-256 of the certificate's DER: SHA-256 of the public key's DER."""
        return hashlib.sha256(
            self.public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        ).digest()

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self.key.public_key()


@pytest.fixture(scope="module")
def device() -> Party:
    return Party()


@pytest.fixture(scope="module")
def platform() -> Party:
    return Party()


def sealer(device: Party, platform: Party, name: str = "press-7", epoch: int = 3) -> Sealer:
    return Sealer(name, device.key, device.kid, platform.public, platform.kid, epoch)


def keys(*devices: Party) -> dict[bytes, ec.EllipticCurvePublicKey]:
    return {d.kid: d.public for d in devices}


def derive(secret: bytes, device: str, epoch: int, recipient_kid: bytes) -> tuple[bytes, bytes]:
    """Key and Base IV as the specification writes them (HKDF-SHA256, COSE_KDF_Context)."""

    def context(algorithm: int | str, bits: int) -> bytes:
        party_u = [device.encode(), epoch.to_bytes(4, "big"), None]
        return cbor2.dumps([algorithm, party_u, [recipient_kid, None, None], [bits, b""]])

    def hkdf(length: int, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)

    return hkdf(16, context(1, 128)), hkdf(12, context("IV-GENERATION", 96))


def sign1(
    signer: Party,
    payload: bytes,
    *,
    device: str,
    topic: str,
    epoch: int,
    counter: int,
    kid: bytes | None = None,
) -> bytes:
    """A tagged COSE_Sign1 (ES256) with the binding fields in its protected header."""
    protected = cbor2.dumps(
        {1: -7, 4: kid or signer.kid, -65537: device, -65538: topic, -65539: epoch, -65540: counter}
        | {-65541: TIME_NS}
    )
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    r, s = decode_dss_signature(signer.key.sign(to_sign, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, signature]))


def craft(plaintext: bytes, recipient: Party, *, device: str, topic: str, epoch: int, counter: int) -> bytes:
    """A tagged COSE_Encrypt0 of any plaintext to `recipient`, as a device (or an attacker) makes it."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    numbers = ephemeral.public_key().public_numbers()
    cose_key = {1: 2, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
    protected = cbor2.dumps(
        {1: 1, 4: recipient.kid, -1: cose_key, -21: device.encode(), -22: epoch.to_bytes(4, "big")}
    )
    key, base_iv = derive(ephemeral.exchange(ec.ECDH(), recipient.public), device, epoch, recipient.kid)
    partial_iv = counter.to_bytes(8, "big")
    nonce = bytes(a ^ b for a, b in zip(base_iv, b"\0\0\0\0" + partial_iv, strict=True))
    aad = cbor2.dumps(["Encrypt0", protected, topic.encode()])
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, aad)
    return cbor2.dumps(cbor2.CBORTag(16, [protected, {6: partial_iv}, ciphertext]))


def refusal(opener: Opener, message: bytes, topic: str = TOPIC, **kwargs: object) -> str:
    lookup = kwargs.pop("key_for", None)
    with pytest.raises(EnvelopeRefused) as refused:
        opener.open(message, topic=topic, key_for=lookup or (lambda kid: None), **kwargs)  # type: ignore[arg-type]
    return refused.value.reason


def test_round_trip(device: Party, platform: Party) -> None:
    seal = sealer(device, platform)
    opener = Opener(platform.key, platform.kid)
    messages = [
        seal.seal(b"temperature=%d" % i, topic=TOPIC, counter=i, time_ns=TIME_NS + i) for i in (0, 1, 7)
    ]
    opened = [opener.open(m, topic=TOPIC, key_for=keys(device).get, device="press-7") for m in messages]
    assert opened[2] == Opened(
        "press-7",
        device.kid,
        TOPIC,
        3,
        7,
        TIME_NS + 7,
        b"temperature=7",
        hashlib.sha256(messages[2]).digest(),
    )
    assert [o.counter for o in opened] == [0, 1, 7]
    assert opener.open(memoryview(messages[0]), topic=TOPIC, key_for=keys(device).get).counter == 0
    assert opener.derivations == 1, "one ECDH per device epoch"
    assert b"temperature" not in b"".join(messages), "the payload travels encrypted"


def test_a_message_crafted_from_the_specification_opens(device: Party, platform: Party) -> None:
    inner = sign1(device, b"spec", device="press-7", topic=TOPIC, epoch=9, counter=2**40)
    message = craft(inner, platform, device="press-7", topic=TOPIC, epoch=9, counter=2**40)
    opened = Opener(platform.key, platform.kid).open(message, topic=TOPIC, key_for=keys(device).get)
    assert (opened.payload, opened.epoch, opened.counter, opened.time_ns) == (b"spec", 9, 2**40, TIME_NS)


def test_every_changed_byte_is_refused(device: Party, platform: Party) -> None:
    message = sealer(device, platform).seal(b"x" * 40, topic=TOPIC, counter=5, time_ns=TIME_NS)
    opener = Opener(platform.key, platform.kid)
    reasons = set()
    for index in range(len(message)):
        for flip in (0x01, 0x80):
            tampered = bytearray(message)
            tampered[index] ^= flip
            reasons.add(refusal(opener, bytes(tampered), key_for=keys(device).get))
    assert reasons <= {"malformed", "wrong_recipient", "undecryptable"}
    assert "undecryptable" in reasons and "malformed" in reasons
    ciphertext_start = len(message) - (40 + 180)  # well inside the ciphertext
    tampered = bytearray(message)
    tampered[ciphertext_start] ^= 0x01
    assert refusal(opener, bytes(tampered), key_for=keys(device).get) == "undecryptable"


def test_every_truncation_and_a_trailer_are_malformed(device: Party, platform: Party) -> None:
    message = sealer(device, platform).seal(b"payload", topic=TOPIC, counter=1, time_ns=TIME_NS)
    opener = Opener(platform.key, platform.kid)
    assert {refusal(opener, message[:length]) for length in range(len(message))} == {"malformed"}
    assert refusal(opener, message + b"\x00") == "malformed"


def test_a_retopiced_message_does_not_decrypt(device: Party, platform: Party) -> None:
    message = sealer(device, platform).seal(b"payload", topic=TOPIC, counter=1, time_ns=TIME_NS)
    opener = Opener(platform.key, platform.kid)
    assert refusal(opener, message, topic=TOPIC.replace("press-7", "press-8")) == "undecryptable"


def test_another_platform_key_is_the_wrong_recipient(device: Party, platform: Party) -> None:
    other = Party()
    message = sealer(device, other).seal(b"payload", topic=TOPIC, counter=1, time_ns=TIME_NS)
    assert refusal(Opener(platform.key, platform.kid), message) == "wrong_recipient"
    spoofed = Sealer("press-7", device.key, device.kid, other.public, platform.kid, 3)
    message = spoofed.seal(b"payload", topic=TOPIC, counter=1, time_ns=TIME_NS)
    assert refusal(Opener(platform.key, platform.kid), message) == "undecryptable", (
        "kid of ours, key of another"
    )


def test_an_encrypted_message_that_is_not_signed_is_unsigned(platform: Party) -> None:
    opener = Opener(platform.key, platform.kid)
    for plaintext in (b'{"temperature": 21}', cbor2.dumps(cbor2.CBORTag(17, [b"", {}, b"", b""])), b""):
        message = craft(plaintext, platform, device="press-7", topic=TOPIC, epoch=1, counter=1)
        assert refusal(opener, message) == "unsigned"


def test_unknown_key_and_another_devices_key(device: Party, platform: Party) -> None:
    message = sealer(device, platform).seal(b"payload", topic=TOPIC, counter=1, time_ns=TIME_NS)
    opener = Opener(platform.key, platform.kid)
    assert refusal(opener, message, key_for=keys(Party()).get) == "unknown_key"
    impostor = Party()
    assert refusal(opener, message, key_for=lambda kid: impostor.public) == "bad_signature"
    forged = sign1(impostor, b"forged", device="press-7", topic=TOPIC, epoch=3, counter=2, kid=device.kid)
    message = craft(forged, platform, device="press-7", topic=TOPIC, epoch=3, counter=2)
    assert refusal(opener, message, key_for=keys(device).get) == "bad_signature"


@pytest.mark.parametrize(
    ("outer", "inner"),
    [
        ({"topic": TOPIC.replace("press-7", "press-8")}, {}),  # a signed message re-wrapped onto a topic
        ({"counter": 6}, {}),
        ({"epoch": 4}, {}),
        ({"device": "press-8"}, {}),
        ({}, {"device": "press-8"}),
    ],
)
def test_a_rewrapped_message_disagreeing_with_its_envelope_is_a_binding_mismatch(
    device: Party, platform: Party, outer: dict[str, object], inner: dict[str, object]
) -> None:
    signed = {"device": "press-7", "topic": TOPIC, "epoch": 3, "counter": 5} | inner
    inner_message = sign1(device, b"payload", **signed)  # type: ignore[arg-type]
    envelope = signed | {"device": "press-7"} | outer
    message = craft(inner_message, platform, **envelope)  # type: ignore[arg-type]
    topic = str(envelope["topic"])
    assert refusal(Opener(platform.key, platform.kid), message, topic, key_for=keys(device).get) == (
        "binding_mismatch"
    )


def test_the_expected_device_must_be_the_signer(device: Party, platform: Party) -> None:
    message = sealer(device, platform).seal(b"payload", topic=TOPIC, counter=1, time_ns=TIME_NS)
    opener = Opener(platform.key, platform.kid)
    assert refusal(opener, message, key_for=keys(device).get, device="press-8") == "binding_mismatch"
    assert opener.open(message, topic=TOPIC, key_for=keys(device).get, device="press-7").device == "press-7"


def test_an_unprotected_header_beyond_the_partial_iv_is_malformed(device: Party, platform: Party) -> None:
    message = sealer(device, platform).seal(b"payload", topic=TOPIC, counter=1, time_ns=TIME_NS)
    protected, unprotected, ciphertext = cbor2.loads(message).value
    opener = Opener(platform.key, platform.kid)
    for changed in ({**unprotected, 5: b"\0" * 12}, {6: b"\0" + unprotected[6]}, {6: unprotected[6][1:]}, {}):
        assert (
            refusal(opener, cbor2.dumps(cbor2.CBORTag(16, [protected, changed, ciphertext]))) == "malformed"
        )
    assert (
        opener.open(
            cbor2.dumps(cbor2.CBORTag(16, [protected, unprotected, ciphertext])),
            topic=TOPIC,
            key_for=keys(device).get,
        ).counter
        == 1
    )


@settings(max_examples=100, deadline=None)
@given(garbage=st.binary(max_size=400) | st.builds(lambda b: b"\xd0\x83" + b, st.binary(max_size=200)))
def test_garbage_is_malformed_never_a_crash(garbage: bytes) -> None:
    opener = _GARBAGE_OPENER
    with pytest.raises(EnvelopeRefused) as refused:
        opener.open(garbage, topic=TOPIC, key_for=lambda kid: None)
    assert refused.value.reason == "malformed"


_GARBAGE_OPENER = Opener(ec.generate_private_key(ec.SECP256R1()), b"k" * 32)
_GARBAGE_PLATFORM = Party()


@settings(max_examples=100, deadline=None)
@given(
    plaintext=st.binary(max_size=300)
    | st.builds(lambda b: b"\xd2\x84" + b, st.binary(max_size=200))
    | st.builds(lambda b: b"\xd2\x84\x41\xa0\xa0" + b, st.binary(max_size=100))
)
def test_a_garbage_plaintext_is_unsigned_or_malformed_never_a_crash(plaintext: bytes) -> None:
    message = craft(plaintext, _GARBAGE_PLATFORM, device="press-7", topic=TOPIC, epoch=1, counter=1)
    opener = Opener(_GARBAGE_PLATFORM.key, _GARBAGE_PLATFORM.kid)
    assert refusal(opener, message) in {"unsigned", "malformed"}


def test_the_cache_is_bounded_and_derives_once_per_epoch(device: Party, platform: Party) -> None:
    opener = Opener(platform.key, platform.kid, cache_size=1)
    first, second = sealer(device, platform, epoch=1), sealer(device, platform, epoch=2)

    def send(sealing: Sealer, counter: int) -> None:
        message = sealing.seal(b"a", topic=TOPIC, counter=counter, time_ns=TIME_NS)
        opener.open(message, topic=TOPIC, key_for=keys(device).get)

    for counter in range(3):
        send(first, counter)
    assert opener.derivations == 1
    send(second, 0)
    send(first, 3)
    assert opener.derivations == 3, "a cache of one epoch derives again when epochs alternate"


def test_the_sealer_refuses_what_would_repeat_an_iv_or_break_the_format(
    device: Party, platform: Party
) -> None:
    seal = sealer(device, platform)
    seal.seal(b"a", topic=TOPIC, counter=5, time_ns=TIME_NS)
    for counter in (5, 4, 2**64):
        with pytest.raises(InvalidInput, match="counter"):
            seal.seal(b"a", topic=TOPIC, counter=counter, time_ns=TIME_NS)
    with pytest.raises(InvalidInput, match="P-256"):
        Sealer(
            "press-7", ec.generate_private_key(ec.SECP384R1()), device.kid, platform.public, platform.kid, 1
        )
    with pytest.raises(InvalidInput, match="epoch"):
        Sealer("press-7", device.key, device.kid, platform.public, platform.kid, 2**32)
    with pytest.raises(InvalidInput, match="device id"):
        Sealer("", device.key, device.kid, platform.public, platform.kid, 1)


def test_two_sealers_of_one_epoch_use_different_keys(device: Party, platform: Party) -> None:
    """A restarted agent that lost its epoch still never repeats a (key, IV) pair."""
    a = sealer(device, platform).seal(b"same", topic=TOPIC, counter=1, time_ns=TIME_NS)
    b = sealer(device, platform).seal(b"same", topic=TOPIC, counter=1, time_ns=TIME_NS)
    assert cbor2.loads(a).value[2] != cbor2.loads(b).value[2]
