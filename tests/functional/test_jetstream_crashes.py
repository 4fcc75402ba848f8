"""The JetStream transport survives SIGKILL: the relay, a consumer and the NATS server run as
real processes, are killed in the middle of the stream and restarted, and every committed event
reaches the stream exactly once, in log order, and is applied exactly once."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from plantwarden.core import eventlog, migrate
from plantwarden.core.clock import SystemClock
from plantwarden.core.config import CoreSettings, NatsSettings
from plantwarden.core.db import Store
from plantwarden.core.events import Event, envelope
from plantwarden.core.jetstream import relay_cursor
from tests.conftest import make_settings
from tests.helpers import clean_environment, free_port, plantwarden, start_plantwarden, wait_for
from tests.jetstream_support import (
    Ticked,
    applications,
    create_probe,
    nats_environment,
    nats_problem,
    record_ticks,
    relay_all,
    require,
    stream_for_test,
    stream_messages,
    with_jetstream,
)

REPO = Path(__file__).resolve().parents[2]
APPLIER = "applier"
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
Process = subprocess.Popen[str]


@pytest.fixture
def nats_settings() -> Iterator[NatsSettings]:
    yield from stream_for_test()


@pytest.fixture
def embedded(data_dir: Path) -> Iterator[Store]:
    """The embedded store of the processes under test (SQLite in the data directory)."""
    opened = Store.from_settings(make_settings(data_dir)[CoreSettings])
    migrate.ensure_ready(opened)
    create_probe(opened)
    yield opened
    opened.close()


@pytest.fixture
def started() -> Iterator[list[Process]]:
    """Processes a test starts; any still running at the end (a failed test) is killed."""
    processes: list[Process] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)


def poll(check: Callable[[], Any], *, timeout: float = 60, what: str) -> Any:
    """`wait_for` polling every 5 ms: the kills must land in the middle of fast work."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (result := check()) is not None:
            return result
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def kill(process: Process) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=20) == -signal.SIGKILL


def terminate(process: Process, logs: Path) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0, (logs / "stderr.log").read_text()


def cursor(store: Store, settings: NatsSettings) -> int:
    with store.transaction() as session:
        return eventlog.cursor_position(session, relay_cursor(settings))


def head(store: Store) -> int:
    with store.transaction() as session:
        return eventlog.head_position(session)


def record_some_and_roll_back_others(store: Store, start: int, count: int) -> list[Event]:
    """Record ticks one transaction each; every seventh transaction fails after its append."""
    committed = []
    for n in range(start, start + count):
        try:
            with store.transaction() as session:
                event = eventlog.record(session, envelope(Ticked(n), clock=SystemClock(), source="test"))
                if n % 7 == 0:
                    raise RuntimeError("the change this event announces failed")
            committed.append(event)
        except RuntimeError:
            pass
    return committed


def start_relay(started: list[Process], logs: Path, env: dict[str, str], *options: str) -> Process:
    logs.mkdir()
    started.append(start_plantwarden("events", "relay", "--batch-size", "2", *options, cwd=logs, env=env))
    return started[-1]


def relayed(logs: Path) -> int:
    """How many events the relay logged as already in the stream."""
    return sum(map(int, re.findall(r"\((\d+) already there\)", (logs / "stderr.log").read_text())))


@pytest.mark.slow
def test_a_relay_killed_mid_stream_delivers_every_committed_event_exactly_once(
    tmp_path: Path, data_dir: Path, embedded: Store, nats_settings: NatsSettings, started: list[Process]
) -> None:
    env = {"PLANTWARDEN_DATA_DIR": str(data_dir), **nats_environment(nats_settings)}
    committed = record_some_and_roll_back_others(embedded, 0, 400)
    relay = start_relay(started, tmp_path / "first", env)
    poll(lambda: cursor(embedded, nats_settings) >= 40 or None, what="the relay to get going")
    kill(relay)
    at_kill, in_stream = cursor(embedded, nats_settings), len(stream_messages(nats_settings))
    assert at_kill <= in_stream < len(committed), "killed mid-stream; the cursor never passes the acks"

    committed += record_some_and_roll_back_others(embedded, 400, 100)  # while the relay is down
    relay = start_relay(started, tmp_path / "second", env)
    end = head(embedded)
    wait_for(lambda: cursor(embedded, nats_settings) == end or None, what="the relay to catch up")
    terminate(relay, tmp_path / "second")
    stored = stream_messages(nats_settings)
    assert [m.event for m in stored] == committed  # all committed ones, once each, in log order
    assert [m.msg_id for m in stored] == [str(e.id) for e in committed]
    assert "relay stopped" in (tmp_path / "second" / "stderr.log").read_text()
    listing = plantwarden("events", "consumers", "--format", "json", cwd=tmp_path, env=env)
    assert json.loads(listing.stdout) == [
        {"name": relay_cursor(nats_settings), "position": end, "head": end, "behind": 0, "updated_at": ANY}
    ]


@pytest.mark.slow
def test_replaying_the_log_stores_nothing_twice(
    tmp_path: Path, data_dir: Path, embedded: Store, nats_settings: NatsSettings, started: list[Process]
) -> None:
    env = {"PLANTWARDEN_DATA_DIR": str(data_dir), **nats_environment(nats_settings)}
    committed = record_some_and_roll_back_others(embedded, 0, 60)
    relay_all(embedded, nats_settings)
    logs = tmp_path / "replay"
    relay = start_relay(started, logs, env, "--replay-after", "0")
    wait_for(lambda: relayed(logs) == len(committed) or None, what="the relay to publish everything again")
    terminate(relay, logs)
    assert "relaying again the events after position 0" in (logs / "stderr.log").read_text()
    assert [m.event for m in stream_messages(nats_settings)] == committed


