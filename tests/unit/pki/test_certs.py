"""Device certificates: the identity written and read back, the role extension's DER (checked by
openssl as an independent reader), the chain verified by openssl, and the CSR checks."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from plantwarden.core.clock import FixedClock
from plantwarden.pki.authority import CertificateAuthority
from plantwarden.pki.certs import (
    DeviceIdentity,
    check_csr,
    device_certificate,
    fingerprint,
    identity_of,
    load_csr,
    renewal_starts,
    role_of,
)
from plantwarden.pki.errors import InvalidRequest
from plantwarden.pki.role_extension import ROLE_OID, decode_role, encode_role
from tests.unit.pki.support import device_key, make_csr, openssl, pem, write

ASSET = uuid.UUID("0190f0a0-0000-7000-8000-000000000001")


def certificate(
    ca: CertificateAuthority, clock: FixedClock, identity: DeviceIdentity, **extra: timedelta
) -> x509.Certificate:
    key = device_key().public_key()
    return device_certificate(
        identity, key, issuer=ca.issuing, issuer_key=ca.issuing_key, now=clock.now(), **extra
    )


def test_the_identity_round_trips_through_the_certificate(
    ca: CertificateAuthority, clock: FixedClock
) -> None:
    identity = DeviceIdentity("plant-a", "plc-1", "cell-1", "operator", ASSET)
    cert = certificate(ca, clock, identity)
    assert identity_of(cert) == identity
    assert cert.subject.rfc4514_string() == "CN=plc-1,OU=cell-1,O=plant-a"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:plantwarden:plant-a:device:plc-1",
        f"urn:uuid:{ASSET}",
    ]
    assert cert.not_valid_after_utc - clock.now() == timedelta(days=90)
    assert fingerprint(cert) == cert.fingerprint(hashes.SHA256()) and len(fingerprint(cert)) == 32
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_agreement and not usage.key_cert_sign
    start = cert.not_valid_before_utc
    assert renewal_starts(cert) == start + (cert.not_valid_after_utc - start) * 2 / 3


def test_without_a_role_there_is_no_role_extension(ca: CertificateAuthority, clock: FixedClock) -> None:
    cert = certificate(ca, clock, DeviceIdentity("plant-a", "sensor-7", "cell-1"))
    assert role_of(cert) is None
    assert ROLE_OID not in [e.oid for e in cert.extensions]
    assert identity_of(cert).role is None


def test_openssl_reads_the_role_as_one_utf8string_and_verifies_the_chain(
    ca: CertificateAuthority, clock: FixedClock, tmp_path: Path
) -> None:
    cert = certificate(ca, clock, DeviceIdentity("plant-a", "hmi-2", "control", "Bediener-Ä"))
    cert_file = write(tmp_path / "device.pem", pem(cert))
    text = openssl("x509", "-in", str(cert_file), "-noout", "-text").stdout
    assert "1.3.6.1.4.1.50316.802.1:" in text
    assert "URI:urn:plantwarden:plant-a:device:hmi-2" in text
    assert "TLS Web Client Authentication" in text
    parsed = openssl("asn1parse", "-in", str(cert_file)).stdout.splitlines()
    at = next(i for i, line in enumerate(parsed) if ":1.3.6.1.4.1.50316.802.1" in line)
    offset = parsed[at + 1].split(":")[0].strip()  # the OCTET STRING that wraps the value
    inner = openssl("asn1parse", "-in", str(cert_file), "-strparse", offset).stdout
    assert re.search(r"d=0\s+hl=2 l=\s*11 prim: UTF8STRING\s+:Bediener-Ä$", inner.strip()), inner
    assert inner.count("prim:") == 1
    root = write(tmp_path / "root.pem", pem(ca.root))
    issuing = write(tmp_path / "issuing.pem", pem(ca.issuing))
    when = str(int(clock.now().timestamp()))
    verified = openssl(
        "verify", "-attime", when, "-CAfile", str(root), "-untrusted", str(issuing), str(cert_file)
    )
    assert verified.stdout.strip() == f"{cert_file}: OK"
    alone = openssl("verify", "-attime", when, "-CAfile", str(root), str(cert_file), check=False)
    assert alone.returncode != 0  # the issuing CA is needed: the root did not sign it directly


def test_a_long_role_gets_a_long_form_length() -> None:
    role = "r" * 200
    der = encode_role(role)
    assert der[:3] == bytes([0x0C, 0x81, 200])
    assert decode_role(der) == role


@pytest.mark.parametrize(
    ("der", "reason"),
    [
        (b"", "empty"),
        (bytes([0x30, 0x06, 0x0C, 0x01, 0x61, 0x0C, 0x01, 0x62]), "list of values"),
        (bytes([0x0C, 0x01, 0x61, 0x0C, 0x01, 0x62]), "more than one value"),
        (bytes([0x13, 0x01, 0x61]), "not a UTF8String"),
        (bytes([0x0C, 0x05, 0x61]), "truncated"),
        (bytes([0x0C, 0x81, 0x01, 0x61]), "DER"),
        (bytes([0x0C, 0x02, 0xC3, 0x28]), "UTF-8"),
        (bytes([0x0C, 0x00]), "non-empty"),
    ],
)
def test_malformed_role_extensions_are_refused_with_the_reason(der: bytes, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        decode_role(der)


def test_role_of_refuses_a_certificate_with_two_roles(ca: CertificateAuthority, clock: FixedClock) -> None:
    key = device_key()
    roles = encode_role("admin") + encode_role("operator")
    two = bytes([0x30, len(roles)]) + roles  # a SEQUENCE of two UTF8Strings
    cert = (
        x509.CertificateBuilder()
        .subject_name(ca.issuing.subject)
        .issuer_name(ca.issuing.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(clock.now())
        .not_valid_after(clock.now() + timedelta(days=1))
        .add_extension(x509.UnrecognizedExtension(ROLE_OID, two), critical=False)
        .sign(ca.issuing_key, hashes.SHA256())
    )
    with pytest.raises(InvalidRequest, match="exactly one role"):
        role_of(cert)


def test_identity_names_are_checked() -> None:
    with pytest.raises(InvalidRequest, match="site 'plant:a'"):
        DeviceIdentity("plant:a", "plc-1", "cell")
    with pytest.raises(InvalidRequest, match="role"):
        DeviceIdentity("plant-a", "plc-1", "cell", " admin")


def test_a_csr_must_verify_and_hold_a_p256_key() -> None:
    good = make_csr()
    assert isinstance(check_csr(good), ec.EllipticCurvePublicKey)
    assert load_csr(pem(good)) == good
    assert load_csr(good.public_bytes(serialization.Encoding.DER)) == good
    p384 = make_csr(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(InvalidRequest, match=r"secp384r1.*P-256"):
        check_csr(p384)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_csr = (
        x509.CertificateSigningRequestBuilder().subject_name(good.subject).sign(rsa_key, hashes.SHA256())
    )
    with pytest.raises(InvalidRequest, match=r"RSAPublicKey.*P-256"):
        check_csr(rsa_csr)
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # break the signature
    with pytest.raises(InvalidRequest, match="signature does not verify"):
        check_csr(load_csr(bytes(der)))
    with pytest.raises(InvalidRequest, match=r"not DER \(binary ASN.1\) of a CSR, or cut short"):
        load_csr(good.public_bytes(serialization.Encoding.DER)[:60])
    with pytest.raises(InvalidRequest, match=r"not a certificate signing request.*its base64 does not hold"):
        load_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", "not PEM, and not DER"),  # a pcap header
        (b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB", "the PEM block is cut short"),
    ],
)
def test_a_file_that_is_no_csr_is_refused_in_words(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        load_csr(data)
    assert reason in raised.value.message and "ParseError" not in raised.value.message
