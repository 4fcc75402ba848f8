"""Read Device Identification (function 43, MEI type 14) objects as a device's identity.

The exact decoder (`responses.encapsulated_interface`) already reads a 43/14 response's object
list into `ModbusMessage.objects` as (object id, bytes). This names them, per the Modbus
Application Protocol V1.1b3 section 6.21 table: basic objects 0x00 VendorName, 0x01 ProductCode,
0x02 MajorMinorRevision (mandatory), regular objects 0x03 VendorUrl, 0x04 ProductName,
0x05 ModelName, 0x06 UserApplicationName (optional). Extended objects (0x80-0xFF) are vendor
specific and kept only by id.

Values are the object's bytes as text: UTF-8 where they are valid UTF-8 (the specification says
ASCII strings; some devices send Latin-1), else Latin-1, with trailing NUL bytes and spaces
stripped (devices pad fixed-size buffers; Wireshark shows the string up to its first NUL).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

VENDOR_NAME, PRODUCT_CODE, MAJOR_MINOR_REVISION = 0x00, 0x01, 0x02
VENDOR_URL, PRODUCT_NAME, MODEL_NAME, USER_APPLICATION_NAME = 0x03, 0x04, 0x05, 0x06
FIRST_EXTENDED = 0x80

OBJECT_NAMES: dict[int, str] = {
    VENDOR_NAME: "vendor_name",
    PRODUCT_CODE: "product_code",
    MAJOR_MINOR_REVISION: "major_minor_revision",
    VENDOR_URL: "vendor_url",
    PRODUCT_NAME: "product_name",
    MODEL_NAME: "model_name",
    USER_APPLICATION_NAME: "user_application_name",
}
"""The standard objects' names (Modbus Application Protocol V1.1b3, 6.21)."""


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """What one 43/14 response says of its device; "" for an object it did not carry."""

    vendor_name: str = ""
    product_code: str = ""
    major_minor_revision: str = ""
    vendor_url: str = ""
    product_name: str = ""
    model_name: str = ""
    user_application_name: str = ""
    extended: tuple[tuple[int, str], ...] = field(default=())
    """Objects 0x07 and above (reserved, then vendor-specific extended), by id, in wire order."""

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in OBJECT_NAMES.values()) or bool(self.extended)


def object_text(value: bytes) -> str:
    """An object's bytes as text: UTF-8 if valid, else Latin-1; trailing NULs and spaces cut.

    A NUL inside the value ends it (a C string in a padded buffer), as Wireshark shows it."""
    value = value.split(b"\x00", 1)[0]
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    return text.rstrip(" ")


def device_identity(objects: Iterable[tuple[int, bytes]]) -> DeviceIdentity:
    """The identity the objects of a 43/14 response state (object id, value bytes); when an
    object id comes twice the first is kept (a device answering one read in two parts does not
    repeat one, a confused one should not overwrite the first)."""
    named: dict[str, str] = {}
    extended: list[tuple[int, str]] = []
    for object_id, value in objects:
        text = object_text(value)
        name = OBJECT_NAMES.get(object_id)
        if name is None:
            extended.append((object_id, text))
        elif name not in named:
            named[name] = text
    return DeviceIdentity(**named, extended=tuple(extended))