def start_applier(started: list[Process], logs: Path, env: dict[str, str]) -> Process:
    """The consumer process of tests/jetstream_applier.py, logging to `logs`."""
    logs.mkdir()
    with (logs / "stdout.log").open("w") as stdout, (logs / "stderr.log").open("w") as stderr:
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.jetstream_applier", APPLIER],
                cwd=REPO,
                env=clean_environment(env),
                stdout=stdout,
                stderr=stderr,
                text=True,
            )
        )
    return started[-1]


def stall_and_kill(started: list[Process], logs: Path, env: dict[str, str], where: str) -> None:
    """Run the consumer until it stalls at `where` (see tests/jetstream_applier.py); kill it there."""
    marker = logs.with_suffix(".stalled")
    stalling = {**env, "PW_TEST_STALL": where, "PW_TEST_STALL_FILE": str(marker)}
    applier = start_applier(started, logs, stalling)
    wait_for(lambda: marker.exists() or None, what=f"the consumer to stall at {where}")
    kill(applier)


def settled_consumer(settings: NatsSettings) -> Any:
    """The consumer's state on the server once nothing awaits an acknowledgement (else None)."""

    async def scenario(js: Any) -> Any:
        return await js.consumer_info(settings.stream, APPLIER)

    state = with_jetstream(settings, scenario)
    return state if state.num_ack_pending == 0 else None


@pytest.mark.slow
def test_a_consumer_killed_mid_stream_applies_every_event_exactly_once(
    tmp_path: Path, data_dir: Path, embedded: Store, nats_settings: NatsSettings, started: list[Process]
) -> None:
    events = record_ticks(embedded, SystemClock(), 300)
    relay_all(embedded, nats_settings)
    env = {"PLANTWARDEN_DATA_DIR": str(data_dir), **nats_environment(nats_settings)}

    applier = start_applier(started, tmp_path / "first", env)  # killed wherever it happens to be
    poll(lambda: len(applications(embedded)) >= 60 or None, what="the consumer to get going")
    kill(applier)
    stall_and_kill(started, tmp_path / "second", env, "in-transaction:150")  # tick 150 not committed
    assert events[150].id not in applications(embedded)
    stall_and_kill(started, tmp_path / "third", env, "after-commit:250")  # committed, not acknowledged
    assert applications(embedded)[events[250].id] == 1

    applier = start_applier(started, tmp_path / "fourth", env)
    wait_for(lambda: len(applications(embedded)) == 300 or None, what="every event applied")
    state = wait_for(lambda: settled_consumer(nats_settings), what="the last acknowledgements")
    terminate(applier, tmp_path / "fourth")
    assert applications(embedded) == {e.id: 1 for e in events}  # each applied, none twice
    assert state.num_pending == 0
    assert state.delivered.consumer_seq > state.delivered.stream_seq == 300  # there were redeliveries
    skipped = re.findall(r"(\d+) redeliveries skipped", (tmp_path / "fourth" / "stderr.log").read_text())
    assert sum(map(int, skipped)) >= 1  # at least tick 250 came again and was only acknowledged


def start_nats_server(started: list[Process], port: int, store_dir: Path, log: Path) -> Process:
    """A NATS server of this test's own (JetStream in `store_dir`), answering on `port`."""
    command = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store_dir), "-l", str(log)]
    started.append(subprocess.Popen(command, text=True))
    url = f"nats://127.0.0.1:{port}"
    wait_for(lambda: None if nats_problem(url) else True, timeout=20, what="the private NATS server")
    return started[-1]


@pytest.mark.slow
def test_a_nats_server_killed_mid_stream_loses_no_acknowledged_event(
    tmp_path: Path, data_dir: Path, embedded: Store, nats_settings: NatsSettings, started: list[Process]
) -> None:
    require(None if Path(NATS_SERVER).exists() else f"{NATS_SERVER} is missing", "the nats-server binary")
    port, store_dir, server_log = free_port(), tmp_path / "jetstream", tmp_path / "nats-server.log"
    private = dataclasses.replace(nats_settings, url=f"nats://127.0.0.1:{port}")
    env = {
        "PLANTWARDEN_DATA_DIR": str(data_dir),
        "PLANTWARDEN_NATS_ACK_TIMEOUT": "2",
        **nats_environment(private),
    }
    committed = record_some_and_roll_back_others(embedded, 0, 400)
    server = start_nats_server(started, port, store_dir, server_log)
    relay = start_relay(started, tmp_path / "relay", env)
    poll(lambda: cursor(embedded, private) >= 40 or None, what="the relay to get going")
    kill(server)  # what the server acknowledged was written to its files: it must come back
    committed += record_some_and_roll_back_others(embedded, 400, 100)
    server = start_nats_server(started, port, store_dir, server_log)
    end = head(embedded)
    wait_for(lambda: cursor(embedded, private) == end or None, what="the relay to catch up")
    terminate(relay, tmp_path / "relay")
    assert [m.event for m in stream_messages(private)] == committed  # every committed event, once, in order
    assert "reconnected to NATS" in (tmp_path / "relay" / "stderr.log").read_text()
