"""Values written in rules and examples, checked against a field's type and turned into Python.

Integers may be written in hex (`0x29`; the YAML reader keeps them as text), enumerations by
name (`modbus`, `write`) or code, addresses as IP or CIDR (a single IP is a one-address network),
roles by the inventory's names, booleans as true/false.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any

from plantwarden.core.records.schema import address
from plantwarden.detection.rules.fields import (
    OPERATION_NAMES,
    PROTOCOL_NAMES,
    ROLES,
    Field,
    FieldType,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_HEX = re.compile(r"^[-+]?0[xX][0-9a-fA-F]+$")


class ValueProblem(ValueError):
    """A value that does not fit its field (the message says why, in the rule writer's terms)."""


def rule_value(field: Field, value: Any) -> Any:
    """A value of a selection: an int, float, str, bool, or an address network."""
    kind = field.type
    if kind is FieldType.ADDRESS:
        return network(field, value)
    return _scalar(field, value)


def example_value(field: Field, value: Any) -> Any:
    """A value of an example record: like `rule_value`, but an address is one host (16 bytes)."""
    if field.type is FieldType.ADDRESS:
        if not isinstance(value, str):
            raise ValueProblem(f"{field.name} must be an IP address, not {value!r}")
        try:
            return address(value)
        except ValueError:
            raise ValueProblem(f"{field.name}: {value!r} is not an IP address") from None
    return _scalar(field, value)


def network(field: Field, value: Any) -> Network:
    """An IP address or CIDR block (host bits must be zero: 10.0.0.0/8, not 10.0.0.5/8)."""
    if not isinstance(value, str):
        raise ValueProblem(f"{field.name} takes an IP address or a CIDR block, not {value!r}")
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as error:
        raise ValueProblem(f"{field.name}: {value!r} is not an IP address or CIDR block ({error})") from None


def _scalar(field: Field, value: Any) -> Any:
    kind = field.type
    if kind is FieldType.INT:
        return integer(field, value)
    if kind is FieldType.FLOAT:
        return number(field, value)
    if kind is FieldType.BOOL:
        if not isinstance(value, bool):
            raise ValueProblem(f"{field.name} is true or false, not {value!r}")
        return value
    if kind is FieldType.TEXT:
        if not isinstance(value, str):
            raise ValueProblem(f"{field.name} is text; write {value!r} in quotes")
        return value
    if kind is FieldType.ROLE:
        if value not in ROLES:
            raise ValueProblem(f"{field.name} is one of {', '.join(ROLES)}, not {value!r}")
        return value
    names = PROTOCOL_NAMES if kind is FieldType.PROTOCOL else OPERATION_NAMES
    return _enumerated(field, value, names)


def integer(field: Field, value: Any) -> int:
    """An integer, in decimal or hex (`0x29`)."""
    if isinstance(value, str) and _HEX.fullmatch(value.strip()):
        return int(value.strip(), 16)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueProblem(f"{field.name} is a whole number (decimal or 0x hex), not {value!r}")
    return value


def number(field: Field, value: Any) -> float:
    """A number (integers and hex allowed; not NaN)."""
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueProblem(f"{field.name}: NaN matches nothing; leave the field out instead")
        return value
    return float(integer(field, value))


def _enumerated(field: Field, value: Any, names: dict[str, int] | Any) -> int:
    if isinstance(value, str) and value.lower() in names:
        return int(names[value.lower()])
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        return value
    if isinstance(value, str) and _HEX.fullmatch(value.strip()):
        return _enumerated(field, int(value.strip(), 16), names)
    raise ValueProblem(f"{field.name} is one of {', '.join(names)} (or a code 0-255), not {value!r}")
