"""Validating OCSF events against the pinned schema shipped with the package (no network needed).

The pinned schema is `schema/ocsf-<version>.json` (a subset of the OCSF schema server's export)
merged with Plantwarden's extension, `schema/plantwarden-extension.json`. `validate_event`
checks what the schema states: required attributes (of the classes, of every nested object, of
the profiles the event declares), unknown attributes, data types (with their patterns, lengths
and ranges), enum values, `at_least_one` / `just_one` constraints, enum siblings, `type_uid`,
and that profile and extension attributes are declared in `metadata`.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeGuard

OCSF_VERSION = "1.3.0"
OTHER = "99"  # the enum value whose sibling string holds a source-specific value
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

Definition = Mapping[str, Any]


@dataclass(frozen=True)
class Extension:
    """A schema extension as events declare it in `metadata.extensions`."""

    name: str
    uid: str
    version: str

    def declaration(self) -> dict[str, str]:
        """The `extension` object naming this extension."""
        return {"name": self.name, "uid": self.uid, "version": self.version}


@dataclass(frozen=True)
class OcsfSchema:
    """Classes (by name), objects (by name) and types of one OCSF version, with one extension merged."""

    version: str
    types: Mapping[str, Definition]
    classes: Mapping[str, Definition]
    objects: Mapping[str, Definition]
    extension: Extension

    def class_of(self, class_uid: Any) -> Definition | None:
        """The class with this `class_uid`, or None."""
        return next((c for c in self.classes.values() if c["uid"] == class_uid and _is_int(class_uid)), None)

    def definition(self, name: str) -> Definition:
        """The class or object called `name`."""
        found = self.classes.get(name) or self.objects.get(name)
        if found is None:
            raise KeyError(f"OCSF {self.version} (as pinned) has no class or object {name!r}")
        return found

    def caption(self, owner: str, attribute: str, value: int | str) -> str:
        """The caption of enum `value` of `attribute` of the class or object `owner`."""
        caption: str = self.definition(owner)["attributes"][attribute]["enum"][str(value)]["caption"]
        return caption


def _load(name: str) -> Any:
    return json.loads(resources.files("plantwarden.exports.schema").joinpath(name).read_text("utf-8"))


@functools.cache
def pinned_schema() -> OcsfSchema:
    """The pinned OCSF schema with Plantwarden's extension merged (loaded once)."""
    return merge(_load(f"ocsf-{OCSF_VERSION}.json"), _load("plantwarden-extension.json"))


def merge(core: Mapping[str, Any], extension: Mapping[str, Any]) -> OcsfSchema:
    """`core` with the extension's objects added and its attributes patched into the core classes."""
    classes = copy.deepcopy(dict(core["classes"]))
    for name, patch in extension["classes"].items():
        clashes = set(patch["attributes"]) & set(classes[name]["attributes"])
        if clashes:
            raise ValueError(f"extension {extension['name']} redefines {sorted(clashes)} of {name}")
        classes[name]["attributes"].update(copy.deepcopy(patch["attributes"]))
    declared = Extension(extension["name"], extension["uid"], extension["version"])
    objects = {**core["objects"], **extension["objects"]}
    return OcsfSchema(core["version"], core["types"], classes, objects, declared)


def validate_event(event: Any, schema: OcsfSchema | None = None) -> list[str]:
    """Every problem of `event` against the pinned schema, as `path: what is wrong` (empty: valid)."""
    schema = schema or pinned_schema()
    if not isinstance(event, Mapping):
        return [f"(event): an event is a JSON object, not {_describe(event)}"]
    definition = schema.class_of(event.get("class_uid"))
    if definition is None:
        known = ", ".join(f"{c['uid']} ({c['caption']})" for c in schema.classes.values())
        return [
            f"class_uid: {_describe(event.get('class_uid'))} is not a class of the pinned schema ({known})"
        ]
    checker = _Checker(schema, _declared(event, "profiles"), _declared(event, "extensions"))
    checker.object("", event, definition)
    checker.classification(event, definition["uid"])
    checker.metadata(event)
    return checker.problems


