"""The audit log: every security-relevant action, in a hash chain keyed with a secret kept
outside the database, with signed checkpoints of its head written outside the database.

- `append(session, keys, ...)` adds an entry in the caller's transaction. Entries are numbered
  1, 2, 3 ... without gaps (`seq`); each carries `prev_mac` (the `mac` of the entry before it,
  64 zeros for the first) and `mac = HMAC-SHA256(chain key, prev_mac || canonical JSON)`, where
  `prev_mac` is the 64 ASCII hex digits and the canonical JSON holds every field of the entry
  (seq included) with sorted keys and no spaces (`entry_document`).
- Appends serialise across processes: on PostgreSQL through a transaction-level advisory lock
  (`APPEND_LOCK`), on SQLite through the database's single write lock, taken by the first
  statement of the append (a write) before the head of the chain is read.
- The key is a file of 32 random bytes, `<data_dir>/secrets/audit.key` (mode 0600, directory
  0700), created on first use; it never enters the database, the logs or an exception. Two keys
  are derived from it with HKDF-SHA256: the chain key (HMAC) and the seed of an Ed25519 key that
  signs checkpoints, so that a host holding only the public key (a syslog server) can check them.
- A checkpoint is one signed JSON line naming the head (seq and mac), appended to
  `<data_dir>/audit/checkpoints.log` (fsync) and, when `audit.syslog_address` is set, sent to
  syslog. One is written after the commit of every `audit.checkpoint_every`-th entry, and on
  demand (`write_checkpoint`).
- `verify(session, keys, checkpoints_path)` recomputes the chain and names every edited,
  deleted, reordered or truncated entry, and a chain recomputed by someone without the key.

Threat model: someone with write access to the database but not to the key file cannot change
the log without `verify` noticing; someone with both can forge it (until the checkpoints already
shipped to another host disagree). See docs/audit-log.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import logging.handlers
import os
import re
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import JSON, BigInteger, CheckConstraint, Integer, String, Uuid, event, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from plantwarden.core.clock import Clock
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Base, Store, UTCDateTime, sqlite_write_lock
from plantwarden.core.errors import ConfigurationError, InvalidInput
from plantwarden.core.files import private_directory
from plantwarden.core.ids import new_id
from plantwarden.core.settings import SettingsSection, setting

log = logging.getLogger(__name__)

# An arbitrary constant, different from eventlog.APPEND_LOCK: the PostgreSQL advisory lock that
# orders appends to the audit log.
APPEND_LOCK: Final = 0x6175646974  # "audit"

GENESIS_MAC: Final = "0" * 64
KEY_BYTES: Final = 32
OUTCOMES: Final = ("success", "failure", "denied")
KEY_FILE: Final = Path("secrets") / "audit.key"
CHECKPOINTS_FILE: Final = Path("audit") / "checkpoints.log"
CHECKPOINT_VERSION: Final = 1

_CHAIN_INFO = b"plantwarden audit-log chain key v1"
_CHECKPOINT_INFO = b"plantwarden audit-log checkpoint key v1"
_CHECKPOINT_CONTEXT = b"plantwarden audit-log checkpoint v1\n"
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
# Keys of `details` that would carry a secret; such details are refused, not redacted.
SECRET_DETAIL_KEYS: Final = frozenset(
    {"password", "passwd", "passphrase", "secret", "token", "api_key", "apikey", "private_key", "totp_secret"}
)
_SECRET_DETAIL_SUFFIXES: Final = ("_password", "_secret", "_passphrase", "_private_key")
_LIMITS: Final = {"actor": 200, "source": 120, "action": 120, "site": 63, "target": 300}
_PAGE = 1000
_REORDER_WINDOW = 64
_PENDING = "plantwarden.auditlog.pending_checkpoints"


# --- settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditSettings(SettingsSection):
    """Checkpoints of the audit log."""

    section = "audit"
    doc = (
        "The audit log is a hash chain keyed with `<data_dir>/secrets/audit.key`; signed checkpoints "
        "of its head go to `<data_dir>/audit/checkpoints.log` and, when configured, to syslog "
        "(see docs/audit-log.md)."
    )

    checkpoint_every: int = setting(100, "Write a checkpoint of the head after every this many entries.")
    syslog_address: str | None = setting(
        None,
        "Also send checkpoints to this syslog server: `host:port` or `udp://host:port` (UDP, port 514 "
        "when omitted), `tcp://host:port`, or a local socket path such as `/dev/log`. "
        "Unset: checkpoints go to the file only.",
    )

    def __post_init__(self) -> None:
        if self.checkpoint_every < 1:
            raise ConfigurationError(
                f"setting 'audit.checkpoint_every' must be at least 1, got {self.checkpoint_every}"
            )
        if self.syslog_address is not None:
            try:
                parse_syslog_address(self.syslog_address)
            except ConfigurationError as error:
                raise ConfigurationError(f"setting 'audit.syslog_address': {error.message}") from None


class AuditKeyUnavailable(ConfigurationError):
    """The audit key file is missing, unreadable, malformed or readable by others."""

    code = "audit_key_unavailable"


# --- the key ------------------------------------------------------------------------------------


def key_path(data_dir: Path) -> Path:
    """Where the audit key lives: `<data_dir>/secrets/audit.key`."""
    return data_dir / KEY_FILE


def checkpoints_path(data_dir: Path) -> Path:
    """Where checkpoints are appended: `<data_dir>/audit/checkpoints.log`."""
    return data_dir / CHECKPOINTS_FILE


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


class AuditKeys:
    """The keys of the audit log, derived from one 32-byte secret; never shows its material.

    `mac()` keys the chain (HMAC-SHA256); `sign()` signs checkpoints (Ed25519), which anyone with
    `public_key_hex` can check.
    """

    __slots__ = ("_chain_key", "_signing_key", "key_id", "public_key")

    def __init__(self, master: bytes) -> None:
        if len(master) != KEY_BYTES:
            raise AuditKeyUnavailable(f"an audit key is {KEY_BYTES} bytes, got {len(master)}")
        self._chain_key = _derive(master, _CHAIN_INFO)
        self._signing_key = Ed25519PrivateKey.from_private_bytes(_derive(master, _CHECKPOINT_INFO))
        self.public_key: Ed25519PublicKey = self._signing_key.public_key()
        self.key_id = hashlib.sha256(self.public_key_bytes).hexdigest()[:16]

    @classmethod
    def generate(cls) -> AuditKeys:
        """Keys from a new random secret (for tests; use `load_or_create` in a data directory)."""
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def load(cls, path: Path) -> AuditKeys:
        """Read the key file at `path`; it must exist, hold 32 bytes and be private (0600)."""
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise AuditKeyUnavailable(
                f"the audit key {path} does not exist: restore it from its backup "
                "(without it the audit log cannot be verified or extended)"
            ) from None
        except OSError as error:
            raise AuditKeyUnavailable(f"cannot read the audit key {path}: {error.strerror}") from None
        if mode & 0o077:
            raise AuditKeyUnavailable(
                f"the audit key {path} is readable by others (mode {mode & 0o777:04o}): "
                f"run `chmod 600 {path}`, and consider the key disclosed"
            )
        try:
            master = path.read_bytes()
        except OSError as error:
            raise AuditKeyUnavailable(f"cannot read the audit key {path}: {error.strerror}") from None
        if len(master) != KEY_BYTES:
            raise AuditKeyUnavailable(
                f"the audit key {path} is damaged: it holds {len(master)} bytes, not {KEY_BYTES}"
            )
        return cls(master)

    @classmethod
    def load_or_create(cls, path: Path) -> AuditKeys:
        """Read the key file at `path`, creating it (32 random bytes, mode 0600, in a directory
        of mode 0700) when it does not exist. Safe when several processes start at once."""
        if not path.exists():
            _create_key_file(path)
        return cls.load(path)

    def mac(self, prev_mac: str, document: bytes) -> str:
        """HMAC-SHA256 of `prev_mac` (hex, as ASCII) followed by an entry's canonical JSON."""
        return hmac.new(self._chain_key, prev_mac.encode("ascii", "replace") + document, "sha256").hexdigest()

    def sign(self, message: bytes) -> str:
        """The Ed25519 signature of `message`, in hex."""
        return self._signing_key.sign(message).hex()

    def check_signature(self, message: bytes, signature_hex: str) -> bool:
        """True when `signature_hex` is this key's signature of `message`."""
        try:
            self.public_key.verify(bytes.fromhex(signature_hex), message)
        except (InvalidSignature, ValueError):
            return False
        return True

    @property
    def public_key_bytes(self) -> bytes:
        """The raw Ed25519 public key that checks checkpoints (not a secret)."""
        return self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_key_hex(self) -> str:
        """The public key that checks checkpoints, in hex (not a secret; give it to auditors)."""
        return self.public_key_bytes.hex()

    def __repr__(self) -> str:
        return f"AuditKeys(key_id={self.key_id!r})"

    def __reduce__(self) -> Any:
        raise TypeError("AuditKeys are not pickled; load them from the key file in each process")


