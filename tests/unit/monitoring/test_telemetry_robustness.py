"""What publishers and pushers send that once broke telemetry: integers too large for a float,
digits `int()` refuses, device names without end, a byte-order mark, and a push stopped half-way
by a partition another writer holds."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.config import CoreSettings
from plantwarden.core.db import Store
from plantwarden.core.errors import Conflict, InvalidInput
from plantwarden.core.records.backend import open_backend
from plantwarden.core.records.partitions import PartitionBackend
from plantwarden.core.records.settings import RecordsSettings
from plantwarden.core.settings import Settings
from plantwarden.monitoring.telemetry import (
    Sample,
    SampleQuery,
    TelemetryIngest,
    parse_time,
    query_samples,
    sample_from,
    sample_rows,
)
from plantwarden.monitoring.telemetry_cli import REPORTED_KEYS, REPORTED_NAME, _Rejections, telemetry_group
from plantwarden.monitoring.telemetry_devices import (
    RECENT_DEVICES,
    Decoded,
    TelemetrySubscriber,
    Verdict,
    decode_message,
    load_keys,
)
from plantwarden.sim import mqtt
from tests.unit.monitoring.test_telemetry import GOOD, NOW, Provider, provider
from tests.unit.monitoring.test_telemetry_mqtt import broker, good, run_subscriber

__all__ = ["broker", "provider"]  # fixtures


def _backend(settings: Settings, store: Store) -> PartitionBackend:
    return open_backend(settings[CoreSettings], settings[RecordsSettings], store)


def _message(device: str, ts: object, values: Mapping[str, object] | None = None) -> bytes:
    return json.dumps({"device": device, "seq": 1, "ts": ts, "values": values or {"level": 1.0}}).encode()


def test_a_time_too_large_for_a_float_is_malformed() -> None:
    now = time.time_ns()
    for ts in (10**400, -(10**400), 1.7e308):
        decoded = decode_message("plant-a/cell-1/tank-1/telemetry", _message("tank-1", ts), None, now)
        assert decoded.verdict is Verdict.MALFORMED
        assert decoded.reason == "ts must be seconds since the epoch"


def test_the_subscriber_counts_a_failing_message_and_goes_on(settings: Settings, store: Store) -> None:
    rejected: list[Decoded] = []
    with TelemetryIngest(_backend(settings, store), "telemetry-robust") as ingest:
        subscriber = TelemetrySubscriber(ingest, "plant-a", None, lambda d, _t: rejected.append(d))
        huge = subscriber.handle("plant-a/cell-1/tank-1/telemetry", _message("tank-1", 10**400))
        assert huge.verdict is Verdict.MALFORMED
        # A failure nobody foresaw (here a key that is not bytes makes HMAC raise TypeError) is
        # a malformed message too, not the end of the subscriber.
        subscriber.keys = {"tank-1": "not bytes"}  # type: ignore[dict-item]  # a failure inside decoding
        odd = subscriber.handle("plant-a/cell-1/tank-1/telemetry", _message("tank-1", time.time()))
        assert odd.verdict is Verdict.MALFORMED and odd.reason == "cannot be handled (TypeError)"
        subscriber.keys = None
        fine = subscriber.handle("plant-a/cell-1/tank-1/telemetry", _message("tank-1", time.time()))
        assert fine.verdict is Verdict.ACCEPTED
    assert subscriber.counters.messages == 3
    assert subscriber.counters.by_verdict[Verdict.MALFORMED] == 2
    assert [d.verdict for d in rejected] == [Verdict.MALFORMED, Verdict.MALFORMED]


def test_the_receive_loop_survives_a_huge_time(
    broker: tuple[str, int], settings: Settings, store: Store
) -> None:
    site = f"test-{uuid.uuid4().hex[:10]}"
    topic = f"{site}/cell-1/tank-1/telemetry"
    backend = _backend(settings, store)
    packets = [mqtt.publish(topic, _message("tank-1", 10**400)), mqtt.publish(topic, good(2, 51.0))]

    with TelemetryIngest(backend, "mqtt-robust") as ingest:
        subscriber = run_subscriber(
            TelemetrySubscriber(ingest, site, None, lambda _d, _t: None), broker, site, packets
        )
    counts = subscriber.counters.by_verdict
    assert (counts[Verdict.MALFORMED], counts[Verdict.ACCEPTED]) == (1, 1)
    rows = list(sample_rows(query_samples(backend, SampleQuery(site, variable="level"))))
    assert [r["value"] for r in rows] == [51.0]


def test_what_is_remembered_per_device_is_bounded(settings: Settings, store: Store) -> None:
    with TelemetryIngest(_backend(settings, store), "telemetry-robust") as ingest:
        subscriber = TelemetrySubscriber(ingest, "plant-a", None, lambda _d, _t: None)
        for number in range(RECENT_DEVICES + 200):
            decoded = subscriber.handle("made-up", _message(f"device-{number}", time.time()))
            assert decoded.verdict is Verdict.ACCEPTED
        assert len(subscriber._recent) == RECENT_DEVICES
        assert "device-0" not in subscriber._recent and f"device-{RECENT_DEVICES + 199}" in subscriber._recent


def test_rejection_reports_remember_a_bounded_number_of_devices(capsys: pytest.CaptureFixture[str]) -> None:
    moments = iter(range(0, 10**9))
    rejections = _Rejections(clock=lambda: float(next(moments)) / 1000)  # every call 1 ms later
    for number in range(REPORTED_KEYS + 500):
        name = f"{number:06d}" + "x" * 10_000
        rejections(Decoded(Verdict.UNKNOWN_DEVICE, name, reason="no key"), "t")
    assert len(rejections.last) == REPORTED_KEYS
    assert all(len(device) == REPORTED_NAME for _, device in rejections.last)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == REPORTED_KEYS + 500  # each a new device, each reported once
    assert all(len(line) < 400 for line in lines)


@pytest.mark.parametrize("digits", ["²", "-¹²", "١٢٣"])  # superscripts, Arabic-Indic digits
def test_digits_int_refuses_are_invalid_input(digits: str) -> None:
    with pytest.raises(InvalidInput, match="ts"):
        parse_time(digits, NOW)
    with pytest.raises(InvalidInput, match="quality must be an integer"):
        sample_from({**GOOD, "quality": digits}, NOW)
    result = CliRunner().invoke(telemetry_group, ["query", "--site", "plant-a", "--since", digits])
    assert result.exit_code == 2 and "is not an ISO 8601 time" in result.stderr


def test_a_name_with_a_lone_surrogate_is_refused_not_stored() -> None:
    payload = b'{"device": "tank-1", "seq": 1, "ts": %d, "values": {"lev\\ud800el": 1.0}}' % int(time.time())
    decoded = decode_message("plant-a/cell-1/tank-1/telemetry", payload, None, time.time_ns())
    assert decoded.verdict is Verdict.MALFORMED and "lone surrogate" in decoded.reason
    with pytest.raises(InvalidInput, match="device must be valid Unicode"):
        sample_from({**GOOD, "device": "tank-\ud800"}, NOW)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{\n  "pump-1": "00ff\xfe"\n}', "not UTF-8 text (line 2, byte 0xfe at offset 19)"),
        (b"[]", "must hold a JSON object mapping device names to hex keys"),
    ],
)
def test_a_keys_file_that_is_not_a_json_object_of_keys_is_named(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_bytes(content)
    with pytest.raises(InvalidInput) as refused:
        load_keys(keys)
    assert str(keys) in refused.value.message and problem in refused.value.message


def test_push_reads_a_csv_with_a_byte_order_mark(provider: Provider, tmp_path: Path) -> None:
    source = tmp_path / "from-excel.csv"
    source.write_bytes(
        "\ufeffts,device,variable,value\r\n2026-11-26T07:00:00Z,tank-1,level,51.5\r\n".encode()
    )
    result = CliRunner().invoke(telemetry_group, ["push", str(source), "--site", "plant-a"], obj=provider)
    assert result.exit_code == 0, result.stderr
    assert "pushed 1 samples" in result.stdout
    with_mark = "\ufeff" + json.dumps({**GOOD, "device": "tank-2"}) + "\n"
    result = CliRunner().invoke(
        telemetry_group, ["push", "-", "--site", "plant-a", "--format=jsonl"], obj=provider, input=with_mark
    )
    assert result.exit_code == 0, result.stderr


def test_a_push_stopped_by_a_held_partition_says_what_is_stored(settings: Settings, store: Store) -> None:
    backend = _backend(settings, store)
    hour = 3600 * SECOND_NS
    base = NOW - 2 * hour  # 06:00, a partition's start
    samples = [
        Sample(base + 60 * SECOND_NS, "tank-1", "level", 1.0),
        Sample(base + hour + 60 * SECOND_NS, "tank-1", "level", 2.0),
        Sample(base + 120 * SECOND_NS, "tank-1", "level", 3.0),
    ]
    held = backend.open_writer("telemetry", "telemetry-held", base + hour, base + 2 * hour)
    try:
        with TelemetryIngest(backend, "telemetry-held", wait_seconds=0.2) as ingest:
            with pytest.raises(Conflict) as partly:
                ingest.write("plant-a", samples)
            with pytest.raises(Conflict) as not_at_all:
                ingest.write("plant-a", [samples[1]])
    finally:
        held.close()
    assert (
        "samples of earlier hours in this push may already be stored: 2 of 3 (every sample before "
        "2026-11-26T07:00:00.000000+00:00) are"
    ) in partly.value.message
    assert partly.value.details == {"stored": 2}
    assert "earlier hours" not in not_at_all.value.message
    rows = sample_rows(query_samples(backend, SampleQuery("plant-a", newest_first=False)))
    assert [r["value"] for r in rows] == [1.0, 3.0]
