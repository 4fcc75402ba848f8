"""A CIP identity as the texts tshark shows."""

from __future__ import annotations

import pytest

from plantwarden.protocols.enip import Identity
from plantwarden.protocols.enip.identity import (
    IdentityObjectError,
    identity_object,
    identity_text,
    revision_text,
)


def test_identity_text_is_tsharks() -> None:
    identity = Identity(1, 44818, "10.1.1.164", 1, 12, 58, 4, 3, 0x30, 0x00524D8E, "1756-ENBT/A\x00 ", 3)
    text = identity_text(identity)
    assert text.vendor == "Rockwell Automation/Allen-Bradley"
    assert (text.vendor_id, text.device_type, text.product_code) == ("0x0001", "12", "58")
    assert (text.revision, text.serial_number, text.product_name) == ("4.03", "0x00524d8e", "1756-ENBT/A")


def test_unknown_vendor_keeps_its_id_only() -> None:
    identity = Identity(1, 0, "0.0.0.0", 0x1234, 0, 0, 1, 12, 0, 0, "", 0)
    assert identity_text(identity).vendor == ""
    assert identity_text(identity).vendor_id == "0x1234"
    assert revision_text(20, 11) == "20.11"


def test_identity_object_from_a_get_attributes_all_reply() -> None:
    data = bytes.fromhex("01000e003600101460303f82510014") + b"1756-L61/B LOGIX5561" + b"\x03"
    identity = identity_object(data)
    text = identity_text(identity)
    assert (identity.vendor_id, identity.device_type, identity.product_code) == (1, 14, 54)
    assert (text.revision, text.serial_number, text.product_name) == (
        "16.20",
        "0x0051823f",
        "1756-L61/B LOGIX5561",
    )
    assert identity.state == 3
    assert identity_object(data[:-1]).state == -1


def test_a_short_identity_object_raises() -> None:
    with pytest.raises(IdentityObjectError, match="needs 15 bytes"):
        identity_object(bytes(10))
    with pytest.raises(IdentityObjectError, match="past the reply"):
        identity_object(bytes(14) + b"\x05ab")
