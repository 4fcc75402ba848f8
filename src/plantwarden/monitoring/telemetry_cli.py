"""`plantwarden telemetry`: push samples from a file, query them, subscribe to device telemetry.

`push` checks the whole file before writing anything: a file with a bad line is refused with
every bad line's number and nothing of it is stored, so that pushing the corrected file again
never stores a sample twice.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from plantwarden.core.cli_values import FiniteFloatRange, IntegerRange
from plantwarden.core.clock import iso_nanoseconds
from plantwarden.core.errors import InvalidInput, PlantwardenError
from plantwarden.core.parsing import INTEGER, NotUtf8Text, utf8_text
from plantwarden.core.records.partitions import writer_name_of
from plantwarden.core.records.settings import RecordsSettings
from plantwarden.core.runtime import Runtime, RuntimeProvider
from plantwarden.monitoring.telemetry import (
    FIELDS,
    Sample,
    SampleQuery,
    TelemetryIngest,
    check_site,
    query_samples,
    sample_from,
    sample_rows,
)
from plantwarden.monitoring.telemetry_devices import Decoded, TelemetrySubscriber, Verdict, load_keys
from plantwarden.monitoring.telemetry_mqtt import Broker, check_topic_filter, parse_broker, tls_context

PUSH_WRITER = "telemetry-push"
WRITE_BATCH = 100_000
SHOWN_ERRORS = 20
REPORT_EVERY = 10.0
REPORTED_KEYS = 1000
"""Reasons and devices whose last report is remembered: device names come from the messages."""
REPORTED_NAME = 64


@click.group("telemetry")
def telemetry_group() -> None:
    """Numeric time series of devices: push, query, and subscribe to MQTT telemetry."""


def _site(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return check_site(value)
    except InvalidInput as error:
        raise click.BadParameter(error.message) from None


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    if INTEGER.fullmatch(value):
        return int(value)
    try:
        return iso_nanoseconds(value)
    except ValueError as error:
        raise click.BadParameter(f"{value!r} {error}") from None


def _ingest(runtime: Runtime, name: str) -> TelemetryIngest:
    settings = runtime.settings[RecordsSettings]
    return TelemetryIngest(
        runtime.records(), name, partition_seconds=settings.partition_seconds, chunk_rows=settings.chunk_rows
    )


@telemetry_group.command("push")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--site", required=True, callback=_site, help="The site the samples belong to.")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "jsonl"]),
    help="csv (header ts,device,variable,value[,quality]) or jsonl (one object a line); "
    "default: by the file's extension, csv for standard input.",
)
@click.option("--writer", default=PUSH_WRITER, show_default=True, help="Writer name in the records plane.")
@click.pass_obj
def push_command(
    provider: RuntimeProvider, source: IO[bytes], site: str, file_format: str | None, writer: str
) -> None:
    """Push samples from FILE (or - for standard input): all of them, or none if a line is bad."""
    name = str(getattr(source, "name", "-"))  # standard input may have no name
    file_format = file_format or ("jsonl" if Path(name).suffix in {".jsonl", ".ndjson"} else "csv")
    try:
        samples, problems = _read_samples(_text_lines(source), file_format)
    except NotUtf8Text as error:
        where = "standard input" if name in {"-", "<stdin>"} else name
        raise click.ClickException(f"{where}: {error}: nothing was written") from None
    if problems:
        for line, problem in problems[:SHOWN_ERRORS]:
            click.echo(f"line {line}: {problem}", err=True)
        if len(problems) > SHOWN_ERRORS:
            click.echo(f"... and {len(problems) - SHOWN_ERRORS} more bad lines", err=True)
        raise click.ClickException(f"{len(problems)} bad lines: nothing was written")
    if not samples:
        raise click.ClickException("no samples in the input")
    with _ingest(provider.runtime(), writer) as ingest:
        for start in range(0, len(samples), WRITE_BATCH):
            try:
                ingest.write(site, samples[start : start + WRITE_BATCH])
            except (PlantwardenError, OSError) as error:
                raise click.ClickException(_write_failed(error, start, len(samples))) from None
            if len(samples) > WRITE_BATCH:
                click.echo(
                    f"written {min(start + WRITE_BATCH, len(samples)):,} of {len(samples):,}", err=True
                )
    click.echo(f"pushed {len(samples):,} samples to site {site}")


def _write_failed(error: PlantwardenError | OSError, start: int, total: int) -> str:
    """Why a push stopped, and what of it is stored already: the samples are written in batches of
    `WRITE_BATCH` in file order, so a failure after the first batch leaves the earlier ones stored
    (and the message of a partly written batch says which of its samples are)."""
    problem = error.message if isinstance(error, PlantwardenError) else str(error)
    if not start:
        return problem
    return (
        f"{problem}. The first {start:,} of {total:,} samples of the input (in file order) were stored "
        "before this failure: pushing the whole file again would store them twice; push the rest only"
    )


def _text_lines(source: IO[bytes]) -> Iterator[str]:
    """The lines of `source` as text, as `open()` gives them (a line ends at \\n, \\r\\n or \\r,
    given as \\n), without a byte-order mark at the start (as Excel saves CSV); `NotUtf8Text` at
    the first byte of the input that is not UTF-8. Read a line at a time: a large file is never
    held whole."""
    offset = 0
    for number, raw in enumerate(source, start=1):
        try:
            text = utf8_text(raw)
        except NotUtf8Text as error:  # where in the input, not in the line
            raise NotUtf8Text(number, error.column, offset + error.offset, error.byte) from None
        offset += len(raw)
        text = text.removeprefix("\ufeff") if number == 1 else text
        if "\r" in text:
            yield from io.StringIO(text, newline=None)
        else:
            yield text


def _read_samples(lines: Iterable[str], file_format: str) -> tuple[list[Sample], list[tuple[int, str]]]:
    """Every line checked: the samples, and (line number, problem) for each bad line."""
    now = time.time_ns()
    samples: list[Sample] = []
    problems: list[tuple[int, str]] = []
    rows = _csv_rows(lines) if file_format == "csv" else _jsonl_rows(lines)
    for line, row in rows:
        try:
            if isinstance(row, str):
                raise InvalidInput(row)
            samples.append(sample_from(row, now))
        except InvalidInput as error:
            problems.append((line, error.message))
        if line % 100_000 == 0:
            click.echo(f"checked {line:,} lines", err=True)
    return samples, problems


def _csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    reader = csv.reader(lines)
    rows = _checked(reader)
    header = next(rows, None)
    if header is None or isinstance(header, str):
        yield from [] if header is None else [(1, header)]
        return
    names = [name.strip() for name in header]
    if not {"ts", "device", "variable", "value"} <= set(names) or not set(names) <= set(FIELDS):
        yield 1, f"the header must be ts,device,variable,value[,quality], not {','.join(names)[:100]}"
        return
    for row in rows:
        if isinstance(row, str):
            yield reader.line_num, row
            return
        if not row:
            continue
        if len(row) != len(names):
            yield reader.line_num, f"{len(row)} fields where the header has {len(names)}"
            continue
        yield (
            reader.line_num,
            {n: (v if v.strip() or n != "value" else None) for n, v in zip(names, row, strict=True)},
        )


def _checked(reader: Any) -> Iterator[list[str] | str]:
    """The reader's rows, then the reason it stopped at a line that is not CSV (if it did)."""
    try:
        yield from reader
    except csv.Error as error:
        too_long = "field limit" in str(error)
        yield (
            f"a field is longer than {csv.field_size_limit()} characters (an unclosed quote?);"
            " the rest of the input was not read"
            if too_long
            else f"not CSV ({error}); the rest of the input was not read"
        )


