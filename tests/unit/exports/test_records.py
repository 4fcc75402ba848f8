"""Protocol records map to Network Activity (4001) with the ICS extension, and validate."""

from __future__ import annotations

from typing import Any

import pytest

from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import NO_ANSWER_EXPECTED
from plantwarden.exports.ocsf import protocol_records_to_ocsf
from plantwarden.exports.validate import validate_event
from tests.unit.exports.samples import protocol_batch


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return protocol_records_to_ocsf(protocol_batch())


def test_every_record_is_a_valid_network_activity_event(events: list[dict[str, Any]]) -> None:
    assert len(events) == 3
    for event in events:
        assert validate_event(event) == []
        assert (event["class_uid"], event["category_uid"], event["activity_name"]) == (4001, 4, "Traffic")
        assert event["type_uid"] == 400106
        assert event["metadata"]["extensions"][0]["name"] == "plantwarden"


def test_a_modbus_write_carries_its_industrial_fields(events: list[dict[str, Any]]) -> None:
    event = events[0]
    assert event["time"] == 1_795_680_000_123  # nanoseconds to milliseconds
    assert event["src_endpoint"] == {"ip": "10.9.0.7", "port": 49152, "zone": "cell-1"}
    assert event["dst_endpoint"] == {"ip": "10.0.1.3", "port": 502, "zone": "cell-1"}
    assert event["connection_info"] == {
        "direction_id": 0,
        "direction": "Unknown",
        "protocol_num": 6,
        "protocol_name": "tcp",
    }
    assert (event["status_id"], event["status"], event["status_code"]) == (1, "Success", "0")
    assert event["site_uid"] == "plant-a"
    assert event["ics"] == {
        "protocol": "modbus",
        "operation_id": 2,
        "operation": "Write",
        "function_code": 16,
        "unit_id": 1,
        "data_address": 40001,
        "quantity": 2,
        "answered": True,
        "write_value": 12.5,
    }
    assert event["message"] == "modbus write, function 16, unit 1, address 40001, quantity 2"


def test_an_exception_answer_is_a_failure_with_its_code(events: list[dict[str, Any]]) -> None:
    event = events[1]
    assert event["src_endpoint"]["ip"] == "2001:db8::5"
    assert (event["status_id"], event["status"], event["status_code"]) == (2, "Failure", "5")
    assert event["status_detail"] == "exception code 5"
    assert event["ics"]["exception_code"] == 5
    assert event["ics"]["data_address"] == 0
    assert "write_value" not in event["ics"]


def test_unknown_codes_and_missing_parts_are_left_out_or_named(events: list[dict[str, Any]]) -> None:
    event = events[2]
    assert (event["status_id"], event["status"], event["status_detail"]) == (0, "Unknown", "no answer seen")
    assert event["src_endpoint"] == {"ip": "10.0.0.1"}
    assert event["connection_info"] == {"direction_id": 0, "direction": "Unknown"}
    assert event["ics"] == {
        "protocol": "protocol 200",
        "operation_id": 99,
        "operation": "operation 77",
        "function_code": 9,
        "quantity": 0,
        "answered": False,
    }


def test_a_one_way_request_is_neither_a_success_nor_a_failure() -> None:
    batch = protocol_batch()
    status = batch["status"].copy()
    status[2] = NO_ANSWER_EXPECTED  # an MQTT QoS 0 PUBLISH, a BACnet unconfirmed request, ...
    event = protocol_records_to_ocsf(RecordBatch(batch.kind, {**batch.columns, "status": status}))[2]
    assert validate_event(event) == []
    assert (event["status_id"], event["status"], event["status_code"]) == (99, "No answer expected", "-2")
    assert event["status_detail"] == "no answer expected (one-way request)"
    assert event["ics"]["answered"] is False and "exception_code" not in event["ics"]


def test_only_protocol_batches_map() -> None:
    with pytest.raises(InvalidInput, match="only protocol records"):
        protocol_records_to_ocsf(RecordBatch.empty("flows"))
    assert protocol_records_to_ocsf(RecordBatch.empty("protocol")) == []
