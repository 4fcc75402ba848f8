"""The core settings section: where data lives, which store, how much to log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plantwarden.core.settings import Secret, SettingsSection, setting

DEFAULT_DATA_DIR = Path("~/.local/share/plantwarden")


@dataclass(frozen=True)
class CoreSettings(SettingsSection):
    """Settings every process reads."""

    section = ""
    doc = "Where Plantwarden keeps its data and which store holds the domain state."

    data_dir: Path = setting(
        DEFAULT_DATA_DIR,
        "Data directory: the embedded SQLite store, generated certificates, backups by default.",
    )
    database_url: Secret | None = setting(
        None,
        "SQLAlchemy URL of the domain store (e.g. postgresql+psycopg://user@host/db). "
        "Unset: SQLite (WAL) at `<data_dir>/plantwarden.db`.",
    )
    log_level: str = setting(
        "INFO", "Log level of every process.", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )

    @property
    def data_path(self) -> Path:
        """The data directory with `~` expanded, made absolute."""
        return self.data_dir.expanduser().resolve()


@dataclass(frozen=True)
class SupervisorSettings(SettingsSection):
    """How `plantwarden up` keeps its processes running."""

    section = "supervisor"
    doc = "`plantwarden up` restarts a crashed process with exponential backoff and stops all on Ctrl-C."

    max_backoff: float = setting(
        30.0, "Longest wait, in seconds, before restarting a process that keeps crashing."
    )
    stop_timeout: float = setting(10.0, "Seconds a process gets to stop after SIGTERM before it is killed.")


@dataclass(frozen=True)
class NatsSettings(SettingsSection):
    """Where the JetStream transport of domain events publishes (see docs/events.md)."""

    section = "nats"
    doc = (
        "The NATS JetStream transport of domain events: `plantwarden events relay` publishes the "
        "event log to a stream, and durable consumers read it from there."
    )

    relay: bool = setting(
        False, "Run the relay as one of the processes of `plantwarden up` (for sites that report to NATS)."
    )
    url: str = setting(
        "nats://127.0.0.1:4222",
        "URL of the NATS server (several separated by commas). Shown by `config show`: "
        "keep credentials out of it.",
    )
    stream: str = setting("PLANTWARDEN_EVENTS", "Name of the JetStream stream that holds the events.")
    subject_prefix: str = setting(
        "plantwarden.events",
        "Subjects are `<prefix>.<site or _>.<event type>`; the stream holds `<prefix>.>`.",
    )
    duplicate_window: float = setting(
        120.0,
        "Seconds during which the stream drops a second message with the same event id "
        "(a relay that republishes after a crash).",
    )
    connect_timeout: float = setting(
        10.0, "Seconds to wait for the first connection before giving up (reconnects never give up)."
    )
    ack_timeout: float = setting(
        10.0,
        "Seconds the relay waits for the stream to acknowledge an event before it publishes the "
        "event's batch again.",
    )
