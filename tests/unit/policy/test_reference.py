"""Property: the compiled snapshot decides exactly as the slow reference (bench/policy_reference.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.policy_reference import ReferencePolicy, names
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.policy import (
    Conditions,
    DenyOverlay,
    Grant,
    PolicyModel,
    Request,
    Role,
    Rule,
    ScopePattern,
    Subject,
    compile_policy,
)
from plantwarden.policy.model import action_matches

T = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SITES = ("s1", "s2")
ZONES = ("z1", "z2")
ASSETS = ("a1", "a2")
SUBJECTS = (
    Subject("user", "u1"),
    Subject("user", "u2"),
    Subject("cert_role", "c1"),
    Subject("address", "10.0.0.1"),
)
RULE_ACTIONS = (
    "platform:alerts.read",
    "platform:alerts.close",
    "plant:modbus.read",
    "plant:modbus.write",
    "plant:s7comm.write",
    "plant:x.y.write",
    "platform:alerts.*",
    "plant:*.write",
    "plant:*",
    "plant:modbus.*",
)
REQUEST_ACTIONS = (
    *[a for a in RULE_ACTIONS if "*" not in a],
    "plant:foo.write",
    "plant:foo.bar.read",
    "plant:Bad",
)
LIMITS = (None, T - timedelta(hours=1), T, T + timedelta(hours=1))
MOMENTS = (None, T - timedelta(hours=2), T, T + timedelta(minutes=30), T + timedelta(hours=2))

optional = st.one_of


@st.composite
def ranges(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    bounds = sorted(draw(st.sets(st.integers(0, 40), max_size=6)))
    pairs = [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds) - 1, 2)]
    # shift each start by one so that ranges may touch (adjacent) but never overlap
    return tuple(
        (low + 1 if i and low <= pairs[i - 1][1] else low, high) for i, (low, high) in enumerate(pairs)
    )


@st.composite
def rules(draw: st.DrawFn, index: int) -> Rule:
    return Rule(
        id=f"r{index}",
        actions=frozenset(draw(st.sets(st.sampled_from(RULE_ACTIONS), min_size=1, max_size=3))),
        scope=ScopePattern(
            site=draw(optional(st.none(), st.sampled_from(SITES))),
            zone=draw(optional(st.none(), st.none(), st.sampled_from(ZONES))),
            asset=draw(optional(st.none(), st.none(), st.sampled_from(ASSETS))),
            ranges=draw(optional(st.just(()), ranges())),
        ),
        conditions=Conditions(
            valid_until=draw(st.sampled_from(LIMITS)),
            requires_training=draw(st.booleans()),
            requires_approval=draw(st.booleans()),
        ),
    )


@st.composite
def models(draw: st.DrawFn) -> PolicyModel:
    roles = {}
    for r in range(draw(st.integers(1, 3))):
        count = draw(st.integers(1, 3))
        roles[f"role{r}"] = Role(f"role{r}", "", tuple(draw(rules(i)) for i in range(count)))
    grants = draw(
        st.lists(
            st.builds(
                Grant,
                subject=st.sampled_from(SUBJECTS),
                role=st.sampled_from(sorted(roles)),
                site=st.sampled_from(SITES),
                zone=optional(st.none(), st.sampled_from(ZONES)),
                valid_until=st.sampled_from(LIMITS),
            ),
            max_size=8,
        )
    )
    return PolicyModel(roles, grants)


requests = st.builds(
    Request,
    subject=st.sampled_from((*SUBJECTS, Subject("user", "nobody"))),
    action=st.sampled_from(REQUEST_ACTIONS),
    site=st.sampled_from(SITES),
    zone=optional(st.none(), st.sampled_from(ZONES)),
    asset=optional(st.none(), st.sampled_from(ASSETS)),
    address=optional(st.none(), st.integers(-1, 45)),
    now=st.sampled_from((*MOMENTS, T.replace(tzinfo=None))),
    training_current=st.booleans(),
    approval_given=st.booleans(),
    quantity=st.integers(0, 6),
)


@st.composite
def aimed_requests(draw: st.DrawFn, model: PolicyModel) -> Request:
    """A request close to what a grant of the model allows, so that every branch is reached."""
    if not model.grants:
        return draw(requests)
    grant = draw(st.sampled_from(list(model.grants)))
    rule = draw(st.sampled_from(model.roles[grant.role].rules))
    matching = [a for a in REQUEST_ACTIONS if any(names(p, a) for p in rule.actions)]
    address = draw(optional(st.none(), st.integers(0, 45)))
    inside = draw(st.booleans())
    if rule.scope.ranges and inside:
        low, high = draw(st.sampled_from(rule.scope.ranges))
        address = draw(st.integers(max(low - 1, 0), high + 1))
    zones: list[str | None] = [z for z in (grant.zone, rule.scope.zone) if z] or [None, *ZONES]
    return Request(
        subject=grant.subject,
        action=draw(st.sampled_from(matching or list(REQUEST_ACTIONS))),
        site=grant.site if draw(st.integers(0, 9)) else draw(st.sampled_from(SITES)),
        zone=draw(st.sampled_from(zones)),
        asset=rule.scope.asset
        if rule.scope.asset and draw(st.integers(0, 4))
        else draw(st.sampled_from((None, *ASSETS))),
        address=address,
        now=draw(st.sampled_from(MOMENTS)),
        training_current=draw(st.booleans()),
        approval_given=draw(st.booleans()),
        quantity=draw(st.sampled_from((1, 1, 1, 2, 3))),
    )


@settings(max_examples=200, deadline=None)
@given(
    model=models(),
    data=st.data(),
    quarantined=st.sets(st.sampled_from(SUBJECTS), max_size=1),
    assets=st.sets(st.tuples(st.sampled_from(SITES), st.sampled_from(ASSETS)), max_size=1),
)
def test_the_snapshot_decides_as_the_reference(
    model: PolicyModel,
    data: st.DataObject,
    quarantined: set[Subject],
    assets: set[tuple[str, str]],
) -> None:
    snapshot = compile_policy(model)
    reference = ReferencePolicy(model)
    overlay = DenyOverlay()
    for subject in quarantined:
        overlay.quarantine_subject(subject, "test")
    for site, asset in assets:
        overlay.quarantine_asset(site, asset, "test")
    batch = data.draw(
        st.lists(st.one_of(requests, aimed_requests(model), aimed_requests(model)), max_size=30)
    )
    for request in batch:
        decision = snapshot.decide(request, overlay)
        assert (decision.allowed, decision.rule) == reference.decide(request, quarantined, assets), request
        assert decision.reason
        plain = snapshot.decide(request)
        assert (plain.allowed, plain.rule) == reference.decide(request), request


@settings(max_examples=200, deadline=None)
@given(pattern=st.sampled_from(RULE_ACTIONS), candidate=st.sampled_from(REQUEST_ACTIONS))
def test_pattern_matching_agrees_with_the_reference(pattern: str, candidate: str) -> None:
    assert action_matches(pattern, candidate) == names(pattern, candidate)
