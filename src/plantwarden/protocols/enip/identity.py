"""A CIP Identity (ListIdentity reply item, Vol. 2 2-4.3.1; Identity object class 0x01, Vol. 1
5A-2) as the texts an asset inventory keeps.

The exact decoder reads a ListIdentity item into `messages.Identity`; `identity_object` reads
the same fields from a Get_Attributes_All reply of the Identity object (its attributes 1-7 in
order: vendor id, device type, product code, revision, status, serial number, product name as
a SHORT_STRING, then the state if sent). A reply does not name its class: the caller pairs it
with its request. `identity_text` writes the fields the way
Wireshark shows them, so that an inventory and a tshark dissection of the same packet agree:
the revision as "major.minor" with two minor digits ("4.03"), the vendor id and serial number
as zero-padded hexadecimal ("0x0001", "0x00524d8e"), device type and product code in decimal.
The vendor's name comes from `VENDOR_NAMES`, a short excerpt of ODVA's vendor id list (the
vendors of most controllers and adapters seen in plants); other vendors keep their id only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from plantwarden.protocols.enip.messages import Identity

VENDOR_NAMES: dict[int, str] = {
    1: "Rockwell Automation/Allen-Bradley",
    5: "Rockwell Automation/Reliance Elec.",
    8: "Molex Incorporated",
    26: "Festo Corporation",
    40: "Wago Corporation",
    44: "Yaskawa Electric America, Inc.",
    47: "Omron Corporation",
    68: "Eaton Electrical",
    82: "Mitsubishi Electric Automation, Inc.",
    90: "HMS Industrial Networks AB",
    108: "Beckhoff Automation GmbH",
    145: "Siemens Energy & Automation/Drives",
    243: "Schneider Automation, Inc.",
    322: "ifm efector, inc.",
    367: "Keyence Corporation",
}
"""ODVA vendor ids of common industrial vendors, with the names the ODVA list gives them."""


@dataclass(frozen=True, slots=True)
class IdentityText:
    """A CIP identity's fields as text; `vendor` is "" for a vendor id not in `VENDOR_NAMES`."""

    vendor: str
    vendor_id: str
    device_type: str
    product_code: str
    revision: str
    serial_number: str
    product_name: str


IDENTITY_CLASS = 0x01
IDENTITY_FIXED = 14
"""Get_Attributes_All reply of the Identity object, up to the product name's length byte."""
_FIXED = struct.Struct("<HHHBBHI")


class IdentityObjectError(ValueError):
    """A Get_Attributes_All reply too short for the Identity object's attributes 1-7."""


def identity_object(data: bytes) -> Identity:
    """The Identity object's attributes from a Get_Attributes_All reply's data (Vol. 1 5A-2.2);
    the socket fields of a ListIdentity item are absent (-1, "")."""
    if len(data) < IDENTITY_FIXED + 1:
        raise IdentityObjectError(f"an Identity object needs {IDENTITY_FIXED + 1} bytes, not {len(data)}")
    vendor, device, product, major, minor, status, serial = _FIXED.unpack_from(data, 0)
    name_end = IDENTITY_FIXED + 1 + data[IDENTITY_FIXED]
    if name_end > len(data):
        raise IdentityObjectError(f"the product name runs {name_end - len(data)} bytes past the reply")
    name = data[IDENTITY_FIXED + 1 : name_end].decode("latin-1")
    state = data[name_end] if name_end < len(data) else -1
    return Identity(-1, -1, "", vendor, device, product, major, minor, status, serial, name, state)


def revision_text(major: int, minor: int) -> str:
    """A CIP revision as Wireshark writes it: "4.03" for major 4, minor 3."""
    return f"{major}.{minor:02d}"


def identity_text(identity: Identity) -> IdentityText:
    """The texts of one CIP identity (the product name with trailing NULs and spaces cut)."""
    return IdentityText(
        vendor=VENDOR_NAMES.get(identity.vendor_id, ""),
        vendor_id=f"0x{identity.vendor_id:04x}",
        device_type=str(identity.device_type),
        product_code=str(identity.product_code),
        revision=revision_text(identity.revision_major, identity.revision_minor),
        serial_number=f"0x{identity.serial_number:08x}",
        product_name=identity.product_name.split("\x00", 1)[0].rstrip(" "),
    )
