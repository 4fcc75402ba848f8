"""What `telemetry push` and the sample checks make of odd input: numbers `float()` takes but a person
would not write, times finer than a microsecond, and files that are not UTF-8 text or not CSV."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.errors import InvalidInput
from plantwarden.monitoring.telemetry import parse_time, sample_from
from plantwarden.monitoring.telemetry_cli import telemetry_group
from tests.unit.monitoring.test_telemetry import GOOD, NOW, Provider, provider

__all__ = ["provider"]  # the fixture


@pytest.mark.parametrize("text", ["1_000", "1_0.5", "١٢", "0x10", "1,5", "--1", "e5"])
def test_a_value_that_is_not_decimal_ascii_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="is not a number"):
        sample_from({**GOOD, "value": text}, NOW)


@pytest.mark.parametrize(("text", "value"), [(" 2.5 ", 2.5), ("-1e3", -1000.0), (".5", 0.5), ("7.", 7.0)])
def test_a_decimal_value_as_text_is_taken(text: str, value: float) -> None:
    assert sample_from({**GOOD, "value": text}, NOW).value == value


def test_nan_as_text_is_a_missing_value() -> None:
    assert math.isnan(sample_from({**GOOD, "value": "NaN"}, NOW).value)


@pytest.mark.parametrize(
    ("fraction", "ns"),
    [(".123456789", 123_456_789), (".1234567", 123_456_700), (",12345678", 123_456_780), (".5", 500_000_000)],
)
def test_iso_times_keep_their_fraction_to_the_nanosecond(fraction: str, ns: int) -> None:
    start = NOW - 3600 * SECOND_NS  # 2026-11-26T07:00:00Z
    assert parse_time(f"2026-11-26T07:00:00{fraction}Z", NOW) == start + ns
    assert parse_time(f"2026-11-26T09:00:00{fraction}+02:00", NOW) == start + ns


def test_an_iso_time_finer_than_a_nanosecond_is_refused() -> None:
    with pytest.raises(InvalidInput, match="has 10 fractional digits \\(nanoseconds at most: 9\\)"):
        parse_time("2026-11-26T07:00:00.1234567891Z", NOW)


def test_pushed_times_and_query_since_keep_nanoseconds(provider: Provider, tmp_path: Path) -> None:
    source = tmp_path / "samples.csv"
    rows = [f"2026-11-26T07:00:00.00000000{i}Z,tank-1,level,{i}" for i in (1, 2)]
    source.write_text("\n".join(["ts,device,variable,value", *rows]) + "\n")
    assert _push(provider, source)[0] == 0
    query = ["query", "--site", "plant-a", "--format", "json", "--since", "2026-11-26T07:00:00.000000002Z"]
    found = json.loads(CliRunner().invoke(telemetry_group, query, obj=provider).stdout)
    assert [(r["ts_ns"], r["value"]) for r in found] == [(NOW - 3600 * SECOND_NS + 2, 2.0)]
    assert [r["ts"] for r in found] == ["2026-11-26T07:00:00.000000002+00:00"]
    # the CSV a query writes pushes back to the same nanosecond
    exported = CliRunner().invoke(telemetry_group, [*query[:3], "--format", "csv"], obj=provider).stdout
    assert "2026-11-26T07:00:00.000000001+00:00,tank-1,level,1.0" in exported


def _push(provider: Provider, source: Path) -> tuple[int, str]:
    result = CliRunner().invoke(telemetry_group, ["push", str(source), "--site", "plant-a"], obj=provider)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr


def test_push_refuses_a_file_that_is_not_utf8_in_one_line(provider: Provider, tmp_path: Path) -> None:
    source = tmp_path / "samples.csv"
    source.write_bytes(b"ts,device,variable,value\n2026-11-26T07:00:00Z,tank-1,level,\xff\n")
    code, err = _push(provider, source)
    assert code == 1
    assert err == f"Error: {source}: not UTF-8 text (line 2, byte 0xff at offset 59): nothing was written\n"
    assert provider.runtime().records().partitions("telemetry") == []


def test_push_names_the_line_and_offset_of_the_first_bad_byte_far_into_the_input(
    provider: Provider, tmp_path: Path
) -> None:
    good = "\ufeffts,device,variable,value\r\n" + "2026-11-26T07:00:00Z,tank-1,level,1.5\r\n" * 999
    data = good.encode() + b"2026-11-26T07:00:00Z,tank-1,F\xfcllstand,2\r\n"  # \xfc: 'ü' in Latin-1
    source = tmp_path / "samples.csv"
    source.write_bytes(data)
    said = f"not UTF-8 text (line 1001, byte 0xfc at offset {len(good.encode()) + 29}): nothing was written"
    assert _push(provider, source) == (1, f"Error: {source}: {said}\n")
    piped = CliRunner().invoke(telemetry_group, ["push", "-", "--site", "plant-a"], obj=provider, input=data)
    assert piped.exit_code == 1 and piped.stderr == f"Error: standard input: {said}\n"
    assert provider.runtime().records().partitions("telemetry") == []


@pytest.mark.parametrize("header", [False, True])
def test_push_refuses_a_field_over_the_csv_limit(provider: Provider, tmp_path: Path, header: bool) -> None:
    source = tmp_path / "samples.csv"
    long_field = '"' + "x" * 140_000 + "\n"
    good = "2026-11-26T07:00:00Z,tank-1,level,1\n"
    source.write_text(long_field if header else f"ts,device,variable,value\n{good}{good[:-2]}{long_field}")
    code, err = _push(provider, source)
    line = 1 if header else 3
    assert code == 1 and f"line {line}: a field is longer than 131072 characters (an unclosed quote?)" in err
    assert "1 bad lines: nothing was written" in err and "Traceback" not in err


def test_push_refuses_an_underscored_value(provider: Provider, tmp_path: Path) -> None:
    source = tmp_path / "samples.csv"
    source.write_text("ts,device,variable,value\n2026-11-26T07:00:00Z,tank-1,level,1_000\n")
    code, err = _push(provider, source)
    assert code == 1 and "line 2: value '1_000' is not a number" in err
