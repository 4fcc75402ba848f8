from __future__ import annotations

import itertools
import json
import logging
import pickle
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from plantwarden.cli.audit import audit_group
from plantwarden.cli.catalog import SECTIONS
from plantwarden.cli.state import CliState
from plantwarden.core import auditlog, backup, migrate
from plantwarden.core.auditlog import (
    GENESIS_MAC,
    AuditEntry,
    AuditKeys,
    AuditKeyUnavailable,
    AuditLog,
    AuditSettings,
    Checkpoint,
    Checkpoints,
)
from plantwarden.core.clock import FixedClock
from plantwarden.core.config import CoreSettings
from plantwarden.core.db import Store
from plantwarden.core.errors import ConfigurationError, InvalidInput
from plantwarden.core.runtime import Runtime
from plantwarden.core.settings import load_settings
from tests.conftest import StoreFactory
from tests.helpers import clean_environment

ROOT = Path(__file__).resolve().parents[3]
ACTIONS = ("user.login", "user.login_failed", "access.denied", "user.created", "grant.added", "token.created")


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


@pytest.fixture
def keys() -> AuditKeys:
    return AuditKeys.generate()


@pytest.fixture
def checkpoint_file(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "checkpoints.log"


def fill(
    store: Store, keys: AuditKeys, clock: FixedClock, count: int, *, checkpoints: Checkpoints | None = None
) -> list[AuditEntry]:
    """Append `count` entries, each in a transaction of its own, one second apart."""
    entries = []
    for number in range(count):
        clock.advance(timedelta(seconds=1))
        with store.transaction() as session:
            entries.append(
                auditlog.append(
                    session,
                    keys,
                    actor="alice" if number % 2 else None,
                    source="test",
                    action=ACTIONS[number % len(ACTIONS)],
                    outcome=("success", "failure", "denied")[number % 3],
                    site="plant-a" if number % 3 else None,
                    target=f"user:bob-{number}",
                    details={"number": number, "ratio": number / 7, "tags": ["x", "é"], "nested": {"b": 1}},
                    clock=clock,
                    checkpoints=checkpoints,
                )
            )
    return entries


def checkpoint_now(store: Store, keys: AuditKeys, path: Path, clock: FixedClock) -> Checkpoint:
    with store.transaction() as session:
        return auditlog.write_checkpoint(session, keys, path, clock=clock)


def verify(store: Store, keys: AuditKeys, path: Path) -> auditlog.VerifyReport:
    with store.transaction() as session:
        return auditlog.verify(session, keys, path)


def sql(store: Store, statement: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(text(statement))


# --- appending and a clean log -------------------------------------------------------------------


def test_appends_form_a_chain_that_verifies(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path
) -> None:
    entries = fill(ready, keys, clock, 12)
    assert [e.seq for e in entries] == list(range(1, 13))
    assert entries[0].prev_mac == GENESIS_MAC
    assert all(later.prev_mac == earlier.mac for earlier, later in itertools.pairwise(entries))
    checkpoint = checkpoint_now(ready, keys, checkpoint_file, clock)
    assert (checkpoint.seq, checkpoint.mac) == (12, entries[-1].mac)

    report = verify(ready, keys, checkpoint_file)
    assert report.ok, report.problems
    assert (report.entries, report.head_seq, report.head_mac) == (12, 12, entries[-1].mac)
    assert report.checkpoints == 1 and report.newest_checkpoint == checkpoint
    assert report.warnings == []
    with ready.transaction() as session:
        stored = session.get(AuditEntry, 5)
        assert stored is not None
        assert stored.details == {"number": 4, "ratio": 4 / 7, "tags": ["x", "é"], "nested": {"b": 1}}
        assert stored.at == entries[4].at and stored.at.tzinfo is not None


def test_an_empty_log_verifies_and_a_log_without_checkpoints_warns(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path
) -> None:
    report = verify(ready, keys, checkpoint_file)
    assert report.ok and (report.entries, report.head_seq, report.head_mac) == (0, 0, GENESIS_MAC)
    assert report.warnings == []
    fill(ready, keys, clock, 3)
    report = verify(ready, keys, checkpoint_file)
    assert report.ok and "truncated tail cannot be detected" in report.warnings[0]


def test_the_entry_exists_only_if_the_transaction_commits(
    ready: Store, keys: AuditKeys, clock: FixedClock
) -> None:
    fill(ready, keys, clock, 2)
    with pytest.raises(RuntimeError), ready.transaction() as session:
        auditlog.append(
            session, keys, actor="x", source="t", action="user.login", outcome="success", clock=clock
        )
        raise RuntimeError("the action failed")
    entry = auditlog.append_committed(
        ready, keys, actor="x", source="t", action="access.denied", outcome="denied", clock=clock
    )
    assert entry.seq == 3


def test_appends_refuse_bad_values_and_secrets(ready: Store, keys: AuditKeys, clock: FixedClock) -> None:
    def attempt(**fields: object) -> None:
        values: dict[str, object] = {
            "actor": "a",
            "source": "t",
            "action": "user.login",
            "outcome": "success",
        }
        values.update(fields)
        with ready.transaction() as session:
            auditlog.append(session, keys, clock=clock, **values)  # type: ignore[arg-type]

    with pytest.raises(InvalidInput, match="outcome"):
        attempt(outcome="maybe")
    with pytest.raises(InvalidInput, match="action"):
        attempt(action="Login")
    with pytest.raises(InvalidInput, match="never hold secrets"):
        attempt(details={"user": "bob", "password": "hunter2"})
    with pytest.raises(InvalidInput, match="never hold secrets"):
        attempt(details={"changes": [{"setting": "x", "Token": "abc"}]})
    with pytest.raises(InvalidInput, match="never hold secrets"):
        attempt(details={"new_password": "hunter3"})
    with pytest.raises(InvalidInput, match="unprintable"):
        attempt(target="user:bob\nforged line")
    with pytest.raises(InvalidInput, match="JSON"):
        attempt(details={"value": float("nan")})
    with pytest.raises(InvalidInput, match="longer"):
        attempt(actor="a" * 201)
    with ready.transaction() as session:
        assert auditlog.count(session) == 0
    attempt(
        action="settings.changed", details={"key": "server.port", "old": 8000, "new": 8443, "token_id": "t1"}
    )
    with ready.transaction() as session:
        assert auditlog.count(session) == 1


# --- tampering ---------------------------------------------------------------------------------


def test_an_edited_row_is_caught_and_named(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path
) -> None:
    fill(ready, keys, clock, 10)
    checkpoint_now(ready, keys, checkpoint_file, clock)
    with ready.transaction() as session:
        entry = session.get(AuditEntry, 6)
        assert entry is not None
        entry.details = {**entry.details, "number": 999}
    report = verify(ready, keys, checkpoint_file)
    assert report.kinds() == ["edited"]
    assert report.problems[0].seq == 6 and "entry 6 was edited" in report.problems[0].message


def test_an_edited_outcome_or_actor_is_caught(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path
) -> None:
    fill(ready, keys, clock, 6)
    sql(ready, "UPDATE audit_log SET outcome = 'success' WHERE seq = 3")
    sql(ready, "UPDATE audit_log SET actor = NULL WHERE seq = 6")
    report = verify(ready, keys, checkpoint_file)
    assert [(p.kind, p.seq) for p in report.problems] == [("edited", 3), ("edited", 6)]


def test_a_deleted_row_in_the_middle_is_caught(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path
) -> None:
    fill(ready, keys, clock, 10)
    checkpoint_now(ready, keys, checkpoint_file, clock)
    sql(ready, "DELETE FROM audit_log WHERE seq = 5")
    report = verify(ready, keys, checkpoint_file)
    assert [(p.kind, p.seq) for p in report.problems] == [("deleted", 5)]
    assert "entry 5 is missing" in report.problems[0].message


def test_deleting_the_first_rows_is_caught(
    ready: Store, keys: AuditKeys, clock: FixedClock, tmp_path: Path
) -> None:
    fill(ready, keys, clock, 6)
    sql(ready, "DELETE FROM audit_log WHERE seq <= 2")
    report = verify(ready, keys, tmp_path / "none.log")
    assert [(p.kind, p.seq, p.last_seq) for p in report.problems] == [("deleted", 1, 2)]


def test_a_truncated_tail_is_caught_through_the_checkpoint(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path
) -> None:
    fill(ready, keys, clock, 10)
    checkpoint_now(ready, keys, checkpoint_file, clock)
    sql(ready, "DELETE FROM audit_log WHERE seq >= 8")
    report = verify(ready, keys, checkpoint_file)
    assert [(p.kind, p.seq, p.last_seq) for p in report.problems] == [("truncated", 8, 10)]
    assert "the log ends at seq 7" in report.problems[0].message
    assert "names seq 10" in report.problems[0].message


def test_a_truncated_tail_stays_caught_after_new_appends(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path
) -> None:
    fill(ready, keys, clock, 10)
    checkpoint_now(ready, keys, checkpoint_file, clock)
    sql(ready, "DELETE FROM audit_log WHERE seq >= 8")
    fill(ready, keys, clock, 4)  # the process appends on, from the truncated head: seq 8..11
    report = verify(ready, keys, checkpoint_file)
    assert [(p.kind, p.seq) for p in report.problems] == [("checkpoint_mismatch", 10)]


def test_reordered_entries_are_caught(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path
) -> None:
    fill(ready, keys, clock, 8)
    checkpoint_now(ready, keys, checkpoint_file, clock)
    sql(ready, "UPDATE audit_log SET seq = -1 WHERE seq = 3")
    sql(ready, "UPDATE audit_log SET seq = 3 WHERE seq = 4")
    sql(ready, "UPDATE audit_log SET seq = 4 WHERE seq = -1")
    report = verify(ready, keys, checkpoint_file)
    assert [(p.kind, p.seq) for p in report.problems] == [("reordered", 3), ("reordered", 4)]
    assert "entry 3 holds the entry written as seq 4" in report.problems[0].message


def test_a_chain_recomputed_without_the_key_is_named_once(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path
) -> None:
    fill(ready, keys, clock, 10)
    checkpoint_now(ready, keys, checkpoint_file, clock)
    attacker = AuditKeys.generate()  # knows the algorithm, not the key
    with ready.transaction() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        prev = GENESIS_MAC
        for entry in entries:
            if entry.seq == 4:
                entry.details = {"number": 0, "note": "nothing happened"}
            entry.prev_mac = prev
            entry.mac = prev = attacker.mac(prev, auditlog.canonical_json(entry.document()))
    report = verify(ready, keys, checkpoint_file)
    assert report.kinds() == ["recomputed", "checkpoint_mismatch"]
    recomputed = report.problems[0]
    assert (recomputed.seq, recomputed.last_seq) == (1, 10)
    assert "the chain was recomputed without the key" in recomputed.message
    # Without a checkpoint it is still one problem, not ten edits.
    checkpoint_file.unlink()
    assert verify(ready, keys, checkpoint_file).kinds() == ["recomputed"]


def test_a_chain_recomputed_from_an_edit_on_is_caught(
    ready: Store, keys: AuditKeys, clock: FixedClock, tmp_path: Path
) -> None:
    fill(ready, keys, clock, 10)
    attacker = AuditKeys.generate()
    with ready.transaction() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.seq >= 6).order_by(AuditEntry.seq)
        ).all()
        prev = entries[0].prev_mac
        for entry in entries:
            entry.prev_mac = prev
            entry.mac = prev = attacker.mac(prev, auditlog.canonical_json(entry.document()))
    report = verify(ready, keys, tmp_path / "none.log")
    assert [(p.kind, p.seq, p.last_seq) for p in report.problems] == [("recomputed", 6, 10)]