def _create_key_file(path: Path) -> None:
    directory = path.parent
    private_directory(directory)
    temporary = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(descriptor, os.urandom(KEY_BYTES))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        # Publish the complete file atomically; a process that lost the race reads the winner's.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
            _fsync_directory(directory)
            log.info("created the audit key %s", path)
    finally:
        temporary.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- the table ----------------------------------------------------------------------------------


class AuditEntry(Base):
    """One entry of the audit log; `seq` orders the chain (1, 2, 3 ... without gaps)."""

    __tablename__ = "audit_log"
    __table_args__ = (CheckConstraint("outcome IN ('success', 'failure', 'denied')", name="outcome"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str | None] = mapped_column(String(_LIMITS["actor"]), index=True)
    source: Mapped[str] = mapped_column(String(_LIMITS["source"]))
    action: Mapped[str] = mapped_column(String(_LIMITS["action"]), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    site: Mapped[str | None] = mapped_column(String(_LIMITS["site"]))
    target: Mapped[str | None] = mapped_column(String(_LIMITS["target"]))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_mac: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))

    def document(self) -> dict[str, Any]:
        """The fields the mac covers, as `entry_document` builds them."""
        return entry_document(
            seq=self.seq,
            id=self.id,
            at=self.at,
            actor=self.actor,
            source=self.source,
            action=self.action,
            outcome=self.outcome,
            site=self.site,
            target=self.target,
            details=self.details,
        )

    def to_dict(self) -> dict[str, Any]:
        """The entry with its chain fields, fit for JSON output."""
        return {**self.document(), "prev_mac": self.prev_mac, "mac": self.mac}


