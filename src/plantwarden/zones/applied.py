"""The plant model in force: applying a plant.yaml, reading the applied model, its history.

The file under version control is the source of truth; applying records its exact bytes, their
SHA-256, who applied them and when, creates the sites and network segments it names, announces
`zones.PlantApplied`, appends `plant.applied` to the audit log, and makes the policy rebuild
(the server's policy cache compares versions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from plantwarden.core import eventlog
from plantwarden.core.auditlog import AuditLog
from plantwarden.core.context import Context
from plantwarden.core.events import envelope
from plantwarden.core.ids import new_id
from plantwarden.policy.compile import compile_policy
from plantwarden.policy.errors import InvalidPolicy
from plantwarden.policy.roles import builtin_model
from plantwarden.zones import services
from plantwarden.zones.errors import AppliedPlantUnreadable, InvalidPlantRights
from plantwarden.zones.events import PlantApplied
from plantwarden.zones.models import NetworkSegment, PlantVersion, Site
from plantwarden.zones.plant.load import PlantFileError, load_plant_bytes
from plantwarden.zones.plant.model import PlantModel
from plantwarden.zones.plant.rights import PlantPolicy, plant_policy, with_plant


@dataclass(frozen=True)
class ApplyResult:
    """What applying did: the version now in force, the one before, the sites and segments created."""

    version: str
    previous: str | None
    created: tuple[str, ...]
    unchanged: bool


def apply_plant(
    session: Session, ctx: Context, raw: bytes, source: str, *, audit: AuditLog | None = None
) -> ApplyResult:
    """Check and apply plant.yaml content (`PlantFileError` when invalid, nothing changes then)."""
    model = load_plant_bytes(raw, source)
    check_rights(model)
    current = latest(session)
    if current is not None and current.version == model.version:
        return ApplyResult(model.version, current.previous, (), unchanged=True)
    created = _create_places(session, ctx, model)
    row = PlantVersion(
        id=new_id(),
        version=model.version,
        applied_at=ctx.clock.now(),
        applied_by=ctx.actor or "system",
        source=source[:500],
        sites=[site.id for site in model.sites],
        content=raw.decode("utf-8"),
        previous=current.version if current else None,
    )
    session.add(row)
    session.flush()
    applied = PlantApplied(model.version, row.previous, row.sites, row.source, row.applied_by, list(created))
    eventlog.record(session, envelope(applied, clock=ctx.clock, source=ctx.source))
    if audit is not None:
        details = {
            "version": model.version,
            "previous": row.previous,
            "sites": row.sites,
            "source": row.source,
        }
        audit.append(
            session,
            actor=ctx.actor,
            source=ctx.source,
            action="plant.applied",
            outcome="success",
            target=f"plant:{model.version[:12]}",
            details=details,
            clock=ctx.clock,
        )
    return ApplyResult(model.version, row.previous, created, unchanged=False)


def check_rights(model: PlantModel) -> None:
    """The plant's rights must compile with the built-in roles (`InvalidPlantRights` otherwise)."""
    try:
        compile_policy(with_plant(builtin_model([]), plant_policy(model)))
    except InvalidPolicy as error:
        raise InvalidPlantRights(f"the rights of {model.source} do not compile: {error}") from error


def _create_places(session: Session, ctx: Context, model: PlantModel) -> tuple[str, ...]:
    created = []
    for site in model.sites:
        if session.get(Site, site.id) is None:
            services.create_site(session, ctx, site.id, site.name)
            created.append(site.id)
        for segment in sorted({zone.segment for zone in site.zones}):
            if session.get(NetworkSegment, (site.id, segment)) is None:
                services.add_segment(session, ctx, site.id, segment, "declared by plant.yaml")
                created.append(f"{site.id}/{segment}")
    return tuple(created)


def latest(session: Session) -> PlantVersion | None:
    """The newest applied version (the one in force), or None when no model was applied."""
    return session.scalars(
        select(PlantVersion).order_by(PlantVersion.applied_at.desc(), PlantVersion.id.desc())
    ).first()


def history(session: Session, limit: int = 20) -> Sequence[PlantVersion]:
    """Applied versions, newest first."""
    statement = (
        select(PlantVersion).order_by(PlantVersion.applied_at.desc(), PlantVersion.id.desc()).limit(limit)
    )
    return session.scalars(statement).all()


def current_model(session: Session) -> PlantModel | None:
    """The applied plant model, parsed (cached by version), or None; `AppliedPlantUnreadable`
    when the stored file no longer loads."""
    row = latest(session)
    if row is None:
        return None
    return _parsed(row.version, row.content, row.source)


def current_policy(session: Session) -> PlantPolicy | None:
    """The policy input of the applied model (rights and bindings), or None."""
    model = current_model(session)
    return plant_policy(model) if model is not None else None


@lru_cache(maxsize=4)
def _parsed(version: str, content: str, source: str) -> PlantModel:
    try:
        return load_plant_bytes(content.encode("utf-8"), source)
    except PlantFileError as error:
        raise AppliedPlantUnreadable(
            f"the plant model in force (version {version[:12]}, from {source}) no longer loads: "
            f"{error.message}; apply a corrected plant.yaml",
            details={"version": version, "problems": error.details.get("problems", [])},
        ) from error
