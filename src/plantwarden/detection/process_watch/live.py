"""Building the process watch for a process: its saved models, its store, its alerts."""

from __future__ import annotations

from pathlib import Path

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.runtime import Runtime
from plantwarden.detection.process_watch.alerts import episode_reporter
from plantwarden.detection.process_watch.limits import WatchedModel
from plantwarden.detection.process_watch.saved import load_models, save_model
from plantwarden.detection.process_watch.watch import ProcessWatch
from plantwarden.monitoring.requests import RecordSink
from plantwarden.zones.applied import current_model
from plantwarden.zones.plant.load import load_plant
from plantwarden.zones.plant.model import PlantModel


def open_process_watch(
    runtime: Runtime,
    site: str,
    inner: RecordSink | None,
    *,
    learn_ns: int = 3600 * SECOND_NS,
    learn: bool = True,
    trained_by: str = "sensor",
    plant: Path | None = None,
) -> ProcessWatch:
    """A `ProcessWatch` for `site` over the process's store: the site's saved models watch at
    once, devices without one learn (unless `learn` is off) and their models are saved; the
    register maps of `plant` (else of the applied plant model) say which variables are counters."""
    store = runtime.ready_store()
    with store.transaction() as session:
        saved = load_models(session, site)
        model = load_plant(plant) if plant is not None else current_model(session)
    ctx = runtime.context()

    def save(device: str, model: WatchedModel, step_ns: int, rows: int, trained: tuple[int, int]) -> None:
        with store.transaction() as session:
            save_model(
                session,
                ctx,
                site=site,
                device=device,
                model=model,
                step_ns=step_ns,
                rows=rows,
                trained_ns=trained,
                created_by=trained_by,
            )

    return ProcessWatch(
        site,
        inner,
        episode_reporter(store, ctx, site),
        save,
        models={device: trained.model for device, trained in saved.items()},
        learn_ns=learn_ns,
        learn=learn,
        marks=counter_marks(model, site),
    )


def counter_marks(plant: PlantModel | None, site: str) -> dict[str, dict[str, bool]]:
    """Per device (asset id) of `site`, its registers marked `counter: true` or `false` by name
    (the telemetry's variables): the process watch judges these by the mark, not their values."""
    sites = [s for s in plant.sites if s.id == site] if plant is not None else []
    marks: dict[str, dict[str, bool]] = {}
    for found in sites:
        for asset in found.assets:
            marked = {r.name: r.counter for r in asset.registers if r.counter is not None}
            if marked:
                marks[asset.id] = marked
    return marks
