"""Events of incident response: a subject or an asset quarantined, a quarantine released. The
gateway of the site reads them from the event log and applies them to its deny overlay at once
(`gateway.quarantine_watch`); `change_of` turns an event back into the change it announces."""

from __future__ import annotations

from dataclasses import dataclass

from plantwarden.core.events import Event, event_type

ASSET = "asset"


@event_type("incidents.SubjectQuarantined")
@dataclass(frozen=True)
class SubjectQuarantined:
    """A subject of a site is quarantined: `kind` (cert_role, address, user, certificate) and `id`
    (a role, an address, a username, a serial in hex). Close its live sessions and deny it all."""

    site: str
    kind: str
    id: str
    reason: str
    by: str


@event_type("incidents.AssetQuarantined")
@dataclass(frozen=True)
class AssetQuarantined:
    """An asset of a site (its plant model id) is quarantined: no plant operation reaches it."""

    site: str
    asset: str
    reason: str
    by: str


@event_type("incidents.QuarantineReleased")
@dataclass(frozen=True)
class QuarantineReleased:
    """The quarantine of a subject or (kind `asset`) an asset of a site ended."""

    site: str
    kind: str
    id: str
    reason: str
    by: str


SUBJECT_QUARANTINED = "incidents.SubjectQuarantined"
ASSET_QUARANTINED = "incidents.AssetQuarantined"
QUARANTINE_RELEASED = "incidents.QuarantineReleased"


@dataclass(frozen=True, slots=True)
class QuarantineChange:
    """One change of a site's quarantine list: `quarantined` False for a release."""

    site: str
    kind: str
    id: str
    reason: str
    quarantined: bool


def change_of(event: Event) -> QuarantineChange | None:
    """The quarantine change an event announces, or None for any other event (or a payload that
    lacks its fields: an event written by a newer version is skipped, not fatal)."""
    payload = event.payload
    try:
        if event.type == SUBJECT_QUARANTINED:
            kind, ident, on = str(payload["kind"]), str(payload["id"]), True
        elif event.type == ASSET_QUARANTINED:
            kind, ident, on = ASSET, str(payload["asset"]), True
        elif event.type == QUARANTINE_RELEASED:
            kind, ident, on = str(payload["kind"]), str(payload["id"]), False
        else:
            return None
        return QuarantineChange(str(payload["site"]), kind, ident, str(payload.get("reason", "")), on)
    except KeyError:
        return None