def test_an_entry_spliced_in_from_another_chain_breaks_the_chain(
    ready: Store, keys: AuditKeys, clock: FixedClock, tmp_path: Path
) -> None:
    fill(ready, keys, clock, 6)
    # A valid entry, but chained to something other than entry 3 (another log under the same key).
    with ready.transaction() as session:
        entry = session.get(AuditEntry, 4)
        assert entry is not None
        entry.prev_mac = "ab" * 32
        entry.mac = keys.mac(entry.prev_mac, auditlog.canonical_json(entry.document()))
    report = verify(ready, keys, tmp_path / "none.log")
    assert [(p.kind, p.seq) for p in report.problems] == [("chain_broken", 4), ("chain_broken", 5)]


def test_damaged_or_edited_checkpoint_lines_are_caught(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path
) -> None:
    fill(ready, keys, clock, 5)
    checkpoint_now(ready, keys, checkpoint_file, clock)
    fill(ready, keys, clock, 5)
    checkpoint_now(ready, keys, checkpoint_file, clock)
    first, second = checkpoint_file.read_text().splitlines()
    assert '"seq":10' in second
    forged = second.replace('"seq":10', '"seq":12')
    checkpoint_file.write_text(f"{first}\n{forged}\nnot a checkpoint {{\n")
    report = verify(ready, keys, checkpoint_file)
    assert [(p.kind, p.line) for p in report.problems] == [
        ("checkpoint_forged", 2),
        ("checkpoint_damaged", 3),
    ]
    assert report.problems[0].seq == 12 and "does not match its signature" in report.problems[0].message
    signed_by_another = Checkpoint.sign(AuditKeys.generate(), 10, "0" * 64, clock.now())
    checkpoint_file.write_text(f"{first}\n{signed_by_another.line()}\n")
    assert verify(ready, keys, checkpoint_file).kinds() == ["checkpoint_forged"]