def _jsonl_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except ValueError as error:
            yield number, f"not JSON: {error}"
            continue
        yield number, row if isinstance(row, dict) else "not a JSON object"


@telemetry_group.command("query")
@click.option("--site", required=True, callback=_site, help="The site.")
@click.option("--device", help="Only this device.")
@click.option("--variable", help="Only this variable.")
@click.option("--since", callback=_moment, metavar="ISO|NS", help="From this time (default: the first).")
@click.option("--until", callback=_moment, metavar="ISO|NS", help="Before this time (default: no end).")
@click.option("--limit", type=IntegerRange(1, 1_000_000), default=100, show_default=True)
@click.option("--oldest-first", is_flag=True, help="Oldest samples first (default: newest first).")
@click.option(
    "--format", "output", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
@click.pass_obj
def query_command(
    provider: RuntimeProvider,
    site: str,
    device: str | None,
    variable: str | None,
    since: int | None,
    until: int | None,
    limit: int,
    oldest_first: bool,
    output: str,
) -> None:
    """Samples of a site, newest first, by device, variable and time."""
    request = SampleQuery(site, device, variable, since, until, limit, newest_first=not oldest_first)
    rows = list(sample_rows(query_samples(provider.runtime().records(), request)))
    if output == "json":
        click.echo(json.dumps(rows, indent=1))
    elif output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows(
            [[r["ts"], r["device"], r["variable"], _text(r["value"]), r["quality"]] for r in rows]
        )
        click.echo(buffer.getvalue(), nl=False)
    elif not rows:
        click.echo("no samples")
    else:
        for row in rows:
            click.echo(
                f"{row['ts']}  {row['device']}  {row['variable']}  {_text(row['value'])}  q{row['quality']}"
            )


def _text(value: float | None) -> str:
    return "" if value is None else repr(value)


@telemetry_group.command("subscribe")
@click.option("--broker", "broker_text", required=True, metavar="HOST:PORT", help="The MQTT broker.")
@click.option("--site", required=True, callback=_site, help="The site the samples belong to.")
@click.option("--topic", help="Topic filter (default: SITE/+/+/telemetry, the devices' topics).")
@click.option(
    "--tls-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CA of the broker."
)
@click.option(
    "--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Client certificate."
)
@click.option(
    "--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Its private key."
)
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON object: device -> hex key; messages whose tag does not verify are dropped and counted.",
)
@click.option(
    "--writer",
    help="Writer name in the records plane (default: mqtt-SITE; a long SITE cut, with a hash of it).",
)
@click.option("--duration", type=FiniteFloatRange(min=0.1), help="Stop after this many seconds.")
@click.option("--max-messages", type=IntegerRange(min=1), help="Stop after this many messages.")
@click.pass_obj
def subscribe_command(
    provider: RuntimeProvider,
    broker_text: str,
    site: str,
    topic: str | None,
    tls_ca: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    keys_file: Path | None,
    writer: str | None,
    duration: float | None,
    max_messages: int | None,
) -> None:
    """Store the devices' MQTT telemetry, flushed every second and on Ctrl-C or SIGTERM."""
    host, port = parse_broker(broker_text)
    topic_filter = check_topic_filter(topic or f"{site}/+/+/telemetry")
    uses_tls = any(path is not None for path in (tls_ca, tls_cert, tls_key))  # any --tls-* means TLS
    broker = Broker(host, port, tls_context(tls_ca, tls_cert, tls_key) if uses_tls else None)
    keys = load_keys(keys_file) if keys_file is not None else None
    if keys is None:
        click.echo(
            "warning: no --keys: message tags are not checked (anyone who can publish can forge)", err=True
        )
    with _ingest(provider.runtime(), writer or writer_name_of("mqtt", site)) as ingest:
        subscriber = TelemetrySubscriber(ingest, site, keys, _Rejections())
        asyncio.run(_subscribe(subscriber, broker, topic_filter, duration, max_messages))
    counters = subscriber.counters
    click.echo(counters.summary())
    forged = counters.by_verdict[Verdict.FORGED] + counters.by_verdict[Verdict.UNKNOWN_DEVICE]
    if forged:
        click.echo(f"warning: {forged} messages failed authentication and were dropped", err=True)


