"""Exact nanosecond times, ASCII-only numbers and HOST:PORT, one line of typed text (names,
reasons, who acts), and the text of a file that may not be UTF-8, shared by the CLI, API and
readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from plantwarden.core.cli_values import (
    FiniteFloatRange,
    Integer,
    IntegerRange,
    actor_name,
    duration_ns,
    none_at_site,
    output_file,
    output_file_or_stdout,
    time_ns,
)
from plantwarden.core.clock import SECOND_NS, from_nanoseconds, iso_nanoseconds, iso_time, nanoseconds
from plantwarden.core.errors import InvalidInput
from plantwarden.core.parsing import INTEGER, NUMBER, NotUtf8Text, host_port, one_line, utf8_text
from plantwarden.gateway.cli import host_port as listen_address
from plantwarden.gateway.state import parse_upstreams
from plantwarden.monitoring.telemetry_mqtt import parse_broker
from plantwarden.web.live import _last_event_id
from tests.output_support import writes_any_file

NOON = datetime(2026, 11, 29, 12, 0, 0, 123457, tzinfo=UTC)
NOON_NS = 1_795_953_600 * SECOND_NS + 123_457_000


def test_nanoseconds_are_exact_where_timestamp_goes_through_a_float() -> None:
    assert nanoseconds(NOON) == NOON_NS
    assert int(NOON.timestamp() * SECOND_NS) != NOON_NS  # the float route is ~100 ns off
    assert nanoseconds(NOON.replace(tzinfo=None)) == NOON_NS  # naive is UTC
    assert nanoseconds(NOON.astimezone(timezone(timedelta(hours=-5)))) == NOON_NS
    assert nanoseconds(datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == -1000


def test_from_nanoseconds_cuts_to_the_microsecond_and_round_trips() -> None:
    assert from_nanoseconds(NOON_NS + 999) == NOON
    assert from_nanoseconds(NOON_NS).tzinfo is UTC
    for ns in (0, 1, 999, 1000, NOON_NS, 2**63 - 1):
        assert nanoseconds(from_nanoseconds(ns)) == ns - ns % 1000


def test_iso_nanoseconds_keeps_all_nine_digits_and_says_what_is_wrong() -> None:
    assert iso_nanoseconds("2026-11-29T12:00:00.123457Z") == NOON_NS
    assert iso_nanoseconds("2026-11-29T12:00:00.123456789Z") == NOON_NS - 1000 + 789
    assert iso_nanoseconds("2026-11-29T07:00:00.1234567-05:00") == NOON_NS - 1000 + 700
    assert iso_nanoseconds("2026-11-29T12:00:00,5") == 1_795_953_600 * SECOND_NS + 500_000_000
    assert iso_nanoseconds("2026-11-29") == 1_795_910_400 * SECOND_NS
    with pytest.raises(ValueError, match=r"has 10 fractional digits \(nanoseconds at most: 9\)"):
        iso_nanoseconds("2026-11-29T12:00:00.1234567891Z")
    with pytest.raises(ValueError, match="is not an ISO 8601 time"):
        iso_nanoseconds("yesterday")


def test_iso_time_shows_nanoseconds_only_when_there_are_some() -> None:
    assert iso_time(NOON_NS) == "2026-11-29T12:00:00.123457+00:00"
    assert iso_time(NOON_NS + 89) == "2026-11-29T12:00:00.123457089+00:00"
    assert iso_time(0) == "1970-01-01T00:00:00.000000+00:00"
    for ns in (NOON_NS, NOON_NS + 1, NOON_NS + 999, -1):
        assert iso_nanoseconds(iso_time(ns)) == ns


@pytest.mark.parametrize("text", ["1", "-1", "-1.5e3", ".5", "5.", "+2E-2", "NaN", "inf", "-Infinity"])
def test_numbers_in_ascii(text: str) -> None:
    assert NUMBER.fullmatch(text)
    float(text)  # and Python agrees


@pytest.mark.parametrize("text", ["1_000", "²", "١٢", "", "1e", "e3", "0x10", " 1", "1,5"])
def test_not_numbers(text: str) -> None:
    assert not NUMBER.fullmatch(text)


def test_integers_are_ascii_digits_only() -> None:
    assert INTEGER.fullmatch("-42") and INTEGER.fullmatch("0")
    assert "²".isdigit() and not INTEGER.fullmatch("²")  # what str.isdigit() lets through


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.5:502", ("10.0.0.5", 502)),
        ("[::1]:1883", ("::1", 1883)),
        ("plc:0", ("plc", 0)),
        ("plc:65535", ("plc", 65535)),
        ("plc:65536", None),
        ("plc:²", None),
        ("plc:٥٠٢", None),
        ("plc:", None),
        (":502", None),
        ("[]:502", None),
        ("plc", None),
        ("plc:-1", None),
        ("plc:0000502", None),
    ],
)
def test_host_port(text: str, expected: tuple[str, int] | None) -> None:
    assert host_port(text) == expected


def test_host_port_users_refuse_other_digits_with_their_own_message() -> None:
    # each once raised a bare ValueError from int('²') instead of saying what was expected
    with pytest.raises(InvalidInput, match="expected HOST:PORT"):
        listen_address("0.0.0.0:²", "--listen")
    assert listen_address("0.0.0.0", "--listen", default_port=502) == ("0.0.0.0", 502)
    assert listen_address("0.0.0.0:0", "--listen") == ("0.0.0.0", 0)
    with pytest.raises(InvalidInput, match="expected ASSET=HOST:PORT"):
        parse_upstreams(("plc-1=10.0.0.5:²",))
    with pytest.raises(InvalidInput, match="expected ASSET=HOST:PORT"):
        parse_upstreams(("plc-1=10.0.0.5:0",))
    assert parse_upstreams(("plc-1=[fd00::5]:502",)) == {"plc-1": ("fd00::5", 502)}
    with pytest.raises(InvalidInput, match="is not HOST:PORT"):
        parse_broker("127.0.0.1:¹⁸⁸³")
    with pytest.raises(InvalidInput, match="is not HOST:PORT"):
        parse_broker("127.0.0.1:0")


def test_a_last_event_id_in_other_digits_is_ignored_not_a_server_error() -> None:
    assert _last_event_id("²") is None
    assert _last_event_id("-3") is None
    assert _last_event_id(" 42 ") == 42
    assert _last_event_id(None) is None


def test_the_commands_time_and_duration_options() -> None:
    assert time_ns(None, None, "2026-11-29T12:00:00.123456789Z") == NOON_NS - 1000 + 789
    assert time_ns(None, None, None) is None
    with pytest.raises(click.BadParameter, match="'noon' is not an ISO 8601 time"):
        time_ns(None, None, "noon")
    assert duration_ns(None, None, "90s") == 90 * SECOND_NS
    assert duration_ns(None, None, " 2 w ") == 14 * 86_400 * SECOND_NS
    for bad in ("0m", "²m", "5y", "m", "1.5h"):
        with pytest.raises(click.BadParameter, match="is not a duration"):
            duration_ns(None, None, bad)


def test_an_output_file_that_cannot_be_written_is_refused_before_the_command_runs(tmp_path: Path) -> None:
    assert output_file(None, None, tmp_path / "out.txt") == tmp_path / "out.txt"
    assert output_file(None, None, None) is None
    (tmp_path / "file").write_text("")
    for path, problem in [
        (Path(), "'.' is a directory"),
        (tmp_path, f"'{tmp_path}' is a directory"),
        (tmp_path / "no" / "out.txt", "is not in an existing directory"),
        (tmp_path / "file" / "out.txt", "is not in an existing directory"),
        (tmp_path / ("x" * 10_000), r"cannot be written \(File name too long\)"),
    ]:
        with pytest.raises(click.BadParameter, match=problem):
            output_file(None, None, path)


def test_dash_is_standard_output_where_that_is_the_default_and_refused_elsewhere(tmp_path: Path) -> None:
    """`-o -` in a script means standard output, never a file named '-' in the working directory."""
    assert output_file_or_stdout(None, None, Path("-")) is None
    assert output_file_or_stdout(None, None, None) is None
    assert output_file_or_stdout(None, None, tmp_path / "out.txt") == tmp_path / "out.txt"
    assert output_file_or_stdout(None, None, tmp_path / "-") == tmp_path / "-"  # a file named so on purpose
    with pytest.raises(click.BadParameter, match="is a directory"):
        output_file_or_stdout(None, None, tmp_path)
    with pytest.raises(click.BadParameter, match=r"'-' \(standard output\) is not taken here: name a file"):
        output_file(None, None, Path("-"))


def test_an_output_file_in_a_directory_that_cannot_take_a_new_file_is_refused(tmp_path: Path) -> None:
    """The file is written beside its target and renamed over it: a writable file in a read-only
    directory cannot be replaced."""
    if writes_any_file(tmp_path):
        pytest.skip("this process may write any file (root)")
    (tmp_path / "out.txt").write_text("kept")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(click.BadParameter, match="permission denied in its directory"):
            output_file(None, None, tmp_path / "out.txt")
    finally:
        tmp_path.chmod(0o755)


def test_a_float_range_of_finite_ascii_numbers() -> None:
    seconds = FiniteFloatRange(min=0.1)
    assert seconds.convert("2.5", None, None) == 2.5 and seconds.convert(30.0, None, None) == 30.0
    for bad, problem in [
        ("nan", "is not a finite number"),
        ("inf", "is not a finite number"),
        ("١٢", "is not a number"),
        ("1_0", "is not a number"),
        ("0", "is not in the range"),
    ]:
        with pytest.raises(click.BadParameter, match=problem):
            seconds.convert(bad, None, None)


def test_integer_options_are_ascii_digits() -> None:
    """click's INT and IntRange go through int(), which reads '1_000' and '١٢' (12)."""
    port = IntegerRange(1, 65535)
    assert port.convert("8000", None, None) == 8000 and port.convert(" 502 ", None, None) == 502
    assert Integer().convert("-3", None, None) == -3 and Integer().convert(7, None, None) == 7
    cases: list[tuple[click.ParamType[int], str, str]] = [
        (port, "١٢", "is not an integer"),
        (port, "1_000", "is not an integer"),
        (port, "²", "is not an integer"),
        (port, "0", "is not in the range"),
        (Integer(), "٣", "is not an integer"),
        (Integer(), "2.5", "is not an integer"),
    ]
    for kind, bad, problem in cases:
        with pytest.raises(click.BadParameter, match=problem):
            kind.convert(bad, None, None)


