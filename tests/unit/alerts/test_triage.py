"""Confidence, verdicts, assignees, suppressions, rate limits, maintenance windows and ring pointers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from plantwarden.alerts import services, suppressions
from plantwarden.alerts.errors import AlertTransitionRefused, EvidenceNotKept, InvalidAlert
from plantwarden.alerts.evidence import RingPointer, cut_slice, ring_pointers
from plantwarden.alerts.models import Alert, Confidence, Severity
from plantwarden.alerts.queries import AlertFilter, count_suppressed, list_alerts
from plantwarden.core import migrate
from plantwarden.core.clock import FixedClock
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.core.eventlog import EventRecord
from tests.unit.alerts.test_services import draft

POINTER: dict[str, object] = {
    "kind": "pcap",
    "site": "plant-a",
    "segment": "cell-1",
    "hosts": ["10.0.1.3"],
    "since": "2026-11-27T10:00:00+00:00",
    "until": "2026-11-27T10:05:00+00:00",
}


@pytest.fixture
def ready(store: Store) -> Store:
    migrate.ensure_ready(store)
    return store


def fixed(ctx: Context) -> FixedClock:
    assert isinstance(ctx.clock, FixedClock)
    return ctx.clock


def events(store: Store) -> list[str]:
    with store.transaction() as session:
        return list(session.scalars(select(EventRecord.type).order_by(EventRecord.position)))


def test_closing_needs_a_known_verdict_and_keeps_it(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        alert = services.raise_alert(session, ctx, draft(confidence=Confidence.HIGH))
        with pytest.raises(InvalidAlert, match="not a verdict: true_positive, false_positive, benign"):
            services.close(session, ctx, alert.id, "x", verdict="maybe")
        closed = services.close(session, ctx, alert.id, verdict="true_positive")
        assert (closed.verdict, closed.confidence, closed.status_note) == ("true_positive", "high", "")
    with pytest.raises(InvalidAlert, match="confidence"), ready.transaction() as session:
        services.raise_alert(session, ctx, draft(confidence="sure"))


def test_assigning_announces_each_change_and_refuses_closed_alerts(ready: Store, ctx: Context) -> None:
    analyst = Context(source="test", clock=ctx.clock, actor="sam")
    with ready.transaction() as session:
        alert = services.raise_alert(session, ctx, draft())
        services.assign(session, analyst, alert.id, "bob")
        services.assign(session, analyst, alert.id, "bob")  # no change, no event
        services.assign(session, analyst, alert.id, None)
        assert alert.assignee is None
        with pytest.raises(InvalidAlert, match="not a username"):
            services.assign(session, analyst, alert.id, "bob; drop")
        services.assign(session, analyst, alert.id, "eve")
        services.close(session, analyst, alert.id, verdict="benign")
        with pytest.raises(AlertTransitionRefused, match="closed"):
            services.assign(session, analyst, alert.id, "bob")
    assert events(ready).count("alerts.AlertAssigned") == 3
    with ready.transaction() as session:
        assert [a.id for a in list_alerts(session, AlertFilter(assignee="eve", verdict="benign"))] == [
            alert.id
        ]


def test_a_suppression_stores_matching_alerts_suppressed_and_counted(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        suppressions.suppress(
            session, ctx, "PW-ZONE-001", timedelta(hours=8), "commissioning", site="plant-a", asset="10.0.1.3"
        )
        hidden = services.raise_alert(session, ctx, draft(dedup_key="k"))
        again = services.raise_alert(session, ctx, draft(dedup_key="k"))
        other_asset = services.raise_alert(session, ctx, draft(assets=["10.0.1.9"]))
        other_site = services.raise_alert(session, ctx, draft(site="plant-b"))
    assert hidden.suppressed and again.id == hidden.id and hidden.occurrences == 2
    assert not other_asset.suppressed and not other_site.suppressed
    with ready.transaction() as session:
        shown = list_alerts(session, AlertFilter(suppressed=False))
        assert {a.id for a in shown} == {other_asset.id, other_site.id}
        assert count_suppressed(session, AlertFilter(site="plant-a")) == 1
        assert count_suppressed(session, AlertFilter(site="plant-b")) == 0
    fixed(ctx).advance(timedelta(hours=8, seconds=1))
    with ready.transaction() as session:
        assert not services.raise_alert(session, ctx, draft()).suppressed  # expired
        assert suppressions.active_suppressions(session, ctx.clock.now()) == []


def test_suppressions_refuse_bad_durations_and_missing_reasons(ready: Store, ctx: Context) -> None:
    assert suppressions.parse_duration("8h") == timedelta(hours=8)
    assert suppressions.parse_duration(" 30m") == timedelta(minutes=30)
    for bad in ("8", "h", "-1h", "1w", "1.5h"):
        with pytest.raises(InvalidAlert, match="not a duration"):
            suppressions.parse_duration(bad)
    with ready.transaction() as session:
        with pytest.raises(InvalidAlert, match="needs a reason"):
            suppressions.suppress(session, ctx, "R", timedelta(hours=1), " ")
        with pytest.raises(InvalidAlert, match="at most 90 days"):
            suppressions.suppress(session, ctx, "R", timedelta(days=91), "long")
        with pytest.raises(InvalidAlert, match="the reason has 2001 characters; at most 2000"):
            suppressions.suppress(session, ctx, "R", timedelta(hours=1), "y" * 2001)
        for options, problem in (
            ({"rule_id": "r" * 121}, "the rule id has 121 characters; at most 120"),
            ({"site": "s" * 64}, "the site has 64 characters; at most 63"),
            ({"asset": "10.0.0.1\nforged"}, "the asset '10.0.0.1\\\\nforged' holds a line break"),
        ):
            given = {"rule_id": "R", **options}
            rule_id = given.pop("rule_id")
            with pytest.raises(InvalidInput, match=problem):
                suppressions.suppress(session, ctx, rule_id, timedelta(hours=1), "noise", **given)
        kept = suppressions.suppress(session, ctx, "r" * 120, timedelta(hours=1), "noise", site="s" * 63)
        assert (kept.rule_id, kept.site) == ("r" * 120, "s" * 63)


def test_a_note_or_reason_the_api_would_refuse_is_refused_on_every_path(ready: Store, ctx: Context) -> None:
    """The command line calls the services the API calls: a note of 2001 characters is refused
    there too, and the alert keeps its status."""
    with ready.transaction() as session:
        alert = services.raise_alert(session, ctx, draft())
        with pytest.raises(InvalidAlert, match="the note has 2001 characters; at most 2000"):
            services.acknowledge(session, ctx, alert.id, "n" * 2001)
        with pytest.raises(InvalidAlert, match="the reason has 2001 characters; at most 2000"):
            services.close(session, ctx, alert.id, "r" * 2001, verdict="benign")
        assert alert.status == "new"
        closed = services.close(session, ctx, alert.id, "r" * 2000, verdict="benign")
        assert closed.status_note == "r" * 2000


def test_past_the_rate_limit_alerts_fold_into_one_with_an_exact_count(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        raised = [
            services.raise_alert(
                session, ctx, draft(title=f"write {n}", assets=[f"10.0.1.{n}"]), rate_limit=3
            )
            for n in range(10)
        ]
        elsewhere = services.raise_alert(session, ctx, draft(site="plant-b"), rate_limit=3)
    folded = {a.id for a in raised[3:]}
    assert len({a.id for a in raised[:3]}) == 3 and len(folded) == 1 and not elsewhere.rate_limited
    with ready.transaction() as session:
        holder = session.get(Alert, folded.pop())
        assert holder is not None and holder.rate_limited and holder.occurrences == 7
        assert [e["title"] for e in holder.evidence] == [f"write {n}" for n in range(3, 10)]
        assert "10.0.1.9" in holder.assets and holder.title.startswith("Rate limit: more than 3")
    fixed(ctx).advance(timedelta(minutes=1, seconds=1))
    with ready.transaction() as session:
        assert not services.raise_alert(session, ctx, draft(), rate_limit=3).rate_limited


def test_maintenance_windows_set_the_severity_and_say_why(ready: Store, ctx: Context) -> None:
    download = {"severity": Severity.HIGH, "severity_in_maintenance": Severity.LOW, "dedup_key": "dl"}
    with ready.transaction() as session:
        inside = services.raise_alert(session, ctx, draft(**download, in_maintenance=True))
        assert inside.severity_name == "low"
        assert inside.severity_reason == "inside an approved maintenance window: low (high outside one)"
        outside = services.raise_alert(session, ctx, draft(**download, in_maintenance=False))
        assert outside.id == inside.id and outside.severity_name == "high"
        assert outside.severity_reason.startswith("outside any approved maintenance window: high")
        plain = services.raise_alert(session, ctx, draft(severity=Severity.MEDIUM))
        assert (plain.severity_name, plain.severity_reason) == ("medium", "")


def test_ring_pointers_are_checked_when_raised(ready: Store, ctx: Context) -> None:
    with ready.transaction() as session:
        alert = services.raise_alert(session, ctx, draft(evidence=[POINTER]))
        (pointer,) = ring_pointers(alert.evidence)
        assert pointer.command("a.pcap") == (
            "plantwarden sensor evidence --site plant-a --segment cell-1 --since 2026-11-27T10:00:00+00:00"
            " --until 2026-11-27T10:05:00+00:00 --host 10.0.1.3 -o a.pcap"
        )
    bad: list[tuple[dict[str, object], str]] = [
        ({"segment": "../etc"}, "segment name"),
        ({"hosts": ["plc-1"]}, "not an IPv4 or IPv6 address"),
        ({"since": "2026-11-27T10:00:00"}, "with an offset"),
        ({"until": "2026-11-27T09:00:00+00:00"}, "window is empty"),
    ]
    for change, message in bad:
        with pytest.raises(InvalidAlert, match=message), ready.transaction() as session:
            services.raise_alert(session, ctx, draft(evidence=[POINTER | change]))


def test_a_slice_the_ring_no_longer_holds_is_refused_with_the_reason(tmp_path: Path) -> None:
    pointer = RingPointer("plant-a", "cell-1", ("10.0.1.3",), 10**18, 10**18 + 10**9)
    with pytest.raises(EvidenceNotKept, match="keeps no packets"):
        cut_slice(tmp_path, pointer)
    (tmp_path / "evidence" / "plant-a" / "cell-1").mkdir(parents=True)
    with pytest.raises(EvidenceNotKept, match=r"no longer holds the packets from .*: it keeps nothing"):
        cut_slice(tmp_path, pointer)
