"""The deny overlay: a quarantine takes effect at once, without compiling again, and can be released."""

from __future__ import annotations

import threading

import pytest

from plantwarden.policy import DenyOverlay, Grant, InvalidPolicy, Request, Subject
from tests.unit.policy.support import ALICE, BOB, snapshot_of

WRITE = "plant:modbus.write"


def test_quarantining_a_subject_denies_everything_at_once_and_release_restores() -> None:
    snapshot = snapshot_of(Grant(ALICE, "engineer", "plant-a"), Grant(BOB, "engineer", "plant-a"))
    overlay = DenyOverlay()
    request = Request(ALICE, WRITE, "plant-a", "cell-1", asset="plc-1")
    assert snapshot.decide(request, overlay).allowed
    assert overlay.quarantine_subject(ALICE, "  credentials  seen on a paste site ")
    decision = snapshot.decide(request, overlay)
    assert (decision.allowed, decision.rule) == (False, "deny:quarantine:subject")
    assert decision.reason == "user alice is quarantined: credentials seen on a paste site"
    assert not snapshot.decide(Request(ALICE, "platform:alerts.read", "plant-a"), overlay).allowed
    assert snapshot.decide(Request(BOB, WRITE, "plant-a", "cell-1", asset="plc-1"), overlay).allowed
    assert snapshot.decide(request).allowed  # without the overlay, the grants alone decide
    assert overlay.release_subject(ALICE)
    assert snapshot.decide(request, overlay).allowed
    assert not overlay.release_subject(ALICE)


def test_quarantining_an_asset_denies_plant_operations_on_it_only() -> None:
    snapshot = snapshot_of(Grant(ALICE, "engineer", "plant-a"))
    overlay = DenyOverlay()
    assert overlay.quarantine_asset("plant-a", "plc-1", "unexpected firmware")
    on_it = snapshot.decide(Request(ALICE, "plant:modbus.read", "plant-a", "cell-1", asset="plc-1"), overlay)
    assert (on_it.allowed, on_it.rule) == (False, "deny:quarantine:asset")
    assert on_it.reason.endswith("quarantined, no plant operation reaches it: unexpected firmware")
    assert snapshot.decide(Request(ALICE, WRITE, "plant-a", "cell-1", asset="plc-2"), overlay).allowed
    assert snapshot.decide(Request(ALICE, WRITE, "plant-b", "cell-1", asset="plc-1"), overlay).rule == (
        "default-deny"  # same asset id at another site: not quarantined (and no grant there)
    )
    about_it = snapshot.decide(
        Request(ALICE, "platform:alerts.read", "plant-a", "cell-1", asset="plc-1"), overlay
    )
    assert about_it.allowed
    assert overlay.release_asset("plant-a", "plc-1")
    assert snapshot.decide(Request(ALICE, WRITE, "plant-a", "cell-1", asset="plc-1"), overlay).allowed


def test_a_quarantine_wins_over_any_grant_and_the_first_reason_stays() -> None:
    snapshot = snapshot_of(Grant(ALICE, "admin", "plant-a"))
    overlay = DenyOverlay()
    assert overlay.quarantine_subject(ALICE, "first")
    assert not overlay.quarantine_subject(ALICE, "second")
    assert overlay.snapshot().subjects == {("user", "alice"): "first"}
    assert snapshot.decide(Request(ALICE, "platform:users.manage", "plant-a"), overlay).rule == (
        "deny:quarantine:subject"
    )


def test_overlay_states_are_immutable_snapshots() -> None:
    overlay = DenyOverlay()
    before = overlay.snapshot()
    overlay.quarantine_asset("plant-a", "plc-1", "why")
    after = overlay.snapshot()
    assert before.empty and not after.empty
    assert (before.generation, after.generation) == (0, 1)
    assert after.asset_keys == frozenset({("plant-a", "plc-1")})
    with pytest.raises(TypeError):
        after.assets[("plant-a", "plc-2")] = "x"  # type: ignore[index]


def test_a_quarantine_needs_a_reason_and_a_target() -> None:
    overlay = DenyOverlay()
    with pytest.raises(InvalidPolicy, match="needs a reason"):
        overlay.quarantine_subject(ALICE, "   ")
    with pytest.raises(InvalidPolicy, match="not a subject"):
        overlay.quarantine_subject(Subject("user", ""), "why")
    with pytest.raises(InvalidPolicy, match="without a site"):
        overlay.quarantine_asset("plant-a", "", "why")
    assert overlay.snapshot().empty


def test_concurrent_changes_are_all_kept() -> None:
    overlay = DenyOverlay()

    def quarantine(worker: int) -> None:
        for n in range(200):
            overlay.quarantine_subject(Subject("user", f"u{worker}-{n}"), "bulk")
            overlay.quarantine_asset("plant-a", f"plc-{worker}-{n}", "bulk")

    threads = [threading.Thread(target=quarantine, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state = overlay.snapshot()
    assert len(state.subject_keys) == len(state.asset_keys) == 800
    assert state.generation == 1600
