"""The compiled masks and counts agree with a plain per-record Python evaluation (bench/rules_reference)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from bench.rules_reference import ReferenceCounts, matches
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.core.records.batch import RecordBatch
from plantwarden.core.records.schema import PROTOCOL_RECORDS, address_text
from plantwarden.detection.rules.compile import BatchView, CompiledRule, Providers
from plantwarden.detection.rules.engine import RuleEngine
from plantwarden.detection.rules.fields import ROLES
from tests.unit.detection.rules.rule_support import rule

ADDRESSES = ["10.0.0.1", "10.0.0.2", "10.0.1.0", "10.0.1.255", "192.168.0.9", "fd00::1", "fd00::1:0", "::"]
NETWORKS = ["10.0.0.0/24", "10.0.0.0/8", "10.0.1.128/25", "fd00::/112", "0.0.0.0/0", "10.0.0.2/32"]
TESTS = st.one_of(
    st.tuples(
        st.sampled_from(["protocol", "protocol|not"]),
        st.lists(st.sampled_from(["modbus", "s7comm", "dnp3", 0]), min_size=1, max_size=3),
    ),
    st.tuples(
        st.sampled_from(["function", "function|not", "function|in"]),
        st.lists(st.integers(0, 20), min_size=1, max_size=12),
    ),
    st.tuples(
        st.sampled_from(["function|gte", "function|gt", "function|lte", "function|lt", "unit|gte"]),
        st.integers(-2, 20),
    ),
    st.tuples(st.just("value|range"), st.tuples(st.integers(-5, 0), st.integers(0, 5)).map(list)),
    st.tuples(st.sampled_from(["value|gt", "value|lte", "value|not"]), st.sampled_from([-1.5, 0.0, 2.5])),
    st.tuples(st.sampled_from(["src_addr", "dst_addr|not"]), st.sampled_from(ADDRESSES[:-1])),
    st.tuples(
        st.sampled_from(["src_addr|cidr", "dst_addr|cidr", "src_addr|not"]),
        st.lists(st.sampled_from(NETWORKS), min_size=1, max_size=2),
    ),
    st.tuples(
        st.sampled_from(["src_role", "dst_role|not"]),
        st.lists(st.sampled_from(ROLES), min_size=1, max_size=2),
    ),
    st.tuples(st.sampled_from(["maintenance", "malformed", "out_of_range"]), st.booleans()),
    st.tuples(st.just("segment"), st.sampled_from(["a", "b"])),
)
CONDITIONS = ["s", "not s", "s and t", "s or t", "s and not t", "not (s or t)", "(s or t) and not (s and t)"]


def _yaml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _selection(tests: list[tuple[str, Any]]) -> str:
    unique = dict(tests)
    return "{" + ", ".join(f"'{k}': {_yaml(v)}" for k, v in unique.items()) + "}"


@st.composite
def records(draw: st.DrawFn, size: int = 60) -> tuple[RecordBatch, dict[str, Any]]:
    n = draw(st.integers(1, size))

    def pick(options: list[Any]) -> Any:
        return np.array(draw(st.lists(st.sampled_from(options), min_size=n, max_size=n)))

    from plantwarden.core.records.schema import address

    columns: dict[str, Any] = {
        "ts": np.sort(np.array(draw(st.lists(st.integers(0, 300), min_size=n, max_size=n)))) * 1_000_000_000,
        "site": "s1",
        "segment": pick(["a", "b"]).astype(object),
        "src_addr": [address(a) if a != "::" else bytes(16) for a in pick(ADDRESSES)],
        "dst_addr": [address(a) if a != "::" else bytes(16) for a in pick(ADDRESSES)],
        "src_port": 40000,
        "dst_port": 502,
        "transport": 6,
        "protocol": pick([0, 1, 2, 3]),
        "operation": pick([1, 2, 4, 6]),
        "function": pick(list(range(0, 21))),
        "unit": pick([-1, 0, 5]),
        "address": -1,
        "quantity": 1,
        "status": 0,
        "value": pick([float("nan"), -1.5, 0.0, 2.5, 4.0]),
        "response_ns": -1,
    }
    batch = RecordBatch.build(PROTOCOL_RECORDS, columns, n)
    derived = {
        "src_role": pick(list(range(len(ROLES)))).astype(np.uint8),
        "dst_role": pick(list(range(len(ROLES)))).astype(np.uint8),
        "maintenance": pick([False, True]).astype(bool),
        "out_of_range": pick([False, True]).astype(bool),
    }
    return batch, derived


def _rows(batch: RecordBatch, derived: dict[str, Any]) -> list[dict[str, Any]]:
    rows = list(batch.rows())
    for index, row in enumerate(rows):
        row |= {name: column[index].item() for name, column in derived.items()}
        row["malformed"] = row["operation"] == 6
    return rows


@settings(max_examples=50, deadline=None)
@given(
    st.lists(TESTS, min_size=1, max_size=3),
    st.lists(TESTS, min_size=1, max_size=2),
    st.sampled_from(CONDITIONS),
    records(),
)
def test_the_compiled_mask_is_the_per_record_evaluation(s: Any, t: Any, condition: str, data: Any) -> None:
    found = rule(f"detection:\n  s: {_selection(s)}\n  t: {_selection(t)}\n  condition: {condition}\n")
    batch, derived = data
    mask = CompiledRule(found).mask(BatchView(batch, Providers(), derived))
    assert mask.tolist() == [matches(found, row) for row in _rows(batch, derived)]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(TESTS, min_size=1, max_size=2),
    st.sampled_from([[], ["src_addr"], ["segment", "dst_addr"], ["unit"]]),
    st.sampled_from([None, "dst_addr", "function"]),
    st.integers(1, 4),
    st.sampled_from(["10s", "60s", "2m"]),
    records(size=120),
    st.lists(st.integers(1, 119), max_size=4),
)
def test_counts_across_batches_are_the_per_record_counts(
    s: Any, by: list[str], distinct: str | None, least: int, window: str, data: Any, cuts: list[int]
) -> None:
    count = f"{{window: {window}, min: {least}, by: {_yaml(by)}" + (
        f", distinct: {distinct}}}" if distinct else "}"
    )
    found = rule(f"detection:\n  s: {_selection(s)}\n  condition: s\n  count: {count}\n")
    assert found.count is not None
    batch, derived = data
    engine = RuleEngine([found])
    fired = []
    edges = [0, *sorted({c for c in cuts if c < len(batch)}), len(batch)]
    for low, high in itertools.pairwise(edges):
        part = batch.take(slice(low, high))
        fired += engine.check(part, {name: column[low:high] for name, column in derived.items()})
    reference = ReferenceCounts(found)
    reference.add(_rows(batch, derived))
    shown = [
        tuple(address_text(v) if isinstance(v, bytes) else v for v in key[2:-1]) for key in reference.fired
    ]
    expected = sorted(
        (key[1], *names, key[-1] * found.count.window_ns)
        for key, names in zip(reference.fired, shown, strict=True)
    )
    assert sorted((d.segment, *(v for _, v in d.group), d.window_start_ns) for d in fired) == expected
