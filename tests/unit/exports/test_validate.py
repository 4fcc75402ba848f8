"""The pinned schema is complete for the two classes, and validation reports what is wrong."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from plantwarden.exports.ocsf import InvalidExport, checked_line, protocol_records_to_ocsf
from plantwarden.exports.schema.extract import extract
from plantwarden.exports.validate import OCSF_VERSION, merge, pinned_schema, validate_event
from tests.unit.exports.samples import protocol_batch

Event = dict[str, Any]


@pytest.fixture(scope="module")
def finding() -> Event:
    """A valid Detection Finding, written by hand from the pinned schema's rules."""
    return {
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "severity_id": 4,
        "severity": "High",
        "time": 1_795_680_000_000,
        "finding_info": {"uid": "a1", "title": "Write to PLC", "attacks": [{"technique": {"uid": "T0855"}}]},
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "Plantwarden", "vendor_name": "Plantwarden"},
            "extensions": [pinned_schema().extension.declaration()],
        },
        "site_uid": "plant-a",
    }


@pytest.fixture(scope="module")
def traffic() -> Event:
    return protocol_records_to_ocsf(protocol_batch())[0]


def changed(event: Event, change: Callable[[Event], object]) -> Event:
    copied = copy.deepcopy(event)
    change(copied)
    return copied


def test_the_valid_events_are_valid(finding: Event, traffic: Event) -> None:
    assert validate_event(finding) == []
    assert validate_event(traffic) == []


MISSING = [
    (lambda e: e.pop("time"), "time: required attribute is missing"),
    (lambda e: e.pop("severity_id"), "severity_id: required attribute is missing"),
    (lambda e: e["finding_info"].pop("uid"), "finding_info.uid: required attribute is missing"),
    (lambda e: e["metadata"].pop("product"), "metadata.product: required attribute is missing"),
    (lambda e: e["metadata"]["product"].pop("vendor_name"), "metadata.product.vendor_name: required"),
]
WRONG_TYPE = [
    (lambda e: e.update(time="2026-11-26T08:00:00Z"), "time: expected long_t (a 64-bit integer), got str"),
    (lambda e: e.update(severity_id="4"), "severity_id: expected integer_t (a 32-bit integer), got str"),
    (lambda e: e.update(severity_id=True), "severity_id: expected integer_t"),
    (lambda e: e.update(count=2**40), "count: expected integer_t (a 32-bit integer), got int"),
    (lambda e: e.update(message=42), "message: expected string_t (a string), got int"),
    (
        lambda e: e["finding_info"].update(attacks={"technique": {"uid": "T0855"}}),
        "expected an array of attack",
    ),
    (
        lambda e: e.update(finding_info="Write to PLC"),
        "finding_info: expected an object (Finding Information)",
    ),
    (
        lambda e: e.update(evidences=[{"src_endpoint": {"ip": "10.0.0.300"}}]),
        "does not match the type's pattern",
    ),
    (lambda e: e.update(evidences=[{"dst_endpoint": {"port": 70000}}]), "70000 is outside 0..65535"),
    (lambda e: e.update(message=None), "message: null is not a value"),
]
WRONG_ENUM = [
    (
        lambda e: e.update(severity_id=7, severity="x"),
        "severity_id: 7 is not one of 0 (Unknown), 1 (Informational)",
    ),
    (lambda e: e.update(status_id=5), "status_id: 5 is not one of 0 (Unknown), 1 (New), 2 (In Progress)"),
    (lambda e: e.update(activity_id=4), "activity_id: 4 is not one of"),
    (lambda e: e.update(type_uid=400106), "type_uid: 400106 is not one of"),
    (lambda e: e.update(category_uid=4), "category_uid: 4 is not one of 2 (Findings)"),
    (lambda e: e.update(confidence_id=-1), "confidence_id: -1 is not one of"),
]
OTHER_RULES = [
    (lambda e: e.update(colour="red"), "colour: not an attribute of Detection Finding"),
    (lambda e: e.update(severity="Low"), "severity: 'Low' does not match severity_id 4 ('High')"),
    (lambda e: e.update(type_uid=200402), "type_uid: 200402 is not class_uid * 100 + activity_id (200401)"),
    (
        lambda e: e["finding_info"].update(attacks=[{"version": "v15"}]),
        "needs at least one of tactic, technique",
    ),
    (
        lambda e: e.update(cloud={"provider": "x"}),
        "cloud: belongs to profile 'cloud', which metadata.profiles",
    ),
    (lambda e: e["metadata"].update(profiles=["cloud"]), "cloud: required attribute is missing"),
    (lambda e: e["metadata"].pop("extensions"), "site_uid: belongs to extension 'plantwarden', which"),
    (lambda e: e["metadata"]["extensions"][0].update(version="9"), "metadata.extensions[0]: {"),
    (
        lambda e: e["metadata"].update(version="1.4.0"),
        "metadata.version: '1.4.0', but the pinned schema is 1.3.0",
    ),
]


