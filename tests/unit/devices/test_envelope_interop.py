"""Interoperability with pycose, an independent COSE implementation, in both directions.

pycose only does the COSE parts (Enc_structure, AES-GCM with Base IV and Partial IV,
Sig_structure, ES256 with r||s); the key and Base IV come from the specification's derivation
(`derive` in test_envelope). Two pycose 1.1 limitations are worked around here, not in the code:
- with cbor2 6, `CoseMessage.decode` refuses every tagged message (cbor2 now decodes arrays inside
  a tag as tuples; TimothyClaeys/pycose#141), so the tag is taken off with cbor2 and the array
  handed to `from_cose_obj` as a list;
- `EncCommon._get_nonce` strips leading zero bytes from Base IV XOR Partial IV (`int.to_bytes`
  of the minimal length), so with a Base IV starting with 0x00 it would use an 11-byte nonce:
  the tests draw a new ephemeral key (a new Sealer) until the Base IV starts with another byte.
"""

from __future__ import annotations

import cbor2
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.algorithms import A128GCM, Es256
from pycose.headers import KID, Algorithm, EphemeralKey, PartialIV, PartyUID, PartyUNonce
from pycose.keys.curves import P256
from pycose.keys.ec2 import EC2Key
from pycose.keys.symmetric import SymmetricKey
from pycose.messages.enc0message import Enc0Message
from pycose.messages.sign1message import Sign1Message

from plantwarden.devices.envelope import Opener, Sealer
from tests.unit.devices.test_envelope import TIME_NS, TOPIC, Party, derive, keys


@pytest.fixture(scope="module")
def device() -> Party:
    return Party()


@pytest.fixture(scope="module")
def platform() -> Party:
    return Party()


def cose_public(key: ec.EllipticCurvePublicKey) -> EC2Key:
    numbers = key.public_numbers()
    return EC2Key(crv=P256, x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))


def cose_private(key: ec.EllipticCurvePrivateKey) -> EC2Key:
    numbers = key.public_key().public_numbers()
    return EC2Key(
        crv=P256,
        x=numbers.x.to_bytes(32, "big"),
        y=numbers.y.to_bytes(32, "big"),
        d=key.private_numbers().private_value.to_bytes(32, "big"),
    )


def untag(message: bytes, tag: int) -> list[object]:
    item = cbor2.loads(message)
    assert isinstance(item, cbor2.CBORTag) and item.tag == tag
    protected, unprotected, *rest = item.value
    return [protected, dict(unprotected), *rest]


def platform_side_keys(message: bytes, platform: Party) -> tuple[bytes, bytes]:
    """The key and Base IV the platform derives from a message's protected header (the spec's way)."""
    protected = untag(message, 16)[0]
    assert isinstance(protected, bytes)
    header = cbor2.loads(protected)
    ephemeral = header[-1]
    public = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), b"\x04" + ephemeral[-2] + ephemeral[-3]
    )
    secret = platform.key.exchange(ec.ECDH(), public)
    return derive(secret, header[-21].decode(), int.from_bytes(header[-22], "big"), platform.kid)


def test_pycose_decrypts_and_verifies_what_we_seal(device: Party, platform: Party) -> None:
    for _ in range(50):
        sealer = Sealer("press-7", device.key, device.kid, platform.public, platform.kid, 11)
        message = sealer.seal(b'{"temperature": 21.5}', topic=TOPIC, counter=2**33 + 5, time_ns=TIME_NS)
        key, base_iv = platform_side_keys(message, platform)
        if base_iv[0]:  # see the module docstring: pycose mishandles a leading zero byte
            break
    encrypt0 = Enc0Message.from_cose_obj(untag(message, 16), allow_unknown_attributes=True)
    encrypt0.key = SymmetricKey(k=key, optional_params={"BASE_IV": base_iv})
    # pycose declares the setter after another property, so mypy sees external_aad as read-only.
    encrypt0.external_aad = TOPIC.encode()  # type: ignore[misc]
    assert encrypt0.phdr[Algorithm] == A128GCM and encrypt0.phdr[KID] == platform.kid
    assert encrypt0.uhdr[PartialIV] == (2**33 + 5).to_bytes(8, "big")
    plaintext = encrypt0.decrypt()

    sign1 = Sign1Message.from_cose_obj(untag(plaintext, 18), allow_unknown_attributes=True)
    sign1.key = cose_public(device.public)
    assert sign1.verify_signature()
    assert sign1.payload == b'{"temperature": 21.5}'
    assert sign1.phdr[Algorithm] == Es256 and sign1.phdr[KID] == device.kid
    assert {label: sign1.phdr[label] for label in (-65537, -65538, -65539, -65540, -65541)} == {
        -65537: "press-7",
        -65538: TOPIC,
        -65539: 11,
        -65540: 2**33 + 5,
        -65541: TIME_NS,
    }

    encrypt0.external_aad = b"plantwarden/another/topic"  # type: ignore[misc]
    with pytest.raises(InvalidTag):
        encrypt0.decrypt()
    sign1.key = cose_public(Party().public)
    assert not sign1.verify_signature()


def test_we_open_what_pycose_builds(device: Party, platform: Party) -> None:
    sign1 = Sign1Message(
        phdr={Algorithm: Es256, KID: device.kid, -65537: "press-7", -65538: TOPIC}
        | {-65539: 2, -65540: 41, -65541: TIME_NS},
        payload=b"pressure=1.013",
    )
    sign1.key = cose_private(device.key)
    signed = sign1.encode()

    for _ in range(50):
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        key, base_iv = derive(ephemeral.exchange(ec.ECDH(), platform.public), "press-7", 2, platform.kid)
        if base_iv[0]:
            break
    numbers = ephemeral.public_key().public_numbers()
    ephemeral_key = {1: 2, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
    encrypt0 = Enc0Message(
        phdr={Algorithm: A128GCM, KID: platform.kid, EphemeralKey: ephemeral_key}
        | {PartyUID: b"press-7", PartyUNonce: (2).to_bytes(4, "big")},
        uhdr={PartialIV: (41).to_bytes(8, "big")},
        payload=signed,
        external_aad=TOPIC.encode(),
    )
    encrypt0.key = SymmetricKey(k=key, optional_params={"BASE_IV": base_iv})
    message = encrypt0.encode()

    opened = Opener(platform.key, platform.kid).open(message, topic=TOPIC, key_for=keys(device).get)
    assert (opened.device, opened.epoch, opened.counter, opened.time_ns) == ("press-7", 2, 41, TIME_NS)
    assert opened.payload == b"pressure=1.013" and opened.kid == device.kid
