"""Cut the pinned OCSF subset out of a schema-server export (a developer tool, not used at run time).

    python -m plantwarden.exports.schema.extract 1.3.0.json > src/plantwarden/exports/schema/ocsf-1.3.0.json

The input is the schema server's `/export/schema` document for one OCSF version. The output keeps
the event classes Plantwarden exports, every object they reach (through any attribute, profiles
included), and the data types, and drops the `description` texts (documentation, not rules).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CLASSES = ("detection_finding", "network_activity")


def extract(export: Mapping[str, Any], classes: Iterable[str] = CLASSES) -> dict[str, Any]:
    """The named classes, the objects they reach and the types of `export`, without descriptions."""
    picked = {name: export["classes"][name] for name in classes}
    reached = reachable_objects(export["objects"], picked.values())
    subset = {
        "version": export["version"],
        "types": export["types"],
        "classes": picked,
        "objects": {name: export["objects"][name] for name in sorted(reached)},
    }
    stripped: dict[str, Any] = without_descriptions(subset)
    return stripped


def reachable_objects(objects: Mapping[str, Any], roots: Iterable[Mapping[str, Any]]) -> set[str]:
    """Names of every object reachable from the attributes of `roots`."""
    seen: set[str] = set()
    pending = [name for root in roots for name in _object_types(root)]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_object_types(objects[name]))
    return seen


def _object_types(definition: Mapping[str, Any]) -> list[str]:
    return [a["object_type"] for a in definition["attributes"].values() if "object_type" in a]


def without_descriptions(value: Any) -> Any:
    """`value` with every `description` key removed, at any depth."""
    if isinstance(value, Mapping):
        return {k: without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [without_descriptions(v) for v in value]
    return value


def main(argv: list[str]) -> None:
    """Print the subset of the export named by argv[0] as stable, diff-friendly JSON."""
    export = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sys.stdout.write(json.dumps(extract(export), indent=1, sort_keys=True, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