def test_an_unreadable_value_is_reported_not_raised(
    ready: Store, keys: AuditKeys, clock: FixedClock, tmp_path: Path
) -> None:
    if ready.dialect != "sqlite":
        pytest.skip("PostgreSQL checks the types of what is written")
    fill(ready, keys, clock, 4)
    sql(ready, "UPDATE audit_log SET at = 'yesterday', details = '{broken' WHERE seq = 2")
    report = verify(ready, keys, tmp_path / "none.log")
    assert [(p.kind, p.seq) for p in report.problems] == [("edited", 2)]


def test_a_log_moved_through_a_backup_still_verifies(
    ready: Store,
    store_factory: StoreFactory,
    keys: AuditKeys,
    clock: FixedClock,
    checkpoint_file: Path,
    tmp_path: Path,
) -> None:
    fill(ready, keys, clock, 6)
    checkpoint_now(ready, keys, checkpoint_file, clock)
    archive = tmp_path / "backup.tar.gz"
    backup.create_backup(ready, archive, version="test")
    target = store_factory()
    backup.restore_backup(target, archive)
    report = verify(target, keys, checkpoint_file)
    assert report.ok, report.problems
    assert report.head_seq == 6


# --- checkpoints -------------------------------------------------------------------------------


def test_checkpoints_are_written_after_the_commit_of_every_nth_entry(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path
) -> None:
    every = Checkpoints(path=checkpoint_file, every=3)
    entries = fill(ready, keys, clock, 7, checkpoints=every)
    written = [Checkpoint.parse(line) for line in checkpoint_file.read_text().splitlines()]
    assert [(c.seq, c.mac) for c in written] == [(3, entries[2].mac), (6, entries[5].mac)]
    assert all(c.is_signed_by(keys) for c in written)
    # Entry 9 is appended but rolled back: no checkpoint names it.
    with pytest.raises(RuntimeError), ready.transaction() as session:
        for _ in range(2):
            auditlog.append(
                session,
                keys,
                actor=None,
                source="t",
                action="user.login",
                outcome="success",
                clock=clock,
                checkpoints=every,
            )
        raise RuntimeError("rolled back")
    assert len(checkpoint_file.read_text().splitlines()) == 2
    assert verify(ready, keys, checkpoint_file).ok
    # A savepoint released inside a transaction that commits writes it once, after the commit.
    with ready.transaction() as session:
        with session.begin_nested():
            auditlog.append(
                session,
                keys,
                actor=None,
                source="t",
                action="user.login",
                outcome="success",
                clock=clock,
                checkpoints=every,
            )
            auditlog.append(
                session,
                keys,
                actor=None,
                source="t",
                action="user.login",
                outcome="success",
                clock=clock,
                checkpoints=every,
            )
        assert len(checkpoint_file.read_text().splitlines()) == 2
    assert [Checkpoint.parse(line).seq for line in checkpoint_file.read_text().splitlines()] == [3, 6, 9]
    assert stat.S_IMODE(checkpoint_file.stat().st_mode) & 0o022 == 0
    assert verify(ready, keys, checkpoint_file).ok


