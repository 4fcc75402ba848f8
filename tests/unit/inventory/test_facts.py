"""Facts keep every value with its source, confidence and time; the current value is chosen by rule."""

from __future__ import annotations

from plantwarden.inventory import Fact
from plantwarden.inventory.facts import FactTable


def table(*facts: Fact) -> FactTable:
    result = FactTable()
    for fact in facts:
        result.record("firmware", fact)
    return result


def test_the_same_value_again_widens_its_times_and_keeps_the_surest_source() -> None:
    facts = table(Fact("1.0", "modbus_43_14", 0.6, 20, 20), Fact("1.0", "s7_szl", 0.9, 10, 10))
    assert facts.current() == {"firmware": Fact("1.0", "s7_szl", 0.9, 10, 20)}
    assert facts.history() == {}


def test_a_more_confident_value_is_current_and_the_other_is_history() -> None:
    surer, weaker = Fact("2.1", "cip_identity", 0.9, 10, 10), Fact("2.0", "banner", 0.5, 30, 30)
    for order in ((surer, weaker), (weaker, surer)):
        facts = table(*order)
        assert facts.current() == {"firmware": surer}
        assert facts.history() == {"firmware": (weaker,)}


def test_among_equally_sure_values_the_latest_is_current() -> None:
    old, new = Fact("1.4.2", "modbus_43_14", 0.9, 10, 20), Fact("1.5.0", "modbus_43_14", 0.9, 30, 30)
    facts = table(new, old)
    assert facts.current_value("firmware") == "1.5.0"
    assert facts.history() == {"firmware": (old,)}


def test_absorbing_a_table_gives_what_recording_its_facts_gives() -> None:
    one, two = table(Fact("1", "a", 0.5, 1, 1)), table(Fact("2", "b", 0.7, 2, 2), Fact("1", "c", 0.8, 3, 3))
    one.absorb(two)
    assert one.current() == {"firmware": Fact("1", "c", 0.8, 1, 3)}
    assert one.history() == {"firmware": (Fact("2", "b", 0.7, 2, 2),)}
