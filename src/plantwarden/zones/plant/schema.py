"""The JSON Schema of plant.yaml: the structure (keys, types, ranges) that editors check as you type.

What a schema cannot say (references between ids, overlapping subnets, addresses inside zones)
is checked by `zones.plant.build`. `plantwarden plant schema` prints this schema; docs/plant.schema.json
is the same document, kept equal by a test.
"""

from __future__ import annotations

import json
from typing import Any

from plantwarden.zones.plant.lines import ONE_LINE_PATTERN
from plantwarden.zones.plant.model import CRITICALITIES, DAYS, FOUNDATIONAL_REQUIREMENTS, OPERATIONS
from plantwarden.zones.plant.protocols import SERVICES

SCHEMA_ID = "https://plantwarden.dev/schema/plant.schema.json"

_ID = {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"}
_TEXT = {"type": "string", "maxLength": 2000}
SITE_NAME_LENGTH = 200
"""The longest site name (the store's column)."""
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_LEVEL = {"type": "integer", "minimum": 0, "maximum": 4}
_TIME = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"}
_IDS = {"type": "array", "items": _ID, "uniqueItems": True}
_IDS_OR_ONE = {"oneOf": [_ID, {**_IDS, "minItems": 1}]}


def _object(properties: dict[str, Any], required: tuple[str, ...] = (), doc: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "required": list(required),
    }
    if doc:
        schema["description"] = doc
    return schema


def _doc(schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {**schema, "description": text}


SECURITY_LEVEL = {
    "description": "Target security level: one number 0-4 for all seven foundational requirements, or "
    "the vector [" + ", ".join(FOUNDATIONAL_REQUIREMENTS) + "] of seven numbers 0-4.",
    "oneOf": [_LEVEL, {"type": "array", "items": _LEVEL, "minItems": 7, "maxItems": 7}],
}

WINDOW = _object(
    {
        "days": {"type": "array", "items": {"enum": list(DAYS)}, "minItems": 1, "uniqueItems": True},
        "start": _doc(_TIME, "Local time HH:MM (the site's time zone) the window opens."),
        "end": _doc(_TIME, "Local time HH:MM it closes; not after start: the window runs past midnight."),
    },
    ("days", "start", "end"),
    "A weekly time window.",
)

CHANNEL = _object(
    {
        "id": _doc(_ID, "Defaults to the protocol's name (with -2, -3 ... when repeated in the conduit)."),
        "protocol": {"enum": sorted(SERVICES), "description": "The service (see docs/plant-yaml.md)."},
        "transport": {"enum": ["tcp", "udp"], "description": "Defaults to the protocol's."},
        "ports": {
            "type": "array",
            "items": _PORT,
            "minItems": 1,
            "uniqueItems": True,
            "description": "Responder ports; default: the protocol's.",
        },
        "from": _doc(_IDS_OR_ONE, "The zone(s) whose hosts open connections (initiators)."),
        "to": _doc(_IDS_OR_ONE, "The zone(s) whose hosts answer (responders)."),
        "operations": {
            "type": "array",
            "items": {"enum": list(OPERATIONS)},
            "uniqueItems": True,
            "description": "Operation categories allowed; default: read and identify.",
        },
        "maintenance": _doc(_IDS, "Windows outside which program and control operations are violations."),
        "schedule": _doc(_IDS, "When set, the only windows in which the channel is open at all."),
        "clients": _doc(_IDS, "Only these assets may initiate (default: any host of the initiator zones)."),
        "servers": _doc(_IDS, "Only these assets answer (default: any host of the responder zones)."),
        "encryption": {
            "enum": ["required", "optional"],
            "description": "required: any cleartext industrial protocol seen on it is a violation.",
        },
    },
    ("protocol", "from", "to"),
    "One service that may cross the conduit, in one direction.",
)

CONDUIT = _object(
    {
        "id": _ID,
        "name": _TEXT,
        "description": _TEXT,
        "zones": {**_IDS, "minItems": 2, "description": "The zones the conduit joins (two or more)."},
        "security_level": SECURITY_LEVEL,
        "channels": {"type": "array", "items": CHANNEL, "minItems": 1},
    },
    ("id", "zones", "channels"),
    "A conduit between zones.",
)

ZONE = _object(
    {
        "id": _ID,
        "name": _TEXT,
        "description": _TEXT,
        "purdue_level": {
            "enum": [0, 1, 2, 3, 3.5, 4, 5],
            "description": "0 process, 1 basic control, 2 supervisory, 3 operations, 3.5 industrial DMZ, "
            "4 business logistics, 5 enterprise.",
        },
        "subnets": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "assets": _doc(_IDS, "Declared assets that belong to the zone even outside its subnets."),
        "essential_functions": {"type": "array", "items": _TEXT},
        "security_level": SECURITY_LEVEL,
        "segment": _doc(_ID, "The network segment of the subnets (default: default)."),
    },
    ("id", "purdue_level", "security_level"),
    "A security zone.",
)

REGISTER = _object(
    {
        "address": {"type": "integer", "minimum": 0, "maximum": 65535},
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"},
        "kind": {"enum": ["holding", "input", "coil", "discrete"]},
        "type": {"enum": ["bool", "uint16", "int16", "uint32", "int32", "float32"]},
        "word_order": {"enum": ["big", "little"], "description": "Of 32-bit values (default big)."},
        "unit": _TEXT,
        "scale": {"type": "number", "exclusiveMinimum": 0, "description": "raw = value x scale"},
        "safe_range": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "writers": _doc(_IDS, "Roles that may write the register (none: read-only)."),
        "max_change": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "The most a write through the gateway may change the value in a second"
            " (engineering units; holding registers).",
        },
        "counter": {
            "type": "boolean",
            "description": "true: a count that rises and is reset or wraps around (items made), left out"
            " of the process models; false: a measurement, modelled even if it only rises while they"
            " learn; absent: judged by its learning values.",
        },
    },
    ("address", "name", "kind", "type"),
    "One entry of a register map.",
)

ASSET = _object(
    {
        "id": _ID,
        "name": _TEXT,
        "description": _TEXT,
        "address": {"type": "string"},
        "addresses": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
        "zone": _doc(_ID, "Default: the zone whose subnet holds the address."),
        "criticality": {"enum": list(CRITICALITIES), "description": "critical: a crown jewel."},
        "gateway_only": {"type": "boolean", "description": "Only the site's gateways may reach it."},
        "unit_id": {
            "type": "integer",
            "minimum": 0,
            "maximum": 255,
            "description": "The Modbus unit id it answers: 1-247, or 255 for a Modbus/TCP device that"
            " takes none (0 is broadcast, 248-254 reserved). Behind a site's one gateway, each of"
            " several gateway_only assets needs its own.",
        },
        "registers": {"type": "array", "items": REGISTER},
        "rate_limits": {
            "type": "object",
            "propertyNames": _ID,
            "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
            "description": "Role: requests a second each client of the role may send it through the"
            " gateway (bursts of twice that).",
        },
    },
    ("id",),
    "An asset known in advance.",
)

RIGHT = _object(
    {
        "role": _ID,
        "zones": {**_IDS, "minItems": 1},
        "operations": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "description": "Plant operations: modbus.write, *.read, s7comm.program, *.* ...",
        },
        "assets": _IDS,
        "registers": {
            "type": "array",
            "items": {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]},
            "description": "Addresses (12) or inclusive ranges ('0-99').",
        },
        "requires_training": {"type": "boolean"},
        "requires_approval": {"type": "boolean"},
    },
    ("role", "zones", "operations"),
    "What a role may do in zones.",
)