def test_checkpoints_go_to_syslog_and_a_dead_syslog_does_not_stop_appends(
    ready: Store, keys: AuditKeys, clock: FixedClock, checkpoint_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        fill(ready, keys, clock, 2, checkpoints=Checkpoints(checkpoint_file, 2, f"127.0.0.1:{port}"))
        message = receiver.recv(65536).decode()
    assert message.startswith("<")  # a syslog priority
    assert "plantwarden-audit: checkpoint " in message
    line = message.split("checkpoint ", 1)[1].rstrip("\x00\n")
    received = Checkpoint.parse(line)
    assert received.seq == 2 and received.is_signed_by(keys)
    assert line == checkpoint_file.read_text().splitlines()[0]

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nothing listens once the probe is closed
    with caplog.at_level(logging.WARNING, logger="plantwarden.core.auditlog"):
        fill(ready, keys, clock, 2, checkpoints=Checkpoints(checkpoint_file, 2, f"tcp://127.0.0.1:{closed}"))
    assert "could not send the audit checkpoint at seq 4 to syslog" in caplog.text
    assert [Checkpoint.parse(x).seq for x in checkpoint_file.read_text().splitlines()] == [2, 4]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("/dev/log", ("/dev/log", socket.SOCK_DGRAM)),
        ("logs.example", (("logs.example", 514), socket.SOCK_DGRAM)),
        ("10.0.0.5:1514", (("10.0.0.5", 1514), socket.SOCK_DGRAM)),
        ("tcp://logs.example:6514", (("logs.example", 6514), socket.SOCK_STREAM)),
        ("udp://[::1]:514", (("::1", 514), socket.SOCK_DGRAM)),
    ],
)
def test_syslog_addresses(address: str, expected: object) -> None:
    assert auditlog.parse_syslog_address(address) == expected