def entry_document(
    *,
    seq: int,
    id: uuid.UUID | str,  # noqa: A002 - the column's name
    at: datetime,
    actor: str | None,
    source: str,
    action: str,
    outcome: str,
    site: str | None,
    target: str | None,
    details: Any,
) -> dict[str, Any]:
    """The fields of an entry that its mac covers, as JSON values (time in UTC, microseconds)."""
    return {
        "seq": seq,
        "id": str(id),
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "source": source,
        "action": action,
        "outcome": outcome,
        "site": site,
        "target": target,
        "details": details,
    }


def canonical_json(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no whitespace: the bytes that are MACed and signed."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


# --- appending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoints:
    """Where and how often checkpoints are written."""

    path: Path
    every: int = 100
    syslog_address: str | None = None


def append(
    session: Session,
    keys: AuditKeys,
    *,
    actor: str | None,
    source: str,
    action: str,
    outcome: str,
    site: str | None = None,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
    clock: Clock,
    checkpoints: Checkpoints | None = None,
) -> AuditEntry:
    """Append an entry to the audit log in the session's transaction and return it.

    The entry exists if and only if the transaction commits; record a refused or failed action in
    a transaction that commits (`append_committed`). Concurrent appends, from any process, wait
    for one another until their transactions end, so `seq` has no gaps and every `prev_mac` names
    the entry before. `details` must be JSON and never hold secrets: keys named like one
    (`SECRET_DETAIL_KEYS`, or ending in `_password`, `_secret` ...) are refused. With
    `checkpoints`, the append of every `every`-th entry writes a checkpoint once the transaction
    has committed.

    The lock is held until the transaction ends: append as the last step of a transaction, and
    after `eventlog.record` when a transaction does both (one order everywhere, so that the two
    advisory locks of PostgreSQL never deadlock).
    """
    clean_details = _validated(actor, source, action, outcome, site, target, details)
    _lock_chain(session)
    newest, prev_mac = head(session)
    seq = newest + 1
    entry = AuditEntry(
        seq=seq,
        id=new_id(),
        at=clock.now().astimezone(UTC),
        actor=actor,
        source=source,
        action=action,
        outcome=outcome,
        site=site,
        target=target,
        details=clean_details,
        prev_mac=prev_mac,
    )
    entry.mac = keys.mac(prev_mac, canonical_json(entry.document()))
    session.add(entry)
    session.flush()
    if checkpoints is not None and seq % checkpoints.every == 0:
        _checkpoint_after_commit(session, _PendingCheckpoint(keys, checkpoints, seq, entry.mac, clock))
    return entry


def _lock_chain(session: Session) -> None:
    """Hold the append lock until the transaction ends, before the head is read."""
    # SQLite: its write lock, so that no other writer moves the head between our read of it and
    # our commit; PostgreSQL: an advisory lock to the end of the transaction.
    if not sqlite_write_lock(session, "audit_log", "seq"):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK})


