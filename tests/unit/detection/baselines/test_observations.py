"""A batch's observations read as a list, and the learner's walk that builds none for the plain
facts it already knows: both must give what one observation at a time gives."""

from __future__ import annotations

from plantwarden.detection.baselines.facts import FactKey, FactKind, Observation, Observations, observe
from plantwarden.detection.baselines.learner import Baseline
from plantwarden.detection.baselines.scoping import Scoper
from tests.unit.detection.baselines.batches import SECOND, polls, records, write
from tests.unit.detection.plant_models import SITE, WEDNESDAY_NOON, plant_site


def described(found: list[Observation]) -> list[tuple[object, ...]]:
    return [(o.key, o.value, o.first_ns, o.last_ns, o.count, o.server, o.client, o.row) for o in found]


def test_observations_read_as_a_list_hold_every_fact_in_order() -> None:
    batch = records([{}, {"dst": "10.2.0.11"}, write()])
    found = observe(batch)
    assert isinstance(found, Observations)
    assert len(found) == len(list(found)) == 12
    assert [o.key.kind for o in found[:3]] == [FactKind.ASSET] * 3
    assert found[3].key.kind is FactKind.EDGE and found[-1].key.kind is FactKind.POLLING
    assert described(found) == described(list(observe(batch)))
    assert found == list(found) and found != []
    assert {o.key.text for o in found if o.key.kind is FactKind.ASSET} == {
        "10.1.0.5",
        "10.2.0.10",
        "10.2.0.11",
    }


def test_an_empty_batch_has_no_observations() -> None:
    found = observe(records([{}]).take(slice(0, 0)))
    assert len(found) == 0 and list(found) == [] and not found


def test_the_learner_gives_the_same_from_observations_as_from_a_plain_list() -> None:
    """Learn, then check new and known facts, once through `Observations` (the plain facts known
    are only counted) and once through a list of every observation."""
    learn = [records([{}, {"dst": "10.2.0.11"}, write()]), polls(6, 2, start=WEDNESDAY_NOON + SECOND)]
    check = [
        records([{}, {"function": 4}, {"dst": "10.2.0.12"}, write(value=90)]),
        polls(6, 9, start=WEDNESDAY_NOON + 100 * SECOND),
    ]
    results = []
    for as_list in (False, True):
        baseline, scoper = Baseline(), Scoper([plant_site()])
        found: list[tuple[FactKey, tuple[object, ...]]] = []
        for step, batch in enumerate([*learn, *check]):
            if step == len(learn):
                baseline.protect(SITE)
            seen = observe(batch)
            for d in baseline.observe(list(seen) if as_list else seen, scoper):
                found.append((d.key, (d.learned, d.observed, d.count, d.reason, d.scopes, d.row)))
        facts = {
            k: (f.value, f.first_ns, f.last_ns, f.count, f.unsaved, f.scope)
            for k, f in baseline.facts.items()
        }
        results.append((found, facts))
    assert results[0] == results[1]
    deviations, facts = results[0]
    assert {key.kind for key, _ in deviations} >= {
        FactKind.ASSET,
        FactKind.EDGE,
        FactKind.SERVICE,
        FactKind.SETPOINT,
    }
    asset = next(f for k, f in facts.items() if k.kind is FactKind.ASSET and k.parts == ("10.1.0.5",))
    assert asset[3] == asset[4] > 3  # the known asset kept counting its records
