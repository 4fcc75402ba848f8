"""The protocol modules' common terms line up with the records plane's, and summaries survive the
round trip through columns unchanged."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.core.records.schema import Operation as RecordOperation
from plantwarden.core.records.schema import Protocol
from plantwarden.protocols.common import MAX_TARGETS, Operation, ParseStatus, Summary, SummaryColumns


def test_operation_codes_are_the_records_planes() -> None:
    assert {op.name: op.value for op in Operation} == {op.name: op.value for op in RecordOperation}


def test_every_planned_protocol_has_a_record_code() -> None:
    for name in ("MODBUS", "S7COMM", "DNP3", "ENIP", "IEC104", "OPCUA", "MQTT", "BACNET"):
        assert Protocol[name] > 0


summaries = st.builds(
    Summary,
    function_code=st.integers(-1, 2**31 - 1),
    function=st.text(max_size=20),
    operation=st.sampled_from(Operation),
    is_response=st.booleans(),
    unit=st.integers(-1, 2**31 - 1),
    address=st.integers(-1, 2**63 - 1),
    quantity=st.integers(0, 2**31 - 1),
    targets=st.lists(st.text(max_size=12), max_size=MAX_TARGETS).map(tuple),
    result=st.integers(-1, 2**31 - 1),
    status=st.sampled_from(ParseStatus),
    finding=st.integers(0, 255),
)


@settings(max_examples=200)
@given(st.lists(summaries, max_size=20))
def test_summaries_survive_columns(rows: list[Summary]) -> None:
    columns = SummaryColumns.from_summaries(rows)
    assert len(columns) == len(rows)
    assert columns.summaries() == rows


def test_a_tuple_of_targets_is_one_cell() -> None:
    columns = SummaryColumns.from_summaries([Summary(1, "read", Operation.READ, False, targets=("a", "b"))])
    assert columns.targets.shape == (1,) and columns.targets[0] == ("a", "b")