def _declared(event: Mapping[str, Any], key: str) -> set[str]:
    metadata = event.get("metadata")
    values = metadata.get(key) if isinstance(metadata, Mapping) else None
    if not isinstance(values, list):
        return set()
    if key == "extensions":
        values = [v.get("name") for v in values if isinstance(v, Mapping)]
    return {v for v in values if isinstance(v, str)}


class _Checker:
    """Walks one event along its class definition and collects the problems."""

    def __init__(self, schema: OcsfSchema, profiles: set[str], extensions: set[str]) -> None:
        self.schema = schema
        self.profiles = profiles
        self.extensions = extensions
        self.problems: list[str] = []

    def problem(self, path: str, text: str) -> None:
        self.problems.append(f"{path or '(event)'}: {text}")

    def object(self, path: str, value: Any, definition: Definition) -> None:
        if not isinstance(value, Mapping):
            self.problem(path, f"expected an object ({definition['caption']}), got {_describe(value)}")
            return
        if definition["name"] == "object":
            return  # the generic object (for example `unmapped`) holds anything
        self.required(path, value, definition["attributes"])
        for name, item in value.items():
            self.member(_join(path, name), item, definition, name)
        self.constraints(path, value, definition.get("constraints") or {})
        self.siblings(path, value, definition["attributes"])

    def required(self, path: str, value: Mapping[str, Any], attributes: Definition) -> None:
        for name, attribute in attributes.items():
            applies = attribute.get("profile") is None or attribute["profile"] in self.profiles
            if attribute.get("requirement") == "required" and applies and name not in value:
                self.problem(_join(path, name), "required attribute is missing")

    def member(self, path: str, item: Any, definition: Definition, name: str) -> None:
        attribute = definition["attributes"].get(name)
        if attribute is None:
            self.problem(path, f"not an attribute of {definition['caption']}")
        elif self.allowed(path, attribute):
            self.attribute(path, item, attribute)

    def allowed(self, path: str, attribute: Definition) -> bool:
        profile, extension = attribute.get("profile"), attribute.get("extension")
        if profile is not None and profile not in self.profiles:
            self.problem(path, f"belongs to profile {profile!r}, which metadata.profiles does not declare")
            return False
        if extension is not None and extension not in self.extensions:
            self.problem(
                path, f"belongs to extension {extension!r}, which metadata.extensions does not declare"
            )
            return False
        return True

    def attribute(self, path: str, item: Any, attribute: Definition) -> None:
        if not attribute.get("is_array"):
            self.scalar(path, item, attribute)
        elif not isinstance(item, list):
            self.problem(path, f"expected an array of {_type_label(attribute)}, got {_describe(item)}")
        else:
            for index, element in enumerate(item):
                self.scalar(f"{path}[{index}]", element, attribute)

    def scalar(self, path: str, item: Any, attribute: Definition) -> None:
        if item is None:
            self.problem(path, "null is not a value (leave the attribute out instead)")
        elif attribute["type"] == "object_t":
            self.object(path, item, self.schema.objects[attribute["object_type"]])
        elif self.typed(path, item, attribute["type"]):
            self.enum(path, item, attribute)

    def typed(self, path: str, item: Any, type_name: str) -> bool:
        """Whether `item` is a value of `type_name` (reporting why not)."""
        definition = self.schema.types[type_name]
        base = definition.get("type")
        if base is not None and not self.typed(path, item, base):
            return False
        if base is None and not _PRIMITIVES[type_name](item):
            self.problem(
                path, f"expected {type_name} ({_PRIMITIVE_LABELS[type_name]}), got {_describe(item)}"
            )
            return False
        failure = _refinement_failure(item, definition)
        if failure:
            self.problem(path, f"not a valid {type_name}: {failure}")
        return not failure

    def enum(self, path: str, item: Any, attribute: Definition) -> None:
        values = attribute.get("enum")
        if values and str(item) not in values:
            listed = ", ".join(f"{k} ({v['caption']})" for k, v in sorted(values.items(), key=_enum_order))
            self.problem(path, f"{item!r} is not one of {listed}")

    def constraints(self, path: str, value: Mapping[str, Any], constraints: Definition) -> None:
        for kind, names in constraints.items():
            present = [n for n in names if value.get(n) is not None]
            if kind == "at_least_one" and not present:
                self.problem(path, f"needs at least one of {', '.join(names)}")
            if kind == "just_one" and len(present) != 1:
                self.problem(path, f"needs exactly one of {', '.join(names)}, has {len(present)}")

    def siblings(self, path: str, value: Mapping[str, Any], attributes: Definition) -> None:
        for name, attribute in attributes.items():
            sibling, values, chosen = attribute.get("sibling"), attribute.get("enum"), value.get(name)
            text = value.get(sibling) if sibling else None
            if not values or text is None or str(chosen) not in values or str(chosen) == OTHER:
                continue
            if text != values[str(chosen)]["caption"]:
                caption = values[str(chosen)]["caption"]
                self.problem(_join(path, sibling), f"{text!r} does not match {name} {chosen} ({caption!r})")

    def classification(self, event: Mapping[str, Any], class_uid: int) -> None:
        activity, type_uid = event.get("activity_id"), event.get("type_uid")
        if _is_int(activity) and _is_int(type_uid) and type_uid != class_uid * 100 + activity:
            expected = class_uid * 100 + activity
            self.problem("type_uid", f"{type_uid} is not class_uid * 100 + activity_id ({expected})")

    def metadata(self, event: Mapping[str, Any]) -> None:
        metadata = event.get("metadata")
        if not isinstance(metadata, Mapping):
            return
        if isinstance(metadata.get("version"), str) and metadata["version"] != self.schema.version:
            self.problem(
                "metadata.version", f"{metadata['version']!r}, but the pinned schema is {self.schema.version}"
            )
        expected = self.schema.extension.declaration()
        for index, declared in enumerate(metadata.get("extensions") or []):
            if (
                isinstance(declared, Mapping)
                and declared.get("name") == expected["name"]
                and declared != expected
            ):
                self.problem(f"metadata.extensions[{index}]", f"{dict(declared)} does not match {expected}")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _within(value: Any, bounds: tuple[int, int]) -> bool:
    return _is_int(value) and bounds[0] <= value <= bounds[1]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_PRIMITIVES: dict[str, Callable[[Any], bool]] = {
    "string_t": lambda v: isinstance(v, str),
    "integer_t": lambda v: _within(v, INT32),
    "long_t": lambda v: _within(v, INT64),
    "float_t": _is_number,
    "boolean_t": lambda v: isinstance(v, bool),
    "json_t": lambda v: True,
}
_PRIMITIVE_LABELS = {
    "string_t": "a string",
    "integer_t": "a 32-bit integer",
    "long_t": "a 64-bit integer",
    "float_t": "a finite number",
    "boolean_t": "true or false",
    "json_t": "any JSON value",
}


def _refinement_failure(item: Any, definition: Definition) -> str:
    """Why `item` breaks the pattern, length or range of a type ("" if it does not)."""
    if "regex" in definition and isinstance(item, str) and not re.search(definition["regex"], item):
        return f"{item!r} does not match the type's pattern"
    if "max_len" in definition and isinstance(item, str) and len(item) > definition["max_len"]:
        return f"longer than {definition['max_len']} characters"
    low, high = definition.get("range", (None, None))
    if low is not None and _is_int(item) and not low <= item <= high:
        return f"{item} is outside {low}..{high}"
    return ""


def _enum_order(entry: tuple[str, Any]) -> tuple[int, str]:
    key = entry[0]
    return (int(key), "") if key.lstrip("-").isdigit() else (2**31, key)


def _type_label(attribute: Definition) -> str:
    return str(attribute.get("object_type") or attribute["type"])


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _describe(value: Any) -> str:
    text = json.dumps(value, default=repr)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{type(value).__name__} {text}"