BINDING = _object(
    {"address": {"type": "string"}, "role": _ID, "zone": _ID, "description": _TEXT},
    ("address", "role"),
    "A legacy client, by address, acting in a role.",
)

SITE = _object(
    {
        "id": _ID,
        "name": _doc(
            {"type": "string", "maxLength": SITE_NAME_LENGTH, "pattern": ONE_LINE_PATTERN},
            "One line of printable characters (no line break, tab, control or format character, no space"
            " but the plain one), at most 200 characters.",
        ),
        "timezone": {"type": "string", "description": "IANA time zone of the windows (default UTC)."},
        "gateways": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "windows": {"type": "object", "propertyNames": _ID, "additionalProperties": WINDOW},
        "zones": {"type": "array", "items": ZONE, "minItems": 1},
        "conduits": {"type": "array", "items": CONDUIT},
        "assets": {"type": "array", "items": ASSET},
        "rights": {"type": "array", "items": RIGHT},
        "bindings": {"type": "array", "items": BINDING},
    },
    ("id", "zones"),
    "A site of the plant.",
)

PLANT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "Plantwarden plant model (plant.yaml)",
    **_object(
        {"version": {"const": 1}, "sites": {"type": "array", "items": SITE, "minItems": 1}},
        ("version", "sites"),
    ),
}


def schema_text() -> str:
    """The schema as indented JSON (what docs/plant.schema.json holds)."""
    return json.dumps(PLANT_SCHEMA, indent=2) + "\n"
