"""The fields a rule may name: the columns of its record kind and the fields the engine derives.

Each field has a type that says which values and modifiers it takes: numbers (`int`, `float`),
addresses (IP or CIDR), text, the two enumerations (`protocol`, `operation`, by name or code),
the inventory's roles, and booleans (`maintenance`, `malformed`, `out_of_range`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType

from plantwarden.core.records.schema import (
    ADDRESS_DTYPE,
    FLOWS,
    PROTOCOL_RECORDS,
    READ_MINUTES,
    TEXT,
    Operation,
    Protocol,
    RecordKind,
)


class FieldType(enum.Enum):
    INT = "int"
    FLOAT = "float"
    ADDRESS = "address"
    TEXT = "text"
    PROTOCOL = "protocol"
    OPERATION = "operation"
    ROLE = "role"
    BOOL = "bool"


ROLES = (
    "plc",
    "hmi",
    "engineering_workstation",
    "historian",
    "it_host",
    "iot_device",
    "network_device",
    "unknown",
)
"""The inventory's roles (`inventory.roles.Role`), in the order of their codes."""
ROLE_CODES = MappingProxyType({name: code for code, name in enumerate(ROLES)})
UNKNOWN_ROLE = ROLE_CODES["unknown"]
PROTOCOL_NAMES = MappingProxyType({p.name.lower(): int(p) for p in Protocol})
OPERATION_NAMES = MappingProxyType({o.name.lower(): int(o) for o in Operation})
DERIVED = ("src_role", "dst_role", "maintenance", "malformed", "out_of_range")
RULE_KINDS = MappingProxyType({k.name: k for k in (PROTOCOL_RECORDS, READ_MINUTES, FLOWS)})
ORDERED = frozenset({FieldType.INT, FieldType.FLOAT})
"""Types that take gte, gt, lte, lt and range."""


@dataclass(frozen=True, slots=True)
class Field:
    """A field of a rule's record kind: a column, or derived by the engine."""

    name: str
    type: FieldType
    derived: bool = False


def _column_type(kind: RecordKind, name: str) -> FieldType:
    if name == "protocol":
        return FieldType.PROTOCOL
    if name == "operation":
        return FieldType.OPERATION
    dtype = kind.dtype_of(name)
    if dtype == ADDRESS_DTYPE:
        return FieldType.ADDRESS
    if dtype == TEXT:
        return FieldType.TEXT
    return FieldType.FLOAT if dtype.kind == "f" else FieldType.INT


def fields_of(kind: RecordKind) -> dict[str, Field]:
    """Every field a rule over `kind` may name."""
    found = {name: Field(name, _column_type(kind, name)) for name in kind.names}
    found["src_role"] = Field("src_role", FieldType.ROLE, derived=True)
    found["dst_role"] = Field("dst_role", FieldType.ROLE, derived=True)
    found["maintenance"] = Field("maintenance", FieldType.BOOL, derived=True)
    if kind is PROTOCOL_RECORDS:
        found["malformed"] = Field("malformed", FieldType.BOOL, derived=True)
        found["out_of_range"] = Field("out_of_range", FieldType.BOOL, derived=True)
    return found


FIELDS = MappingProxyType({name: fields_of(kind) for name, kind in RULE_KINDS.items()})
