"""Domain events: the envelope every event travels in, and the declaration of event types.

A domain declares its events in its own `events.py` as frozen dataclasses named in the past tense
(`SiteCreated`, `AlertRaised`), each registered with `@event_type("domain.Name", version=N)`.
`envelope(...)` wraps a payload in an `Event`; the event log (`core.eventlog`) records it in the
same transaction as the change it announces.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from plantwarden.core.clock import Clock
from plantwarden.core.errors import InvalidInput
from plantwarden.core.ids import new_id

P = TypeVar("P")


@dataclass(frozen=True)
class EventTypeInfo:
    """What is known about one event type: its name, schema version and payload class."""

    name: str
    version: int
    payload: type[Any]
    doc: str


_REGISTRY: dict[str, EventTypeInfo] = {}


def event_type(name: str, *, version: int = 1) -> Callable[[type[P]], type[P]]:
    """Register a frozen dataclass as the payload of the event type `name` (`domain.PastTense`)."""
    domain, _, short = name.partition(".")
    if not domain or not short or not short[0].isupper():
        raise ValueError(f"event type {name!r} must look like 'domain.PastTense'")

    def register(cls: type[P]) -> type[P]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} must be a dataclass to be an event payload")
        known = _REGISTRY.get(name)
        if known is not None and known.payload is not cls:
            raise ValueError(f"event type {name!r} is already registered by {known.payload.__name__}")
        _REGISTRY[name] = EventTypeInfo(name, version, cls, (cls.__doc__ or "").strip())
        cls.event_type = name  # type: ignore[attr-defined]
        return cls

    return register


def registered_types() -> dict[str, EventTypeInfo]:
    """Every event type registered so far (those of the imported domains)."""
    return dict(_REGISTRY)


def type_info(payload: object) -> EventTypeInfo:
    """The registration of a payload's class."""
    name = getattr(type(payload), "event_type", None)
    if name is None or name not in _REGISTRY:
        raise TypeError(f"{type(payload).__name__} is not a registered event payload")
    return _REGISTRY[name]


@dataclass(frozen=True)
class Event:
    """The envelope of every domain event, the same on the embedded log and on JetStream."""

    id: uuid.UUID
    type: str
    schema_version: int
    site: str | None
    occurred_at: datetime
    source: str
    idempotency_key: str | None
    payload: Mapping[str, Any]

    def to_json(self) -> bytes:
        """The wire form: UTF-8 JSON with ISO timestamps."""
        document = {
            "id": str(self.id),
            "type": self.type,
            "schema_version": self.schema_version,
            "site": self.site,
            "occurred_at": self.occurred_at.isoformat(),
            "source": self.source,
            "idempotency_key": self.idempotency_key,
            "payload": dict(self.payload),
        }
        return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        """Parse the wire form; anything malformed is `InvalidInput`, never a crash."""
        try:
            document = json.loads(data)
            occurred = datetime.fromisoformat(document["occurred_at"])
            if occurred.tzinfo is None:
                raise ValueError("occurred_at has no timezone")
            payload = document["payload"]
            if not isinstance(payload, dict):
                raise ValueError("payload is not an object")
            return cls(
                id=uuid.UUID(document["id"]),
                type=str(document["type"]),
                schema_version=int(document["schema_version"]),
                site=None if document.get("site") is None else str(document["site"]),
                occurred_at=occurred.astimezone(UTC),
                source=str(document["source"]),
                idempotency_key=document.get("idempotency_key"),
                payload=payload,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InvalidInput(f"not a Plantwarden event: {error}") from error

    def payload_as(self, cls: builtins.type[P]) -> P:
        """The payload as its registered dataclass (fields the class does not know are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in self.payload.items() if k in names})


def envelope(
    payload: object,
    *,
    clock: Clock,
    source: str,
    site: str | None = None,
    idempotency_key: str | None = None,
) -> Event:
    """Wrap a registered payload in a new event with a fresh UUID v7."""
    info = type_info(payload)
    body = dataclasses.asdict(payload)  # type: ignore[call-overload]
    json.dumps(body)  # payloads must be plain JSON: fail here, not in a consumer
    return Event(
        id=new_id(),
        type=info.name,
        schema_version=info.version,
        site=site,
        occurred_at=clock.now(),
        source=source,
        idempotency_key=idempotency_key,
        payload=body,
    )
