"""The alert a process episode raises: which device, which variables, how far off, and since when."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from plantwarden.alerts.models import Confidence, Severity
from plantwarden.alerts.services import AlertDraft, RaisedCounts, raise_alerts
from plantwarden.core.clock import from_nanoseconds
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.detection.process_watch.episodes import Episode

DETECTOR = "process-model"
RULE_ID = "pw-process-anomaly"
RULE_NAME = "Process values off their learned relations"


def _iso(ns: int) -> str:
    return from_nanoseconds(ns).isoformat().replace("+00:00", "Z")


def draft(site: str, episode: Episode) -> AlertDraft:
    """One alert per device and leading variable while it stays open (later episodes of the same
    variable count occurrences of it)."""
    shown = episode.variables()
    top = shown[0] if shown else None
    lead = top.variable if top is not None else "its variables"
    headline = top.describe() if top is not None else "no variable present"
    lines = [
        f"The process model of {episode.device} (trained on its own telemetry) flags its values from "
        f"{_iso(episode.start_ns)}{' (still going)' if episode.ongoing else f' to {_iso(episode.end_ns)}'}: "
        f"score {episode.peak_score:.3g} against a threshold of {episode.threshold:.3g} learned in training.",
        "Furthest from what the other variables imply, at the worst moment:",
        *(f"- {deviation.describe()}" for deviation in shown),
    ]
    if episode.outside:
        lines.append(
            "The device ran outside the operating envelope it learned in (a new operating point "
            "may explain the deviation; retrain once it is normal): "
            + "; ".join(
                f"{name} = {value:.4g} (learned {low:.4g} .. {high:.4g})"
                for name, value, low, high in episode.outside
            )
        )
    evidence: list[dict[str, Any]] = [
        {
            "kind": "process-episode",
            "device": episode.device,
            "since": _iso(episode.start_ns),
            "until": _iso(episode.end_ns),
            "rows": episode.rows,
            "peak": _iso(episode.peak_ns),
            "score": round(episode.peak_score, 6),
            "threshold": round(episode.threshold, 6),
            "outside_envelope": [
                {"variable": name, "value": value, "low": low, "high": high}
                for name, value, low, high in episode.outside
            ],
        },
        *(
            {
                "kind": "telemetry",
                "device": episode.device,
                "variable": d.variable,
                "measure": d.measure,
                "at": _iso(episode.peak_ns),
                "value": d.value,
                "expected": round(d.expected, 6),
                "deviation_sd": None if d.deviation is None else round(d.deviation, 2),
            }
            for d in shown
        ),
    ]
    return AlertDraft(
        site=site,
        title=f"Process anomaly at {episode.device}: {headline}",
        severity=Severity.LOW if episode.outside else Severity.MEDIUM,
        detector=DETECTOR,
        rule_id=RULE_ID,
        rule_name=RULE_NAME,
        description="\n".join(lines),
        assets=[episode.device],
        evidence=evidence,
        dedup_key=f"{RULE_ID}:{site}:{episode.device}:{lead}",
        seen_at=from_nanoseconds(episode.end_ns),
        extra={"variables": [d.variable for d in shown]},
        confidence=Confidence.LOW if episode.outside else Confidence.MEDIUM,
    )


def episode_reporter(store: Store, ctx: Context, site: str) -> Callable[[Sequence[Episode]], RaisedCounts]:
    """A function that raises episodes as alerts in a transaction of their own."""

    def report(episodes: Sequence[Episode]) -> RaisedCounts:
        with store.transaction() as session:
            return raise_alerts(session, ctx, [draft(site, episode) for episode in episodes])

    return report
