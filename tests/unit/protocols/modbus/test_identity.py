"""Read Device Identification (43/14) objects named as a device's identity."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from plantwarden.protocols.modbus import decode
from plantwarden.protocols.modbus.identity import OBJECT_NAMES, DeviceIdentity, device_identity, object_text


def response_adu(objects: list[tuple[int, bytes]]) -> bytes:
    """A 43/14 response ADU (read code 1, conformity 0x81, no more follows) with `objects`."""
    body = b"".join(bytes([object_id, len(value)]) + value for object_id, value in objects)
    pdu = bytes([43, 14, 1, 0x81, 0, 0, len(objects)]) + body
    return (7).to_bytes(2, "big") + bytes(2) + (len(pdu) + 1).to_bytes(2, "big") + b"\x01" + pdu


def test_objects_from_a_decoded_response_are_named() -> None:
    objects = [(0, b"Acme"), (1, b"AC-100"), (2, b"V2.11"), (3, b"https://acme.invalid"), (4, b"Pump"),
               (5, b"AC-100-X"), (6, b"line 3"), (0x80, b"extra")]  # fmt: skip
    message = decode(response_adu(objects), True)
    assert device_identity(message.objects) == DeviceIdentity(
        vendor_name="Acme",
        product_code="AC-100",
        major_minor_revision="V2.11",
        vendor_url="https://acme.invalid",
        product_name="Pump",
        model_name="AC-100-X",
        user_application_name="line 3",
        extended=((0x80, "extra"),),
    )


def test_padding_is_cut_and_latin_1_is_read() -> None:
    assert object_text(b"Acme  \x00\x00garbage") == "Acme"
    assert object_text("Müller".encode("latin-1")) == "Müller"
    assert object_text("Müller".encode()) == "Müller"


def test_the_first_of_a_repeated_object_is_kept_and_absent_ones_are_empty() -> None:
    identity = device_identity([(0, b"First"), (0, b"Second")])
    assert identity.vendor_name == "First"
    assert identity.product_code == ""
    assert identity
    assert not device_identity([])


@given(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=20))
def test_any_objects_give_an_identity(objects: list[tuple[int, bytes]]) -> None:
    """Each standard object is the text of its first occurrence; the others stay, in order."""
    identity = device_identity(objects)
    for object_id, name in OBJECT_NAMES.items():
        first = next((value for found, value in objects if found == object_id), b"")
        assert getattr(identity, name) == object_text(first)
    assert identity.extended == tuple((found, object_text(value)) for found, value in objects if found > 6)
