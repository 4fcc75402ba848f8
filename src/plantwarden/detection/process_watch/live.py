"""Building the process watch for a process: its saved models, its store, its alerts."""

from __future__ import annotations

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.runtime import Runtime
from plantwarden.detection.process_watch.alerts import episode_reporter
from plantwarden.detection.process_watch.limits import WatchedModel
from plantwarden.detection.process_watch.saved import load_models, save_model
from plantwarden.detection.process_watch.watch import ProcessWatch
from plantwarden.monitoring.requests import RecordSink


def open_process_watch(
    runtime: Runtime,
    site: str,
    inner: RecordSink | None,
    *,
    learn_ns: int = 3600 * SECOND_NS,
    learn: bool = True,
    trained_by: str = "sensor",
) -> ProcessWatch:
    """A `ProcessWatch` for `site` over the process's store: the site's saved models watch at
    once, devices without one learn (unless `learn` is off) and their models are saved."""
    store = runtime.ready_store()
    with store.transaction() as session:
        saved = load_models(session, site)
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
    )