def test_settings_refuse_a_bad_address_or_interval(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"audit\.syslog_address.*scheme"):
        AuditSettings(syslog_address="http://logs:514")
    with pytest.raises(ConfigurationError, match="checkpoint_every"):
        AuditSettings(checkpoint_every=0)
    assert AuditSettings().checkpoint_every == 100 and AuditSettings().syslog_address is None


# --- concurrency -------------------------------------------------------------------------------


def process_url(store: Store) -> str:
    url = store.engine.url
    if store.dialect == "postgresql":
        with store.engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def test_concurrent_appends_from_several_processes_form_one_chain(
    ready: Store, clock: FixedClock, tmp_path: Path
) -> None:
    key_file = tmp_path / "data" / "secrets" / "audit.key"
    keys = AuditKeys.load_or_create(key_file)
    go, processes, per_process = tmp_path / "go", 4, 25
    appenders = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.auditlog_appender",
                process_url(ready),
                str(key_file),
                f"p{n}",
                str(per_process),
                str(go),
            ],
            env=clean_environment(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    try:
        for appender in appenders:
            assert appender.stdout is not None and appender.stdout.readline().strip() == "ready"
        go.touch()
        for appender in appenders:
            assert appender.wait(timeout=120) == 0
    finally:
        for appender in appenders:
            if appender.poll() is None:
                appender.kill()
                appender.wait()
            if appender.stdout is not None:
                appender.stdout.close()
    with ready.transaction() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert [e.seq for e in entries] == list(range(1, processes * per_process + 1))
        assert sorted({e.actor or "" for e in entries}) == [f"p{n}" for n in range(processes)]
        assert all(sum(e.actor == f"p{n}" for e in entries) == per_process for n in range(processes))
        # They interleave: the processes really ran at the same time.
        changes = sum(a.actor != b.actor for a, b in itertools.pairwise(entries))
        assert changes >= processes - 1
    report = verify(ready, keys, tmp_path / "none.log")
    assert report.ok, report.problems
    assert report.head_seq == processes * per_process


# --- the key -----------------------------------------------------------------------------------


def test_the_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    path = auditlog.key_path(data_dir)
    assert path == data_dir / "secrets" / "audit.key"
    keys = AuditKeys.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(path.read_bytes()) == 32
    assert [p.name for p in path.parent.iterdir()] == ["audit.key"]  # no temporary file left
    again = AuditKeys.load_or_create(path)
    assert again.key_id == keys.key_id and again.mac(GENESIS_MAC, b"x") == keys.mac(GENESIS_MAC, b"x")
    assert AuditKeys.load(path).public_key_hex == keys.public_key_hex


def test_a_missing_damaged_or_exposed_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "audit.key"
    with pytest.raises(AuditKeyUnavailable, match="does not exist"):
        AuditKeys.load(path)
    AuditKeys.load_or_create(path)
    path.chmod(0o644)
    with pytest.raises(AuditKeyUnavailable, match="chmod 600"):
        AuditKeys.load(path)
    path.chmod(0o600)
    path.write_bytes(b"short")
    with pytest.raises(AuditKeyUnavailable, match="damaged"):
        AuditKeys.load(path)


def test_the_key_never_shows_in_logs_reprs_or_errors(
    ready: Store, clock: FixedClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    settings = AuditSettings(checkpoint_every=2, syslog_address="tcp://127.0.0.1:9")
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        log = AuditLog.open(CoreSettings(data_dir=data_dir), settings)
        secret = auditlog.key_path(data_dir).read_bytes()
        for _ in range(4):
            with ready.transaction() as session:
                log.append(
                    session, actor="a", source="t", action="user.login", outcome="success", clock=clock
                )
        with ready.transaction() as session:
            texts.append(repr(log.verify(session)))
        auditlog.key_path(data_dir).chmod(0o640)
        attempts: list[Callable[[], AuditKeys]] = [
            lambda: AuditKeys.load(auditlog.key_path(data_dir)),
            lambda: AuditKeys(secret[:10]),
        ]
        for attempt in attempts:
            with pytest.raises(AuditKeyUnavailable) as raised:
                attempt()
            texts += [str(raised.value), repr(raised.value), repr(raised.value.details)]
    texts += [caplog.text, repr(log), repr(log.keys), str(log.keys)]
    for form in (secret.hex(), secret.hex().upper(), repr(secret), secret.decode("latin-1")):
        assert all(form not in t for t in texts)
    with pytest.raises(TypeError):
        pickle.dumps(log.keys)


# --- the command line --------------------------------------------------------------------------


def cli_state(data_dir: Path, clock: FixedClock) -> CliState:
    """A command-line state whose settings hold the audit section (until the catalogue lists it)."""
    sections = SECTIONS if AuditSettings in SECTIONS else (*SECTIONS, AuditSettings)
    settings = load_settings(sections, environ={}, cwd=data_dir, overrides={"data_dir": str(data_dir)})
    return CliState(_runtime=Runtime(settings, clock))


def test_the_audit_log_command_verifies_lists_and_checkpoints(data_dir: Path, clock: FixedClock) -> None:
    runner = CliRunner()
    state = cli_state(data_dir, clock)
    runtime = state.runtime()
    assert "empty" in runner.invoke(audit_group, ["verify"], obj=state).output
    log = AuditLog.open(runtime.core, runtime.settings[AuditSettings])
    for number in range(5):
        with runtime.ready_store().transaction() as session:
            log.append(
                session,
                actor="alice",
                source="cli",
                action="settings.changed",
                outcome="success",
                target=f"setting:{number}",
                details={"number": number},
                clock=clock,
            )

    result = runner.invoke(audit_group, ["checkpoint"], obj=state)
    assert result.exit_code == 0, result.output
    assert "checkpoint at seq 5" in result.output and log.keys.public_key_hex in result.output
    assert len(auditlog.checkpoints_path(data_dir).read_text().splitlines()) == 1

    result = runner.invoke(audit_group, ["verify"], obj=state)
    assert result.exit_code == 0, result.output
    assert "head:        seq 5" in result.stdout and "OK" in result.stdout

    listed = runner.invoke(audit_group, ["list", "--limit", "2", "--format", "json"], obj=state)
    assert listed.exit_code == 0
    documents = json.loads(listed.stdout)
    assert [d["seq"] for d in documents] == [4, 5] and documents[1]["details"] == {"number": 4}
    table = runner.invoke(audit_group, ["list"], obj=state).stdout
    assert table.splitlines()[0].split() == [
        "seq",
        "time",
        "(UTC)",
        "actor",
        "action",
        "outcome",
        "site",
        "target",
        "source",
    ]
    assert len(table.splitlines()) == 6

    sql(runtime.store(), "UPDATE audit_log SET target = 'setting:other' WHERE seq = 2")
    sql(runtime.store(), "DELETE FROM audit_log WHERE seq = 5")
    result = runner.invoke(audit_group, ["verify"], obj=state)
    assert result.exit_code == 1
    assert "PROBLEM [edited] seq 2: entry 2 was edited" in result.stdout
    assert "PROBLEM [truncated] seq 5: " in result.stdout
    assert "FAILED: 2 problem(s)" in result.stderr
    secret = auditlog.key_path(data_dir).read_bytes().hex()
    assert secret not in result.output
    state.close()


def test_verify_refuses_to_run_without_the_key_of_a_log_with_entries(
    data_dir: Path, clock: FixedClock
) -> None:
    state = cli_state(data_dir, clock)
    runtime = state.runtime()
    log = AuditLog.open(runtime.core, runtime.settings[AuditSettings])
    with runtime.ready_store().transaction() as session:
        log.append(session, actor=None, source="t", action="user.login", outcome="failure", clock=clock)
    auditlog.key_path(data_dir).unlink()
    result = CliRunner().invoke(audit_group, ["verify"], obj=state)
    assert result.exit_code == 1 and isinstance(result.exception, AuditKeyUnavailable)
    assert "restore it from its backup" in str(result.exception)
    state.close()
