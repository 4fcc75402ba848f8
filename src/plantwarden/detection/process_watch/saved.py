"""Saving and loading trained process models (one per site and device) in the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from plantwarden.core.clock import from_nanoseconds
from plantwarden.core.context import Context
from plantwarden.core.errors import InvalidInput, NotFound
from plantwarden.detection.process_watch.limits import WatchedModel
from plantwarden.detection.process_watch.models import ProcessModelRecord


@dataclass(frozen=True)
class TrainedModel:
    """A device's model with what it was trained on."""

    site: str
    device: str
    model: WatchedModel
    step_ns: int
    rows: int
    trained_from: datetime
    trained_until: datetime
    created_at: datetime
    created_by: str


def save_model(
    session: Session,
    ctx: Context,
    *,
    site: str,
    device: str,
    model: WatchedModel,
    step_ns: int,
    rows: int,
    trained_ns: tuple[int, int],
    created_by: str,
) -> TrainedModel:
    """Keep `model` as the device's model at `site`, replacing an earlier one."""
    if not site or not device:
        raise InvalidInput("a process model needs a site and a device")
    session.execute(
        delete(ProcessModelRecord).where(ProcessModelRecord.site == site, ProcessModelRecord.device == device)
    )
    record = ProcessModelRecord(
        site=site,
        device=device[:200],
        variables=list(model.names),
        step_ns=step_ns,
        rows=rows,
        trained_from=from_nanoseconds(trained_ns[0]),
        trained_until=from_nanoseconds(trained_ns[1]),
        model=model.to_dict(),
        created_at=ctx.clock.now(),
        created_by=created_by[:200],
    )
    session.add(record)
    session.flush()
    return _trained(record)


def load_models(session: Session, site: str) -> dict[str, TrainedModel]:
    """Every trained model of `site`, by device."""
    found = session.scalars(select(ProcessModelRecord).where(ProcessModelRecord.site == site))
    return {record.device: _trained(record) for record in found}


def model_sites(session: Session) -> list[str]:
    """The sites that have trained models, in order (to tell a misspelt site from one not trained)."""
    return list(session.scalars(select(ProcessModelRecord.site).distinct().order_by(ProcessModelRecord.site)))


def forget_model(session: Session, site: str, device: str) -> None:
    """Drop a device's model (it learns afresh); NotFound when it has none."""
    gone = session.execute(
        delete(ProcessModelRecord).where(ProcessModelRecord.site == site, ProcessModelRecord.device == device)
    )
    if not getattr(gone, "rowcount", 0):
        raise NotFound(f"no process model for {device!r} at site {site!r}")


def _trained(record: ProcessModelRecord) -> TrainedModel:
    return TrainedModel(
        site=record.site,
        device=record.device,
        model=WatchedModel.from_dict(record.model),
        step_ns=record.step_ns,
        rows=record.rows,
        trained_from=record.trained_from,
        trained_until=record.trained_until,
        created_at=record.created_at,
        created_by=record.created_by,
    )