@pytest.mark.parametrize(("change", "problem"), MISSING + WRONG_TYPE + WRONG_ENUM + OTHER_RULES)
def test_each_breach_is_reported(finding: Event, change: Callable[[Event], object], problem: str) -> None:
    problems = validate_event(changed(finding, change))
    assert any(p.startswith(problem) or problem in p for p in problems), problems


def test_the_ics_extension_is_checked_too(traffic: Event) -> None:
    problems = validate_event(changed(traffic, lambda e: e["ics"].update(operation_id=8, quantity=1.5)))
    assert any(p.startswith("ics.operation_id: 8 is not one of 0 (Unknown), 1 (Read)") for p in problems)
    assert "ics.quantity: expected integer_t (a 32-bit integer), got float 1.5" in problems
    missing = validate_event(changed(traffic, lambda e: e["ics"].pop("protocol")))
    assert missing == ["ics.protocol: required attribute is missing"]
    unknown = validate_event(changed(traffic, lambda e: e["ics"].update(register=3)))
    assert unknown == ["ics.register: not an attribute of ICS Request"]
    assert validate_event(changed(traffic, lambda e: e.pop("dst_endpoint"))) == [
        "dst_endpoint: required attribute is missing"
    ]


def test_something_that_is_not_an_event_of_a_pinned_class() -> None:
    assert validate_event([]) == ["(event): an event is a JSON object, not list []"]
    [problem] = validate_event({"class_uid": 3002})
    assert problem.startswith("class_uid: int 3002 is not a class of the pinned schema")
    assert "2004 (Detection Finding), 4001 (Network Activity)" in problem


def test_an_invalid_event_is_never_turned_into_a_line(finding: Event) -> None:
    assert checked_line(finding, "alert a1").startswith('{"class_uid":2004,')
    with pytest.raises(
        InvalidExport, match=r"alert a1 does not validate against OCSF 1\.3\.0: time: required"
    ) as caught:
        checked_line(changed(finding, lambda e: e.pop("time")), "alert a1")
    assert caught.value.details == {"problems": ["time: required attribute is missing"]}


def test_the_pinned_schema_holds_the_two_classes_and_everything_they_reach() -> None:
    schema = pinned_schema()
    assert schema.version == OCSF_VERSION
    assert {(c["uid"], c["category_uid"]) for c in schema.classes.values()} == {(2004, 2), (4001, 4)}
    definitions = [*schema.classes.values(), *schema.objects.values()]
    attributes = [a for d in definitions for a in d["attributes"].values()]
    assert {a["object_type"] for a in attributes if a["type"] == "object_t"} <= set(schema.objects)
    assert {a["type"] for a in attributes if a["type"] != "object_t"} <= set(schema.types)


def test_the_extension_may_not_redefine_a_core_attribute() -> None:
    core = {"version": "1", "types": {}, "objects": {}, "classes": {"c": {"attributes": {"time": {}}}}}
    extension = {
        "name": "x",
        "uid": "1",
        "version": "1",
        "objects": {},
        "classes": {"c": {"attributes": {"time": {}}}},
    }
    with pytest.raises(ValueError, match=r"extension x redefines \['time'\] of c"):
        merge(core, extension)


def test_extract_keeps_the_classes_what_they_reach_and_no_descriptions() -> None:
    def attribute(**extra: str) -> dict[str, str]:
        return {"type": "object_t", "description": "d", **extra}

    export = {
        "version": "9.9.9",
        "types": {"string_t": {"description": "d", "caption": "String"}},
        "classes": {
            "wanted": {"description": "d", "attributes": {"a": attribute(object_type="one")}},
            "other": {"attributes": {"x": attribute(object_type="unused")}},
        },
        "objects": {
            "one": {"attributes": {"b": attribute(object_type="two")}},
            "two": {
                "attributes": {"c": {"type": "string_t", "enum": {"1": {"caption": "C", "description": "d"}}}}
            },
            "unused": {"attributes": {}},
        },
    }
    subset = extract(export, ["wanted"])
    assert set(subset) == {"version", "types", "classes", "objects"}
    assert (set(subset["classes"]), set(subset["objects"])) == ({"wanted"}, {"one", "two"})
    assert subset["objects"]["two"]["attributes"]["c"]["enum"] == {"1": {"caption": "C"}}
    assert "description" not in str(subset)