def _validated(
    actor: str | None,
    source: str,
    action: str,
    outcome: str,
    site: str | None,
    target: str | None,
    details: Mapping[str, Any] | None,
) -> dict[str, Any]:
    if outcome not in OUTCOMES:
        raise InvalidInput(f"audit outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if not _ACTION.fullmatch(action):
        raise InvalidInput(f"audit action must look like 'user.login' (dotted, lower case), got {action!r}")
    if not source:
        raise InvalidInput("an audit entry needs its source (the process that appends it)")
    named = (("actor", actor), ("source", source), ("action", action), ("site", site), ("target", target))
    for name, value in named:
        if value is None:
            continue
        if len(value) > _LIMITS[name]:
            raise InvalidInput(f"audit {name} is longer than {_LIMITS[name]} characters")
        if not value.isprintable() or not _encodes(value):
            raise InvalidInput(f"audit {name} holds unprintable characters")
    try:
        # Stored as read back: what the mac covers is exactly what verify will read.
        clean = json.loads(canonical_json(dict(details or {})))
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"audit details must be JSON (no NaN or infinity): {error}") from None
    _refuse_secrets(clean, "details")
    return dict(clean)


def _encodes(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _refuse_secrets(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for name, inner in value.items():
            lowered = name.lower()
            if lowered in SECRET_DETAIL_KEYS or lowered.endswith(_SECRET_DETAIL_SUFFIXES):
                raise InvalidInput(f"audit {where} must never hold secrets; refused the key {name!r}")
            _refuse_secrets(inner, f"{where}.{name}")
    elif isinstance(value, list):
        for inner in value:
            _refuse_secrets(inner, where)


def append_committed(store: Store, keys: AuditKeys, **fields: Any) -> AuditEntry:
    """`append` in a transaction of its own, committed at once: for denials and failures, which
    must be recorded even when the caller's own transaction rolls back. `fields` are `append`'s
    keyword arguments."""
    with store.transaction() as session:
        return append(session, keys, **fields)


# --- checkpoints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the log's head was entry `seq` with `mac` at time `at`."""

    seq: int
    mac: str
    at: datetime
    key_id: str
    signature: str

    def signed_document(self) -> dict[str, Any]:
        """The fields the signature covers."""
        return {
            "v": CHECKPOINT_VERSION,
            "seq": self.seq,
            "mac": self.mac,
            "at": self.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "key": self.key_id,
        }

    def line(self) -> str:
        """The checkpoint as one JSON line (without the newline)."""
        return canonical_json({**self.signed_document(), "sig": self.signature}).decode()

    @classmethod
    def sign(cls, keys: AuditKeys, seq: int, mac: str, at: datetime) -> Checkpoint:
        """A checkpoint of (`seq`, `mac`) signed with `keys`."""
        unsigned = cls(seq=seq, mac=mac, at=at.astimezone(UTC), key_id=keys.key_id, signature="")
        return cls(seq, mac, unsigned.at, keys.key_id, keys.sign(unsigned.message()))

    def message(self) -> bytes:
        """The bytes the signature covers."""
        return _CHECKPOINT_CONTEXT + canonical_json(self.signed_document())

    def is_signed_by(self, keys: AuditKeys) -> bool:
        """True when the signature is `keys`' signature of this checkpoint."""
        return self.key_id == keys.key_id and keys.check_signature(self.message(), self.signature)

    @classmethod
    def parse(cls, line: str) -> Checkpoint:
        """Read a line written by `line()`; ValueError when it is not one."""
        document = json.loads(line)
        if not isinstance(document, dict) or document.get("v") != CHECKPOINT_VERSION:
            raise ValueError("not a checkpoint of a known version")
        seq, mac, at = document.get("seq"), document.get("mac"), document.get("at")
        key_id, signature = document.get("key"), document.get("sig")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("seq is not a count")
        if not all(isinstance(v, str) for v in (mac, at, key_id, signature)):
            raise ValueError("a field is missing")
        moment = datetime.fromisoformat(str(at))
        if moment.tzinfo is None:
            raise ValueError("the time has no zone")
        return cls(seq, str(mac), moment.astimezone(UTC), str(key_id), str(signature))


def head(session: Session) -> tuple[int, str]:
    """The seq and mac of the newest entry ((0, 64 zeros) for an empty log)."""
    row = session.execute(
        select(AuditEntry.seq, AuditEntry.mac).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    return (0, GENESIS_MAC) if row is None else (int(row.seq), str(row.mac))


def write_checkpoint(
    session: Session, keys: AuditKeys, path: Path, *, clock: Clock, syslog_address: str | None = None
) -> Checkpoint:
    """Sign the head the session sees and append it to the checkpoint file at `path` (and send it
    to syslog at `syslog_address`, when given; a failure there is logged, not raised).

    Call it on a committed view (a transaction of its own): a checkpoint of an entry that is
    later rolled back would read as a truncation.
    """
    seq, mac = head(session)
    checkpoint = Checkpoint.sign(keys, seq, mac, clock.now())
    _emit(checkpoint, path, syslog_address)
    return checkpoint


def append_checkpoint_line(checkpoint: Checkpoint, path: Path) -> None:
    """Append the checkpoint's line to the file at `path` and flush it to disk."""
    new_directory = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (checkpoint.line() + "\n").encode()
    # One write with O_APPEND: lines from several processes never interleave.
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if new_directory:
        _fsync_directory(path.parent)


def parse_syslog_address(address: str) -> tuple[str | tuple[str, int], socket.SocketKind]:
    """Split a syslog address: `/path` (local socket), `udp://host:port`, `tcp://host:port`, or
    `host[:port]` (UDP); the port defaults to 514."""
    where = f"syslog address {address!r}"
    if address.startswith("/"):
        return address, socket.SOCK_DGRAM
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "udp", address
    if scheme not in ("udp", "tcp"):
        raise ConfigurationError(f"{where}: the scheme must be udp or tcp")
    host, port_text = rest, ""
    if rest.startswith("["):  # [IPv6]:port
        host, _, after = rest[1:].partition("]")
        port_text = after.removeprefix(":")
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
    if not host:
        raise ConfigurationError(f"{where}: no host")
    try:
        port = int(port_text) if port_text else logging.handlers.SYSLOG_UDP_PORT
    except ValueError:
        raise ConfigurationError(f"{where}: the port is not a number") from None
    if not 0 < port < 65536:
        raise ConfigurationError(f"{where}: the port is out of range")
    return (host, port), socket.SOCK_STREAM if scheme == "tcp" else socket.SOCK_DGRAM


class _RaisingSysLogHandler(logging.handlers.SysLogHandler):
    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        raise  # the error emit() is handling: send_to_syslog reports it to its caller


def send_to_syslog(checkpoint: Checkpoint, address: str) -> None:
    """Send the checkpoint's line to the syslog server at `address` (facility auth); OSError
    when it cannot be sent."""
    target, kind = parse_syslog_address(address)
    handler = _RaisingSysLogHandler(
        address=target, facility=logging.handlers.SysLogHandler.LOG_AUTH, socktype=kind
    )
    try:
        handler.ident = "plantwarden-audit: "
        record = logging.LogRecord(
            "plantwarden.audit", logging.INFO, __file__, 0, "checkpoint %s", (checkpoint.line(),), None
        )
        handler.emit(record)
    finally:
        handler.close()


def _emit(checkpoint: Checkpoint, path: Path, syslog_address: str | None) -> None:
    append_checkpoint_line(checkpoint, path)
    log.info("audit checkpoint at seq %d written to %s", checkpoint.seq, path)
    if syslog_address is not None:
        try:
            send_to_syslog(checkpoint, syslog_address)
        except OSError as error:
            log.warning(
                "could not send the audit checkpoint at seq %d to syslog at %s: %s",
                checkpoint.seq,
                syslog_address,
                error,
            )


@dataclass(frozen=True)
class _PendingCheckpoint:
    keys: AuditKeys
    checkpoints: Checkpoints
    seq: int
    mac: str
    clock: Clock


def _checkpoint_after_commit(session: Session, pending: _PendingCheckpoint) -> None:
    waiting: list[_PendingCheckpoint] | None = session.info.get(_PENDING)
    if waiting is None:
        waiting = session.info[_PENDING] = []
        event.listen(session, "after_commit", _write_pending)
        event.listen(session, "after_soft_rollback", _forget_pending)
    waiting.append(pending)


def _write_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; the entries are committed with the outer transaction
    waiting: list[_PendingCheckpoint] = session.info.get(_PENDING, [])
    items, waiting[:] = list(waiting), []
    for item in items:
        checkpoint = Checkpoint.sign(item.keys, item.seq, item.mac, item.clock.now())
        try:
            _emit(checkpoint, item.checkpoints.path, item.checkpoints.syslog_address)
        except Exception as error:
            # The entries are committed, so nothing may be raised from here; a missed checkpoint
            # is made good by the next one.
            log.warning("could not write the audit checkpoint at seq %d: %s", item.seq, error)


def _forget_pending(session: Session, _transaction: Any) -> None:
    # Any rollback, even of a savepoint, forgets every pending checkpoint: a missed checkpoint is
    # harmless, a checkpoint of an entry that never committed would read as a truncation.
    session.info.get(_PENDING, []).clear()


def read_checkpoints(path: Path) -> Iterator[tuple[int, str, Checkpoint | None]]:
    """Every line of the checkpoint file with its number, parsed (None when it cannot be)."""
    if not path.exists():
        return
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                yield number, line, Checkpoint.parse(line)
            except (ValueError, TypeError):
                yield number, line, None


# --- verifying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the log. `seq` (to `last_seq`, for a range) names the entries it
    concerns; `line` the checkpoint line, for problems found there."""

    kind: str  # edited, deleted, reordered, chain_broken, recomputed, truncated, checkpoint_*
    message: str
    seq: int | None = None
    last_seq: int | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The problem as JSON values."""
        return {
            "kind": self.kind,
            "seq": self.seq,
            "last_seq": self.last_seq,
            "line": self.line,
            "message": self.message,
        }


@dataclass
class VerifyReport:
    """What `verify` found: the head, the checkpoints, and every problem."""

    entries: int = 0
    head_seq: int = 0
    head_mac: str = GENESIS_MAC
    checkpoints: int = 0
    newest_checkpoint: Checkpoint | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found (warnings do not count)."""
        return not self.problems

    def kinds(self) -> list[str]:
        """The kind of every problem, in order."""
        return [p.kind for p in self.problems]


@dataclass(slots=True)
class _Row:
    seq: int
    prev_mac: str
    mac: str
    document: dict[str, Any] | None  # None: a value could not be read


@dataclass(frozen=True, slots=True)
class _Checked:
    seq: int
    gap: bool
    link_ok: bool


def verify(session: Session, keys: AuditKeys, checkpoints_file: Path) -> VerifyReport:
    """Recompute the chain and compare it with the checkpoints; return every problem found.

    Finds edited entries (mac mismatch), deleted ones (a gap in seq), reordered ones (an entry
    whose mac holds for another seq), a broken chain (a prev_mac that names no predecessor), a
    chain recomputed without the key (every mac wrong while every link holds: one problem, not
    one per entry), damaged or forged checkpoint lines, a head that disagrees with a checkpoint,
    and a truncated tail (a checkpoint names a seq beyond the head).
    """
    report = VerifyReport()
    # Checkpoints first: each names an entry committed before it was written, so the table, read
    # after, holds it unless someone removed it.
    valid = _read_valid_checkpoints(keys, checkpoints_file, report)
    wanted = {cp.seq for _, cp in valid}
    macs_at: dict[int, str] = {}
    failed: list[_Checked] = []  # only the entries whose mac fails are kept
    previous: _Row | None = None
    previous_mac_ok = True
    first_seq = 0
    for row in _rows(session):
        first_seq = first_seq or row.seq
        report.entries += 1
        expected = 1 if previous is None else previous.seq + 1
        gap = row.seq != expected
        if gap:
            first, last = expected, row.seq - 1
            span = f"entry {first} is" if first == last else f"entries {first}..{last} are"
            report.problems.append(
                Problem(
                    "deleted",
                    f"{span} missing (deleted)",
                    seq=first,
                    last_seq=last if last != first else None,
                )
            )
        if row.seq == 1:
            link_ok = row.prev_mac == GENESIS_MAC
        else:
            link_ok = gap or (previous is not None and row.prev_mac == previous.mac)
        mac_ok = row.document is not None and hmac.compare_digest(
            keys.mac(row.prev_mac, canonical_json(row.document)).encode(), row.mac.encode("utf-8", "replace")
        )
        if not mac_ok:
            if not link_ok:
                report.problems.append(_misplaced(keys, row))
            failed.append(_Checked(row.seq, gap, link_ok))
        elif not link_ok and previous_mac_ok:
            # An intact entry after an intact one, yet not chained to it (a rewritten
            # predecessor's mac would already be reported with the predecessor).
            report.problems.append(
                Problem(
                    "chain_broken",
                    f"entry {row.seq}'s prev_mac does not name the mac of entry {row.seq - 1}: an "
                    "entry was replaced or the entries were reordered",
                    seq=row.seq,
                )
            )
        if row.seq in wanted:
            macs_at[row.seq] = row.mac
        previous, previous_mac_ok = row, mac_ok
    if previous is not None:
        report.head_seq, report.head_mac = previous.seq, previous.mac
    whole_chain = (first_seq == 1, report.head_seq, report.entries)
    report.problems.extend(_mac_runs(failed, whole_chain))
    report.problems.extend(_against_checkpoints(valid, macs_at, report))
    report.problems.sort(key=lambda p: (p.seq is None, p.seq or 0, p.line or 0))
    if report.entries and not valid:
        report.warnings.append(
            f"no valid checkpoint in {checkpoints_file}: a truncated tail cannot be detected"
        )
    elif report.newest_checkpoint is not None and report.newest_checkpoint.seq < report.head_seq:
        report.warnings.append(
            f"entries {report.newest_checkpoint.seq + 1}..{report.head_seq} are newer than the newest "
            "checkpoint: their deletion from the tail would not be detected"
        )
    return report


def _rows(session: Session) -> Iterator[_Row]:
    """Every entry in seq order, page by page; a row whose values cannot be read comes back
    without its document (it then fails its mac)."""
    table = AuditEntry.__table__
    after: int | None = None
    while True:
        page = select(table).order_by(table.c.seq).limit(_PAGE)
        if after is not None:
            page = page.where(table.c.seq > after)
        try:
            rows = [_to_row(r._mapping) for r in session.execute(page).all()]
        except (SQLAlchemyError, ValueError, TypeError):
            rows = list(_rows_one_by_one(session, after))
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def _rows_one_by_one(session: Session, after: int | None) -> Iterator[_Row]:
    table = AuditEntry.__table__
    seqs = select(table.c.seq, table.c.prev_mac, table.c.mac).order_by(table.c.seq).limit(_PAGE)
    if after is not None:
        seqs = seqs.where(table.c.seq > after)
    for seq, prev_mac, mac in session.execute(seqs).all():
        try:
            row = session.execute(select(table).where(table.c.seq == seq)).one()
            yield _to_row(row._mapping)
        except (SQLAlchemyError, ValueError, TypeError):
            yield _Row(int(seq), str(prev_mac), str(mac), None)


def _to_row(values: Mapping[Any, Any]) -> _Row:
    document = entry_document(
        seq=int(values["seq"]),
        id=values["id"],
        at=values["at"],
        actor=values["actor"],
        source=values["source"],
        action=values["action"],
        outcome=values["outcome"],
        site=values["site"],
        target=values["target"],
        details=values["details"],
    )
    try:
        canonical_json(document)
    except (TypeError, ValueError):
        return _Row(int(values["seq"]), str(values["prev_mac"]), str(values["mac"]), None)
    return _Row(int(values["seq"]), str(values["prev_mac"]), str(values["mac"]), document)


def _misplaced(keys: AuditKeys, row: _Row) -> Problem:
    """An entry whose mac fails and whose link is broken: moved here from another seq, or
    edited together with its chain fields."""
    if row.document is not None:
        for offset in range(1, _REORDER_WINDOW + 1):
            for candidate in (row.seq - offset, row.seq + offset):
                if candidate < 1:
                    continue
                document = {**row.document, "seq": candidate}
                if hmac.compare_digest(
                    keys.mac(row.prev_mac, canonical_json(document)).encode(),
                    row.mac.encode("utf-8", "replace"),
                ):
                    return Problem(
                        "reordered",
                        f"entry {row.seq} holds the entry written as seq {candidate} (reordered)",
                        seq=row.seq,
                    )
    return Problem(
        "edited",
        f"entry {row.seq} was edited: its mac does not match its contents, and its prev_mac does not "
        "name the entry before it",
        seq=row.seq,
    )


def _mac_runs(failed: Sequence[_Checked], chain: tuple[bool, int, int]) -> Iterator[Problem]:
    """Entries whose mac fails while their links hold: one edit, or a run rewritten without the
    key (the whole chain: recomputed). `chain` says whether the log starts at seq 1, its head and
    how many entries it holds."""
    starts_at_one, head_seq, entries = chain
    index = 0
    while index < len(failed):
        current = failed[index]
        if not current.link_ok:  # reported by _misplaced
            index += 1
            continue
        end = index
        while (
            end + 1 < len(failed)
            and failed[end + 1].seq == failed[end].seq + 1
            and failed[end + 1].link_ok
            and not failed[end + 1].gap
        ):
            end += 1
        first, last = current.seq, failed[end].seq
        if end == index:
            yield Problem(
                "edited", f"entry {first} was edited: its mac does not match its contents", seq=first
            )
        elif starts_at_one and first == 1 and last == head_seq and end - index + 1 == entries:
            yield Problem(
                "recomputed",
                f"the chain was recomputed without the key: no mac of entries {first}..{last} matches, "
                "although every entry names its predecessor's mac (or this is not the key the log was "
                "written with)",
                seq=first,
                last_seq=last,
            )
        else:
            yield Problem(
                "recomputed",
                f"entries {first}..{last} do not match their macs although each names its predecessor's "
                f"mac: edited, or the chain was recomputed without the key from seq {first} on",
                seq=first,
                last_seq=last,
            )
        index = end + 1


def _read_valid_checkpoints(
    keys: AuditKeys, path: Path, report: VerifyReport
) -> list[tuple[int, Checkpoint]]:
    valid: list[tuple[int, Checkpoint]] = []
    for number, _line, checkpoint in read_checkpoints(path):
        if checkpoint is None:
            report.problems.append(
                Problem(
                    "checkpoint_damaged", f"checkpoint line {number} cannot be read (damaged)", line=number
                )
            )
        elif checkpoint.key_id != keys.key_id:
            report.problems.append(
                Problem(
                    "checkpoint_forged",
                    f"checkpoint line {number} (seq {checkpoint.seq}) was signed with another key "
                    f"({checkpoint.key_id}, not {keys.key_id})",
                    seq=checkpoint.seq,
                    line=number,
                )
            )
        elif not checkpoint.is_signed_by(keys):
            report.problems.append(
                Problem(
                    "checkpoint_forged",
                    f"checkpoint line {number} (seq {checkpoint.seq}) does not match its signature "
                    "(edited or forged)",
                    seq=checkpoint.seq,
                    line=number,
                )
            )
        else:
            valid.append((number, checkpoint))
    report.checkpoints = len(valid)
    if valid:
        report.newest_checkpoint = max((cp for _, cp in valid), key=lambda cp: (cp.seq, cp.at))
    return valid


def _against_checkpoints(
    valid: Sequence[tuple[int, Checkpoint]], macs_at: Mapping[int, str], report: VerifyReport
) -> Iterator[Problem]:
    beyond = [(n, cp) for n, cp in valid if cp.seq > report.head_seq]
    if beyond:
        number, newest = max(beyond, key=lambda item: item[1].seq)
        first = report.head_seq + 1
        span = f"entry {first} is" if first == newest.seq else f"entries {first}..{newest.seq} are"
        yield Problem(
            "truncated",
            f"the log ends at seq {report.head_seq}, but the checkpoint of "
            f"{newest.at.isoformat(timespec='seconds')} (line {number}) names seq {newest.seq}: "
            f"{span} missing (the tail was truncated)",
            seq=first,
            last_seq=newest.seq if newest.seq != first else None,
            line=number,
        )
    for number, checkpoint in valid:
        stored = macs_at.get(checkpoint.seq)
        if checkpoint.seq == 0 or stored is None or stored == checkpoint.mac:
            continue  # seq 0 is the empty log; a missing entry is reported as deleted or truncated
        yield Problem(
            "checkpoint_mismatch",
            f"entry {checkpoint.seq} has another mac than the checkpoint of "
            f"{checkpoint.at.isoformat(timespec='seconds')} (line {number}) names: the log was "
            "rewritten after that checkpoint",
            seq=checkpoint.seq,
            line=number,
        )


# --- reading ------------------------------------------------------------------------------------


def latest(session: Session, limit: int = 20) -> list[AuditEntry]:
    """The newest `limit` entries, oldest first."""
    rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)).all()
    return list(reversed(rows))


def count(session: Session) -> int:
    """How many entries the log holds."""
    return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


# --- one object for a process -------------------------------------------------------------------


@dataclass(frozen=True)
class AuditLog:
    """The keys and checkpoint settings of one process's audit log, for services to append with."""

    keys: AuditKeys
    checkpoints: Checkpoints

    @classmethod
    def open(cls, core: CoreSettings, settings: AuditSettings) -> AuditLog:
        """The audit log of the data directory (its key is created on first use)."""
        return cls(
            keys=AuditKeys.load_or_create(key_path(core.data_path)),
            checkpoints=Checkpoints(
                path=checkpoints_path(core.data_path),
                every=settings.checkpoint_every,
                syslog_address=settings.syslog_address,
            ),
        )

    def append(
        self,
        session: Session,
        *,
        actor: str | None,
        source: str,
        action: str,
        outcome: str,
        site: str | None = None,
        target: str | None = None,
        details: Mapping[str, Any] | None = None,
        clock: Clock,
    ) -> AuditEntry:
        """`append` with this log's keys and checkpoints."""
        return append(
            session,
            self.keys,
            actor=actor,
            source=source,
            action=action,
            outcome=outcome,
            site=site,
            target=target,
            details=details,
            clock=clock,
            checkpoints=self.checkpoints,
        )

    def record(
        self,
        session: Session,
        ctx: Context,
        action: str,
        *,
        site: str | None,
        target: str,
        details: Mapping[str, Any],
        outcome: str = "success",
    ) -> AuditEntry:
        """`append` for an action done in `ctx` (its actor, source and clock); the target is cut
        to the 200 characters an entry keeps."""
        return self.append(
            session,
            actor=ctx.actor,
            source=ctx.source,
            action=action,
            outcome=outcome,
            site=site,
            target=target[:200],
            details=details,
            clock=ctx.clock,
        )

    def checkpoint(self, session: Session, *, clock: Clock) -> Checkpoint:
        """Write a checkpoint of the head now (file and, when configured, syslog)."""
        return write_checkpoint(
            session,
            self.keys,
            self.checkpoints.path,
            clock=clock,
            syslog_address=self.checkpoints.syslog_address,
        )

    def verify(self, session: Session) -> VerifyReport:
        """`verify` against this log's checkpoint file."""
        return verify(session, self.keys, self.checkpoints.path)