async def _subscribe(
    subscriber: TelemetrySubscriber,
    broker: Broker,
    topic_filter: str,
    duration: float | None,
    max_messages: int | None,
) -> None:
    await until_stopped(
        lambda stop: subscriber.run(
            broker,
            topic_filter,
            stop,
            client_id=f"pw-telemetry-{os.getpid()}",
            on_status=lambda text: click.echo(text, err=True),
            max_messages=max_messages,
        ),
        duration,
    )


async def until_stopped(run: Callable[[asyncio.Event], Awaitable[None]], duration: float | None) -> None:
    """Run `run(stop)` until it returns; `stop` is set by Ctrl-C, SIGTERM (in the main thread)
    or after `duration` seconds."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    if duration is not None:
        loop.call_later(duration, stop.set)
    try:
        await run(stop)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


class _Rejections:
    """Says why messages are dropped: one line per reason and device every 10 s at most.

    The device names come from the messages, so any publisher could make up new ones without end:
    a name counts by its first `REPORTED_NAME` characters, and only the last `REPORTED_KEYS`
    reasons and devices reported are remembered (an older one forgotten is reported again)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()

    def __call__(self, decoded: Decoded, topic: str) -> None:
        key = (decoded.verdict.value, (decoded.device or "?")[:REPORTED_NAME])
        shown, hidden = self.last.get(key, (-REPORT_EVERY, 0))
        if self.clock() - shown < REPORT_EVERY:
            self._remember(key, (shown, hidden + 1))
            return
        more = f" ({hidden} more since the last report)" if hidden else ""
        what = f"dropped {decoded.verdict.value} message of device {key[1]!r} on {topic[:200]!r}"
        click.echo(f"{what}: {decoded.reason}{more}", err=True)
        self._remember(key, (self.clock(), 0))

    def _remember(self, key: tuple[str, str], value: tuple[float, int]) -> None:
        self.last[key] = value
        self.last.move_to_end(key)
        while len(self.last) > REPORTED_KEYS:
            self.last.popitem(last=False)
