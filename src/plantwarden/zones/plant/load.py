"""Loading plant.yaml: YAML with positions, the JSON Schema, then the checks between ids.

`load_plant(path)` returns a `PlantModel` or raises `PlantFileError`, which lists every problem
found (up to a limit) with file, line, column, the path of the value and what is wrong.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path as FilePath
from typing import Any, cast

import jsonschema

from plantwarden.core.errors import InvalidInput
from plantwarden.core.parsing import NotUtf8Text, utf8_text
from plantwarden.zones.plant.build import build_model
from plantwarden.zones.plant.lines import ONE_LINE_PATTERN, field_name, not_one_line
from plantwarden.zones.plant.model import PlantModel
from plantwarden.zones.plant.schema import PLANT_SCHEMA
from plantwarden.zones.plant.source import Problem, Source, SourceError, read_source

MAX_PROBLEMS = 50


class PlantFileError(InvalidInput):
    """plant.yaml is not valid; `problems` says where and why."""

    code = "invalid_plant_file"

    def __init__(self, problems: Sequence[Problem]) -> None:
        shown = list(problems[:MAX_PROBLEMS])
        more = len(problems) - len(shown)
        lines = [str(problem) for problem in shown] + ([f"... and {more} more"] if more > 0 else [])
        super().__init__(
            "\n".join(lines),
            details={
                "problems": [
                    {"file": p.file, "line": p.line, "column": p.column, "path": p.path, "message": p.message}
                    for p in shown
                ]
            },
        )
        self.problems = tuple(problems)


def load_plant(path: str | FilePath) -> PlantModel:
    """Read and check a plant file; `PlantFileError` names every problem."""
    file = FilePath(path)
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise PlantFileError([Problem(str(file), 1, 1, f"cannot read the file: {error.strerror}")]) from None
    return load_plant_bytes(raw, str(file))


def load_plant_bytes(raw: bytes, file: str = "plant.yaml") -> PlantModel:
    """Check plant.yaml content; the model's version is the SHA-256 of exactly these bytes."""
    try:
        text = utf8_text(raw)
    except NotUtf8Text as error:
        raise PlantFileError([Problem(file, error.line, error.column, str(error))]) from None
    try:
        source = read_source(text, file)
    except SourceError as error:
        raise PlantFileError([error.problem]) from None
    problems = schema_problems(source)
    if problems:
        raise PlantFileError(problems)
    sites, problems = build_model(source)
    if problems:
        raise PlantFileError(problems)
    return PlantModel(sites=sites, version=hashlib.sha256(raw).hexdigest(), source=file)


_END_ANCHOR = re.compile(r"(?<!\\)\$(?=\||\Z)")
"""A `$` that ends a pattern or one of its top-level alternatives."""


@cache
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A JSON Schema `pattern` as ECMA-262 reads it, which is what the standard says and what an
    editor checking plant.yaml runs: there `$` matches at the end of the text only, where Python's
    `$` also matches before a final line break (so 'riverside\\n' passed an id's `^...$` here).
    The schema's patterns end each alternative with `$`; that `$` becomes `\\Z`."""
    return re.compile(_END_ANCHOR.sub(r"\\Z", pattern))


def _pattern(
    validator: jsonschema.protocols.Validator, pattern: str, instance: Any, _schema: Any
) -> Iterator[jsonschema.ValidationError]:
    """The `pattern` keyword with `ecma_pattern`'s reading of the pattern."""
    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _validator() -> jsonschema.protocols.Validator:
    base = jsonschema.validators.validator_for(PLANT_SCHEMA)
    base.check_schema(PLANT_SCHEMA)
    # JSON Schema counts 3.0 as an integer; a port, an address or a level written 3.0 is a mistake
    # here (and would reach an nft script as "502.0"): only whole numbers written as such are.
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        base, validators={"pattern": _pattern}, type_checker=checker
    )
    validator: jsonschema.protocols.Validator = strict(PLANT_SCHEMA)
    return validator


def schema_problems(source: Source) -> list[Problem]:
    """What the JSON Schema finds, in file order, each worded for a person and placed."""
    problems = []
    for error in _validator().iter_errors(source.data):
        path = tuple(error.absolute_path)
        problems.extend(_describe(source, path, error))
    problems.sort(key=lambda p: (p.line, p.column))
    return problems


def _describe(source: Source, path: tuple[Any, ...], error: jsonschema.ValidationError) -> list[Problem]:
    kind = error.validator
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        known = sorted(schema.get("properties", {}))
        return [
            source.problem(
                (*path, key), f"unknown key {key!r}; expected one of: {', '.join(known)}", key=True
            )
            for key in error.instance
            if key not in known
        ]
    return [source.problem(path, _message(error))]


_REQUIRED = re.compile(r"'([^']+)' is a required property")


def _message(error: jsonschema.ValidationError) -> str:
    kind, value, wanted = error.validator, error.instance, cast(Any, error.validator_value)
    if kind == "required":  # one error per missing key, each naming its own in the message
        named = _REQUIRED.fullmatch(error.message)
        missing = [named.group(1)] if named else [k for k in wanted if k not in cast(Any, value)]
        return f"missing key {missing[0]!r}" if missing else error.message
    if kind == "maxLength" and isinstance(value, str):
        return f"has {len(value)} characters; at most {wanted}"
    if kind == "minItems":
        return f"needs at least {wanted} {'entry' if wanted == 1 else 'entries'}"
    if kind == "uniqueItems":
        return "lists the same entry twice"
    if kind == "enum":
        allowed = ", ".join(str(v) for v in wanted)
        return f"{value!r} is not allowed here; use one of: {allowed}"
    if kind == "pattern" and wanted == ONE_LINE_PATTERN:
        return not_one_line(field_name(tuple(error.absolute_path)), str(value)) or error.message
    if kind == "pattern":
        return f"{value!r} is not valid: {_pattern_hint(str(wanted))}"
    if kind == "oneOf" and "security_level" in str(error.absolute_path[-1] if error.absolute_path else ""):
        return f"{value!r} is not a security level: give a number 0-4 or a list of seven numbers 0-4"
    if kind == "oneOf":
        return f"{value!r} is not valid: expected an id or a list of ids"
    if kind in ("minimum", "maximum", "exclusiveMinimum"):
        return f"{value!r} is out of range ({error.message.split(' is ', 1)[-1]})"
    if kind == "const":
        return f"{value!r} is not supported: this version of Plantwarden reads version {wanted}"
    if kind == "type":
        return f"{value!r} is not {_article(str(wanted))}"
    return error.message


def _pattern_hint(pattern: str) -> str:
    if "[a-z0-9-]" in pattern:
        return "use 1-63 lower-case letters, digits and inner hyphens"
    if ":" in pattern:
        return "use a time HH:MM (00:00-24:00)"
    return f"it must match {pattern}"


def _article(kind: str) -> str:
    return {"array": "a list", "object": "a mapping", "integer": "a whole number", "string": "text"}.get(
        kind, f"a {kind}"
    )
