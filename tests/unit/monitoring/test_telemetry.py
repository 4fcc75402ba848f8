"""Pushed telemetry samples: validation, writing through one writer, querying back, and the
`telemetry push` and `telemetry query` commands."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.config import CoreSettings
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.backend import open_backend
from plantwarden.core.records.partitions import PartitionBackend
from plantwarden.core.records.settings import RecordsSettings
from plantwarden.core.runtime import Runtime
from plantwarden.core.settings import Settings
from plantwarden.monitoring.telemetry import (
    Sample,
    SampleQuery,
    TelemetryIngest,
    parse_time,
    query_samples,
    sample_from,
    sample_rows,
    samples_from,
)
from plantwarden.monitoring.telemetry_cli import telemetry_group
from tests.conftest import make_settings

NOW = 1_795_680_000 * SECOND_NS  # 2026-11-26T08:00:00Z
GOOD = {"ts": "2026-11-26T07:00:00Z", "device": "tank-1", "variable": "level", "value": 51.5}


def test_times_are_iso_8601_or_nanoseconds_in_a_sane_range() -> None:
    assert parse_time("2026-11-26T07:00:00Z", NOW) == NOW - 3600 * SECOND_NS
    assert parse_time("2026-11-26T09:00:00.000001+02:00", NOW) == NOW - 3600 * SECOND_NS + 1000
    assert parse_time("2026-11-26T07:00:00", NOW) == NOW - 3600 * SECOND_NS  # naive is UTC
    assert parse_time(NOW - 5, NOW) == NOW - 5
    assert parse_time(str(NOW), NOW) == NOW
    with pytest.raises(InvalidInput, match="looks like seconds"):
        parse_time(1_795_680_000, NOW)
    with pytest.raises(InvalidInput, match="a day ahead"):
        parse_time(NOW + 86_401 * SECOND_NS, NOW)
    for bad in ("yesterday", 1.5e18, True, None, "9" * 5000):
        with pytest.raises(InvalidInput, match="ts"):
            parse_time(bad, NOW)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"device": ""}, "device must be non-empty"),
        ({"variable": "x" * 129}, "at most 128"),
        ({"variable": "lev\nel"}, "control characters"),
        ({"value": "abc"}, "not a number"),
        ({"value": float("inf")}, "finite"),
        ({"value": [1]}, "must be a number"),
        ({"quality": 128}, "quality"),
        ({"quality": -1}, "quality"),
        ({"quality": "9" * 5000}, "quality"),
        ({"value": 10**400}, "not a number"),
        ({"unit": "m"}, "unknown fields \\['unit'\\]"),
        ({"ts": "26/11/2026"}, "ISO 8601"),
    ],
)
def test_bad_samples_are_refused_with_the_reason(change: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        sample_from({**GOOD, **change}, NOW)


def test_a_missing_value_is_nan_and_questionable_unless_told() -> None:
    missing = sample_from({**GOOD, "value": None}, NOW)
    assert math.isnan(missing.value) and missing.quality == 1
    assert sample_from({**GOOD, "value": None, "quality": 0}, NOW).quality == 0
    assert sample_from({**GOOD, "value": "7", "quality": "3"}, NOW) == Sample(
        NOW - 3600 * SECOND_NS, "tank-1", "level", 7.0, 3
    )


def test_the_first_bad_sample_is_named_by_its_index() -> None:
    with pytest.raises(InvalidInput, match="sample 2: missing fields \\['value'\\]") as caught:
        samples_from([GOOD, GOOD, {k: v for k, v in GOOD.items() if k != "value"}, {}], NOW)
    assert caught.value.details == {"index": 2}


def _backend(settings: Settings, store: Store) -> PartitionBackend:
    return open_backend(settings[CoreSettings], settings[RecordsSettings], store)


def test_written_samples_are_queried_back(settings: Settings, store: Store) -> None:
    backend = _backend(settings, store)
    base = NOW - 7200 * SECOND_NS  # two partitions: 06:00 and 07:00
    samples = [
        Sample(base + i * 600 * SECOND_NS, f"tank-{i % 2 + 1}", "level" if i % 3 else "flow", float(i), i % 2)
        for i in range(12)
    ]
    samples.append(Sample(base + 30 * SECOND_NS, "tank-1", "level", math.nan, 1))
    with TelemetryIngest(backend, "telemetry-test", partition_seconds=3600) as ingest:
        assert ingest.write("plant-a", samples[::-1]) == 13
        assert ingest.write("plant-b", [Sample(base, "tank-1", "level", 99.0)]) == 1
    assert {(r.kind, r.start_ns) for r in backend.partitions("telemetry")} == {
        ("telemetry", base),
        ("telemetry", base + 3600 * SECOND_NS),
    }
    everything = query_samples(backend, SampleQuery("plant-a", limit=100, newest_first=False))
    assert len(everything) == 13 and list(everything["ts"]) == sorted(everything["ts"])
    tank_level = SampleQuery("plant-a", device="tank-2", variable="level", limit=100)
    values = [r["value"] for r in sample_rows(query_samples(backend, tank_level))]
    assert values == [11.0, 7.0, 5.0, 1.0]  # newest first, flow (i % 3 == 0) and tank-1 left out
    ranged = SampleQuery("plant-a", since_ns=base + 3600 * SECOND_NS, until_ns=base + 4800 * SECOND_NS)
    assert [r["value"] for r in sample_rows(query_samples(backend, ranged))] == [7.0, 6.0]
    newest = list(sample_rows(query_samples(backend, SampleQuery("plant-a", limit=1))))
    assert newest[0]["value"] == 11.0 and newest[0]["ts"] == "2026-11-26T07:50:00.000000+00:00"
    missing = [r for r in sample_rows(everything) if r["value"] is None]
    assert len(missing) == 1 and missing[0]["quality"] == 1
    assert [r["value"] for r in sample_rows(query_samples(backend, SampleQuery("plant-b")))] == [99.0]


def test_two_ingests_of_one_name_take_turns_and_write_everything(settings: Settings, store: Store) -> None:
    backend = _backend(settings, store)
    first = TelemetryIngest(backend, "telemetry-shared")
    first.write("plant-a", [Sample(NOW - SECOND_NS, "d", "v", 1.0)])  # holds its partition open
    written: list[int] = []

    def second() -> None:
        with TelemetryIngest(backend, "telemetry-shared", wait_seconds=10) as ingest:
            written.append(ingest.write("plant-a", [Sample(NOW - SECOND_NS, "d", "v", 2.0)]))

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive()  # waiting for the name
    first.close()
    thread.join(10)
    assert written == [1]
    rows = query_samples(backend, SampleQuery("plant-a", newest_first=False))
    assert sorted(rows["value"].tolist()) == [1.0, 2.0]


class Provider:
    def __init__(self, settings: Settings) -> None:
        self._runtime = Runtime(settings)

    def runtime(self) -> Runtime:
        return self._runtime


@pytest.fixture
def provider(data_dir: Path) -> Iterator[Provider]:
    made = Provider(make_settings(data_dir))
    yield made
    made.runtime().close()


def _push(provider: Provider, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(telemetry_group, ["push", *args], obj=provider, input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_push_a_csv_file_and_query_it_back(provider: Provider, tmp_path: Path) -> None:
    source = tmp_path / "samples.csv"
    source.write_text(
        "ts,device,variable,value,quality\n"
        "2026-11-26T07:00:00Z,tank-1,level,51.5,0\n"
        "2026-11-26T07:00:01Z,tank-1,level,,\n"
        f"{NOW - 3598 * SECOND_NS},tank-1,level,52.25,2\n"
    )
    code, out, err = _push(provider, str(source), "--site", "plant-a")
    assert code == 0, err
    assert "pushed 3 samples to site plant-a" in out
    query = CliRunner().invoke(
        telemetry_group, ["query", "--site", "plant-a", "--format", "json", "--oldest-first"], obj=provider
    )
    rows = json.loads(query.stdout)
    assert [(r["value"], r["quality"]) for r in rows] == [(51.5, 0), (None, 1), (52.25, 2)]
    as_csv = CliRunner().invoke(
        telemetry_group,
        ["query", "--site", "plant-a", "--variable", "level", "--format", "csv"],
        obj=provider,
    )
    lines = as_csv.stdout.splitlines()
    assert lines[0] == "ts,device,variable,value,quality"
    assert lines[1] == "2026-11-26T07:00:02.000000+00:00,tank-1,level,52.25,2" and lines[2].endswith(
        ",level,,1"
    )
    table = CliRunner().invoke(
        telemetry_group, ["query", "--site", "plant-a", "--until", "2026-11-26T07:00:01Z"], obj=provider
    )
    assert table.stdout.strip() == "2026-11-26T07:00:00.000000+00:00  tank-1  level  51.5  q0"


def test_push_with_a_bad_line_writes_nothing_and_names_the_lines(provider: Provider) -> None:
    lines = [json.dumps({**GOOD, "value": i}) for i in range(4)]
    lines[1] = json.dumps({**GOOD, "value": "lots"})
    lines[3] = "{not json"
    code, _, err = _push(provider, "-", "--site", "plant-a", "--format", "jsonl", stdin="\n".join(lines))
    assert code == 1
    assert "line 2: value 'lots' is not a number" in err and "line 4: not JSON" in err
    assert "2 bad lines: nothing was written" in err
    assert provider.runtime().records().partitions("telemetry") == []
    good = "\n".join(json.dumps({**GOOD, "value": i}) for i in range(3))
    code, out, err = _push(provider, "-", "--site", "plant-a", "--format", "jsonl", stdin=good)
    assert code == 0 and "pushed 3 samples" in out, err


def test_push_refuses_a_bad_header_and_a_bad_site(provider: Provider) -> None:
    code, _, err = _push(provider, "-", "--site", "plant-a", stdin="time,device,value\n1,2,3\n")
    assert code == 1 and "line 1: the header must be ts,device,variable,value[,quality]" in err
    code, _, err = _push(provider, "-", "--site", "Plant A", stdin="ts,device,variable,value\n")
    assert code == 2 and "is not a site id" in err
