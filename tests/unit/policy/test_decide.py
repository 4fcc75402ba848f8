"""Decisions: zone scoping, ranges, conditions, the deciding rule, validation and the version."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from plantwarden.core.errors import InvalidInput
from plantwarden.policy import (
    BUILTIN_ROLES,
    Conditions,
    Decision,
    Grant,
    InvalidAction,
    InvalidPolicy,
    InvalidRange,
    PolicyModel,
    Request,
    Role,
    Rule,
    ScopePattern,
    Subject,
    UnknownRole,
    compile_policy,
)
from plantwarden.policy.model import Scope
from tests.unit.policy.support import ALICE, BOB, NOW, snapshot_of

WRITE = "plant:modbus.write"
NAIVE = datetime(2026, 1, 1)  # noqa: DTZ001 - a time without a zone, refused on purpose


def tech_model(*grants: Grant, conditions: Conditions | None = None) -> PolicyModel:
    """A role that may write two register ranges of one PLC, and read anything in zone cell-1."""
    tech = Role(
        "tech",
        "writes set points of plc-1",
        (
            Rule(
                "setpoints",
                frozenset({WRITE}),
                ScopePattern(asset="plc-1", ranges=((100, 199), (300, 349), (200, 249))),
                conditions or Conditions(),
            ),
            Rule("read-cell-1", frozenset({"plant:*.read"}), ScopePattern(zone="cell-1")),
        ),
    )
    return PolicyModel({**BUILTIN_ROLES, "tech": tech}, grants)


# --- zone scoping --------------------------------------------------------------------------------


def test_an_operator_of_one_zone_is_denied_an_asset_in_another() -> None:
    snapshot = snapshot_of(Grant(ALICE, "operator", "plant-a", "cell-1"))
    inside = snapshot.decide(Request(ALICE, WRITE, "plant-a", "cell-1", asset="plc-1", address=5))
    outside = snapshot.decide(Request(ALICE, WRITE, "plant-a", "cell-2", asset="plc-7", address=5))
    assert inside.allowed and inside.rule == "role:operator/plant-write"
    assert not outside.allowed and outside.rule == "default-deny"
    assert outside.reason == "user alice holds no grant covering zone cell-2 of site plant-a"


def test_a_zone_grant_does_not_cover_the_site_as_a_whole() -> None:
    snapshot = snapshot_of(Grant(ALICE, "operator", "plant-a", "cell-1"))
    decision = snapshot.decide(Request(ALICE, "platform:alerts.read", "plant-a"))
    assert not decision.allowed
    assert "none for the site as a whole" in decision.reason
    assert snapshot.decide(Request(ALICE, "platform:alerts.read", "plant-a", "cell-1")).allowed


def test_a_site_grant_covers_every_zone_of_that_site_only() -> None:
    snapshot = snapshot_of(Grant(ALICE, "operator", "plant-a"))
    assert snapshot.decide(Request(ALICE, WRITE, "plant-a", "any-zone")).allowed
    assert snapshot.decide(Request(ALICE, WRITE, "plant-a")).allowed
    other_site = snapshot.decide(Request(ALICE, WRITE, "plant-b", "any-zone"))
    assert (other_site.allowed, other_site.reason) == (False, "user alice holds no grant at site plant-b")


def test_a_rule_zone_limit_applies_under_a_site_grant() -> None:
    snapshot = compile_policy(tech_model(Grant(ALICE, "tech", "plant-a")))
    assert snapshot.decide(Request(ALICE, "plant:modbus.read", "plant-a", "cell-1")).allowed
    assert not snapshot.decide(Request(ALICE, "plant:modbus.read", "plant-a", "cell-2")).allowed
    assert not snapshot.decide(Request(ALICE, "plant:modbus.read", "plant-a")).allowed


def test_a_rule_zone_limit_outside_the_granted_zone_never_applies() -> None:
    snapshot = compile_policy(tech_model(Grant(ALICE, "tech", "plant-a", "cell-2")))
    decision = snapshot.decide(Request(ALICE, "plant:modbus.read", "plant-a", "cell-2"))
    assert (decision.allowed, decision.rule) == (False, "default-deny")
    assert decision.reason == "tech of zone cell-2 of site plant-a may not modbus.read"


def test_an_unknown_subject_is_denied_by_default() -> None:
    decision = snapshot_of().decide(Request(BOB, "platform:status.read", "plant-a"))
    assert decision == Decision(False, "default-deny", "user bob holds no grant")


def test_other_subject_kinds_hold_grants_of_their_own() -> None:
    hmi = Subject("address", "10.0.1.5")
    badge = Subject("cert_role", "hmi-cell-1")
    snapshot = snapshot_of(Grant(hmi, "operator", "plant-a", "cell-1"), Grant(badge, "viewer", "plant-a"))
    assert snapshot.decide(Request(hmi, WRITE, "plant-a", "cell-1")).allowed
    assert not snapshot.decide(Request(Subject("user", "10.0.1.5"), WRITE, "plant-a", "cell-1")).allowed
    assert snapshot.decide(Request(badge, "platform:alerts.read", "plant-a", "cell-9")).allowed


# --- register ranges -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "quantity", "allowed"),
    [
        (100, 1, True),
        (199, 1, True),
        (99, 1, False),
        (250, 1, False),
        (100, 150, True),  # 100..249 lies in the adjacent ranges 100-199 and 200-249, merged
        (240, 11, False),  # 240..250 runs past 249
        (300, 50, True),
        (349, 2, False),
        (None, 1, False),  # a rule with ranges needs an address
    ],
)
def test_register_ranges(address: int | None, quantity: int, allowed: bool) -> None:
    snapshot = compile_policy(tech_model(Grant(ALICE, "tech", "plant-a")))
    request = Request(ALICE, WRITE, "plant-a", "cell-3", asset="plc-1", address=address, quantity=quantity)
    decision = snapshot.decide(request)
    assert decision.allowed is allowed
    assert decision.rule == ("role:tech/setpoints" if allowed else "default-deny")


def test_a_range_rule_names_its_limits_and_the_target_when_it_refuses() -> None:
    snapshot = compile_policy(tech_model(Grant(ALICE, "tech", "plant-a")))
    allowed = snapshot.decide(Request(ALICE, WRITE, "plant-a", "cell-3", asset="plc-1", address=120))
    assert (
        allowed.reason == "tech of site plant-a may modbus.write on asset plc-1 at addresses 100-249, 300-349"
    )
    refused = snapshot.decide(
        Request(ALICE, WRITE, "plant-a", "cell-3", asset="plc-2", address=120, quantity=3)
    )
    assert refused.reason == "tech of site plant-a may not modbus.write on asset plc-2 at address 120-122"


def test_a_malformed_request_is_refused() -> None:
    snapshot = snapshot_of(Grant(ALICE, "operator", "plant-a"))
    for request in [
        Request(ALICE, WRITE, "plant-a", address=10, quantity=0),
        Request(ALICE, WRITE, "plant-a", address=-1),
        Request(ALICE, WRITE, "plant-a", now=NAIVE),
    ]:
        decision = snapshot.decide(request)
        assert (decision.allowed, decision.rule) == (False, "default-deny")
        assert decision.reason.startswith("the request is malformed")


# --- conditions ----------------------------------------------------------------------------------


def test_a_grant_valid_until_is_inclusive_and_then_expires() -> None:
    snapshot = snapshot_of(Grant(ALICE, "operator", "plant-a", "cell-1", valid_until=NOW))
    at = Request(ALICE, WRITE, "plant-a", "cell-1", now=NOW)
    assert snapshot.decide(at).allowed
    after = snapshot.decide(at._replace(now=NOW + timedelta(microseconds=1)))
    assert (after.allowed, after.rule) == (False, "grant:operator@plant-a/cell-1")
    assert "expired at 2026-06-01T12:00:00+00:00" in after.reason
    without_time = snapshot.decide(at._replace(now=None))
    assert (without_time.allowed, without_time.rule) == (False, "grant:operator@plant-a/cell-1")
    assert "states no time" in without_time.reason


def test_an_expired_grant_gives_way_to_another_that_holds() -> None:
    snapshot = snapshot_of(
        Grant(ALICE, "operator", "plant-a", "cell-1", valid_until=NOW - timedelta(days=1)),
        Grant(ALICE, "engineer", "plant-a", "cell-1"),
    )
    decision = snapshot.decide(Request(ALICE, WRITE, "plant-a", "cell-1", now=NOW))
    assert (decision.allowed, decision.rule) == (True, "role:engineer/plant-write")


def test_a_rule_valid_until() -> None:
    model = tech_model(Grant(ALICE, "tech", "plant-a"), conditions=Conditions(valid_until=NOW))
    snapshot = compile_policy(model)
    request = Request(ALICE, WRITE, "plant-a", asset="plc-1", address=150, now=NOW)
    assert snapshot.decide(request).allowed
    late = snapshot.decide(request._replace(now=NOW + timedelta(seconds=1)))
    assert (late.allowed, late.rule) == (False, "role:tech/setpoints")
    assert late.reason == "tech of site plant-a could modbus.write only until 2026-06-01T12:00:00+00:00"
    assert not snapshot.decide(request._replace(now=None)).allowed


def test_training_must_be_current_for_plant_writes() -> None:
    snapshot = snapshot_of(Grant(ALICE, "operator", "plant-a", "cell-1"))
    request = Request(ALICE, WRITE, "plant-a", "cell-1", training_current=False)
    decision = snapshot.decide(request)
    assert (decision.allowed, decision.rule) == (False, "role:operator/plant-write")
    assert decision.reason.endswith("only with current training, and the training is not current")
    read = snapshot.decide(request._replace(action="plant:modbus.read"))
    assert read.allowed  # reading needs no training


def test_programming_needs_an_approval() -> None:
    snapshot = snapshot_of(Grant(ALICE, "engineer", "plant-a", "cell-1"))
    request = Request(ALICE, "plant:modbus.program", "plant-a", "cell-1", asset="plc-1")
    refused = snapshot.decide(request)
    assert refused == Decision(
        False,
        "role:engineer/plant-program",
        "engineer of zone cell-1 of site plant-a may modbus.program only with an approval,"
        " and none was given",
    )
    granted = snapshot.decide(request._replace(approval_given=True))
    assert granted == Decision(
        True,
        "role:engineer/plant-program",
        "engineer of zone cell-1 of site plant-a may modbus.program with current training and an approval",
    )
    untrained = snapshot.decide(request._replace(approval_given=True, training_current=False))
    assert (untrained.allowed, untrained.rule) == (False, "role:engineer/plant-program")


# --- the deciding rule ---------------------------------------------------------------------------


def test_the_deciding_rule_is_named() -> None:
    snapshot = snapshot_of(Grant(ALICE, "operator", "plant-a", "cell-1"), Grant(ALICE, "auditor", "plant-a"))
    assert snapshot.decide(Request(ALICE, "platform:audit.read", "plant-a")).rule == "role:auditor/read"
    # the whole-site grant comes first in the canonical order, so the auditor's rule decides
    assert (
        snapshot.decide(Request(ALICE, "platform:alerts.read", "plant-a", "cell-1")).rule
        == "role:auditor/read"
    )
    assert snapshot.decide(Request(ALICE, "platform:alerts.acknowledge", "plant-a", "cell-1")).rule == (
        "role:operator/acknowledge"
    )
    refused = snapshot.decide(Request(ALICE, "plant:modbus.program", "plant-a", "cell-1"))
    assert refused == Decision(
        False,
        "default-deny",
        "none of auditor of site plant-a, operator of zone cell-1 of site plant-a may modbus.program",
    )


def test_an_unknown_but_well_formed_action_is_matched_by_patterns() -> None:
    snapshot = snapshot_of(Grant(ALICE, "operator", "plant-a"))
    assert snapshot.decide(Request(ALICE, "plant:profinet.write", "plant-a")).allowed
    assert not snapshot.decide(Request(ALICE, "plant:profinet.program", "plant-a")).allowed
    assert not snapshot.decide(Request(ALICE, "plant:Profinet.write", "plant-a")).allowed
    assert not snapshot.decide(Request(ALICE, "modbus.write", "plant-a")).allowed


def test_a_decision_is_not_a_truth_value() -> None:
    decision = snapshot_of().decide(Request(ALICE, WRITE, "plant-a"))
    with pytest.raises(TypeError, match=r"read decision\.allowed"):
        bool(decision)


# --- validation ----------------------------------------------------------------------------------


def test_a_grant_of_an_unknown_role_is_refused() -> None:
    with pytest.raises(UnknownRole, match=r"'superuser'.*does not define") as caught:
        snapshot_of(Grant(ALICE, "superuser", "plant-a"))
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.code == "unknown_role"


@pytest.mark.parametrize(
    "bad", ["modbus.write", "plant:modbus", "plant:Modbus.write", "plant:mod*.write", "x:a.b", "*"]
)
def test_malformed_actions_are_refused(bad: str) -> None:
    role = Role("bad", "", (Rule("r", frozenset({bad})),))
    with pytest.raises(InvalidAction, match="rule 'r' of role bad"):
        compile_policy(PolicyModel({"bad": role}, ()))


@pytest.mark.parametrize(
    ("ranges", "match"),
    [
        (((0, 10), (10, 20)), "overlap"),
        (((5, 30), (10, 20)), "overlap"),
        (((10, 5),), "0 <= first <= last"),
        (((-1, 5),), "0 <= first <= last"),
        (((1, 2, 3),), "0 <= first <= last"),
    ],
)
def test_invalid_ranges_are_refused(ranges: tuple[tuple[int, int], ...], match: str) -> None:
    role = Role("r", "", (Rule("w", frozenset({WRITE}), ScopePattern(ranges=ranges)),))
    with pytest.raises(InvalidRange, match=match):
        compile_policy(PolicyModel({"r": role}, ()))


@pytest.mark.parametrize(
    "model",
    [
        PolicyModel({"a": Role("b", "", ())}, ()),
        PolicyModel({"a b": Role("a b", "", ())}, ()),
        PolicyModel({"a": Role("a", "", (Rule("x", frozenset({WRITE})), Rule("x", frozenset({WRITE}))))}, ()),
        PolicyModel({"a": Role("a", "", (Rule("x", frozenset()),))}, ()),
        PolicyModel({"a": Role("a", "", (Rule("x/y", frozenset({WRITE})),))}, ()),
        PolicyModel({"a": Role("a", "", (Rule("x", frozenset({WRITE}), ScopePattern(zone="")),))}, ()),
        PolicyModel(
            {"a": Role("a", "", (Rule("x", frozenset({WRITE}), conditions=Conditions(NAIVE)),))},
            (),
        ),
        PolicyModel({"a": Role("a", "", ())}, (Grant(Subject("robot", "r2"), "a", "plant-a"),)),  # type: ignore[arg-type]
        PolicyModel({"a": Role("a", "", ())}, (Grant(Subject("user", ""), "a", "plant-a"),)),
        PolicyModel({"a": Role("a", "", ())}, (Grant(ALICE, "a", ""),)),
        PolicyModel({"a": Role("a", "", ())}, (Grant(ALICE, "a", "plant-a", ""),)),
        PolicyModel({"a": Role("a", "", ())}, (Grant(ALICE, "a", "plant-a", valid_until=NAIVE),)),
    ],
)
def test_malformed_models_are_refused(model: PolicyModel) -> None:
    with pytest.raises(InvalidPolicy):
        compile_policy(model)


# --- the version and immutability ----------------------------------------------------------------


def test_the_version_is_stable_and_follows_the_content() -> None:
    one = Grant(ALICE, "operator", "plant-a", "cell-1", valid_until=NOW)
    same_instant = Grant(ALICE, "operator", "plant-a", "cell-1", NOW.astimezone(timezone(timedelta(hours=2))))
    two = Grant(BOB, "viewer", "plant-a")
    version = snapshot_of(one, two).version
    assert len(version) == 64 and int(version, 16) >= 0
    assert snapshot_of(one, two).version == version
    assert snapshot_of(two, one).version == version  # the order of grants does not matter
    assert snapshot_of(two, same_instant, one).version == version  # nor duplicates, nor the time zone
    assert snapshot_of(one).version != version
    assert snapshot_of(one, two, Grant(BOB, "viewer", "plant-b")).version != version
    assert snapshot_of(one, dataclasses.replace(two, zone="cell-1")).version != version
    assert compile_policy(tech_model(one, two)).version != version  # another role set


def test_adjacent_ranges_and_their_merge_are_the_same_policy() -> None:
    def model(ranges: tuple[tuple[int, int], ...]) -> PolicyModel:
        role = Role("r", "", (Rule("w", frozenset({WRITE}), ScopePattern(ranges=ranges)),))
        return PolicyModel({"r": role}, (Grant(ALICE, "r", "plant-a"),))

    assert compile_policy(model(((10, 19), (0, 9)))).version == compile_policy(model(((0, 19),))).version


def test_the_snapshot_is_immutable() -> None:
    source_roles = dict(BUILTIN_ROLES)
    grants = [Grant(ALICE, "operator", "plant-a")]
    snapshot = compile_policy(PolicyModel(source_roles, grants))
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.version = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.roles["x"] = BUILTIN_ROLES["admin"]  # type: ignore[index]
    place = next(iter(snapshot._places.values()))
    with pytest.raises(TypeError, match="immutable"):
        place[(None, "platform:users.manage")] = snapshot.roles  # type: ignore[index]
    with pytest.raises(TypeError, match="immutable"):
        place.update({})  # type: ignore[attr-defined]
    source_roles.pop("operator")
    grants.clear()
    assert snapshot.decide(Request(ALICE, WRITE, "plant-a")).allowed
    assert snapshot.grants == (Grant(ALICE, "operator", "plant-a"),)


def test_scope_patterns_cover_scopes() -> None:
    pattern = ScopePattern(zone="cell-1", ranges=((0, 9), (10, 19)))
    assert pattern.covers(Scope("plant-a", "cell-1", "plc-1", ((0, 19),)))
    assert not pattern.covers(Scope("plant-a", "cell-1", "plc-1", ((0, 20),)))
    assert not pattern.covers(Scope("plant-a", "cell-2", None, ((0, 1),)))
    assert not pattern.covers(Scope("plant-a", "cell-1"))
    assert Request(ALICE, WRITE, "plant-a", "cell-1", "plc-1", 10, quantity=5).scope == Scope(
        "plant-a", "cell-1", "plc-1", ((10, 14),)
    )
    assert ScopePattern().covers(Scope("plant-a"))