def test_one_line_of_text_is_kept_whole_without_its_end_spaces_or_refused() -> None:
    assert one_line("  Ada Lovelace\t", "the name", 12) == "Ada Lovelace"
    assert one_line("", "the name", 12) == ""
    for text, problem in [
        ("x" * 13, "the name has 13 characters; at most 12"),
        ("ada\nmallory", "the name 'ada\\nmallory' holds a line break, a tab or another control"),
        ("ad\u202ea", "the name 'ad\\u202ea' holds a line break, a tab or another control or format"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            one_line(text, "the name", 12)
        assert caught.value.message.startswith(problem), caught.value.message
    with pytest.raises(InvalidInput) as caught:
        one_line("  ", "the name", 12, empty="say who")
    assert caught.value.message == "say who"


@pytest.mark.parametrize(
    ("data", "line", "column", "offset", "byte"),
    [
        (b"\xff", 1, 1, 0, 0xFF),
        (b"name: pump\nnote: caf\xc3\xa9 \xe9t\xe9\n", 2, 12, 23, 0xE9),  # columns in characters
        (b"a\r\nb\r\n\x80", 3, 1, 6, 0x80),  # a stray continuation byte
        (b"ok\n\xed\xa0\x80\n", 2, 1, 3, 0xED),  # an encoded surrogate is not UTF-8
        (b"cut\n\xe2\x82", 2, 1, 4, 0xE2),  # a character cut at the end
    ],
)
def test_text_that_is_not_utf8_is_refused_at_its_first_bad_byte(
    data: bytes, line: int, column: int, offset: int, byte: int
) -> None:
    with pytest.raises(NotUtf8Text) as caught:
        utf8_text(data)
    found = caught.value
    assert (found.line, found.column, found.offset, found.byte) == (line, column, offset, byte)
    assert str(caught.value) == f"not UTF-8 text (line {line}, byte 0x{byte:02x} at offset {offset})"
    assert isinstance(caught.value, ValueError)


def test_utf8_text_is_decoded_whole_and_keeps_a_byte_order_mark() -> None:
    assert utf8_text("café\nÜberdruck ≥ 3 bar\n".encode()) == "café\nÜberdruck ≥ 3 bar\n"
    assert utf8_text(b"\xef\xbb\xbfts\n") == "\ufeffts\n"
    assert utf8_text(b"") == ""


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("a" * 121, "who acts (--by) has 121 characters; at most 120"),
        ("ada\rforged", "holds a line break"),
        ("   ", "--by names nobody: it is empty"),
    ],
)
def test_who_acts_on_the_command_line_fits_every_column_that_keeps_it(given: str, problem: str) -> None:
    @click.command()
    @click.option("--by", callback=actor_name)
    def command(by: str | None) -> None:
        click.echo(f"by={by}")

    assert CliRunner().invoke(command, ["--by", "a" * 120]).output == f"by={'a' * 120}\n"
    assert CliRunner().invoke(command, []).output == "by=None\n"
    refused = CliRunner().invoke(command, ["--by", given])
    assert refused.exit_code == 2 and problem in refused.output, refused.output


@pytest.mark.parametrize(
    ("site", "sites", "text"),
    [
        (None, [], "no alerts"),
        ("plant-a", ["plant-a"], "no alerts"),
        (
            "plant-b",
            ["plant-a", "plant-c"],
            "no alerts at site 'plant-b': the sites with alerts are plant-a, plant-c",
        ),
        ("plant-b", [], "no alerts: no site has any yet"),
    ],
)
def test_an_empty_listing_names_the_sites_that_have_entries(
    site: str | None, sites: list[str], text: str
) -> None:
    assert none_at_site("alerts", site, sites) == text
