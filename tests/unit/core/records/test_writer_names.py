"""The writer names of per-site processes (the gateway, the device ingest, the MQTT subscriber): a
site's own name where it fits, and two sites never share a writer (their partitions would mix)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.core.records.partitions import WRITER_NAME, writer_name_of

SITE_IDS = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
"""Site ids as plant.yaml and the telemetry commands take them."""
PREFIXES = ("gateway", "devices", "mqtt")


@pytest.mark.parametrize(
    ("prefix", "site", "name"),
    [
        ("gateway", "plant-a", "gateway-plant-a"),
        ("devices", "riverside", "devices-riverside"),
        ("mqtt", "x" * 58, "mqtt-" + "x" * 58),  # 63 characters: still whole
    ],
)
def test_a_site_whose_name_fits_keeps_it(prefix: str, site: str, name: str) -> None:
    assert writer_name_of(prefix, site) == name


def test_long_sites_alike_at_the_start_get_two_writers() -> None:
    first, second = "x" * 55 + "-one", "x" * 55 + "-two"  # "devices-" + 55: one writer, were they cut
    names = {writer_name_of("devices", site) for site in (first, second)}
    assert len(names) == 2 and all(WRITER_NAME.match(n) and n.startswith("devices-xxx") for n in names)


def test_a_cut_before_a_hyphen_still_makes_a_writer_name() -> None:
    site = "a" * 54 + "-" + "b" * 8  # "devices-" + 54 letters + "-": a cut at 63 ended on the hyphen
    name = writer_name_of("devices", site)
    assert WRITER_NAME.match(name) and len(name) == 63


def test_names_other_commands_allow_are_made_writer_names_apart() -> None:
    names = {writer_name_of("gateway", site) for site in ("Plant_A.1", "plant-a-1", "plant.a.1")}
    assert len(names) == 3 and "gateway-plant-a-1" in names and all(WRITER_NAME.match(n) for n in names)


@settings(max_examples=300, deadline=None)
@given(st.lists(SITE_IDS, min_size=2, max_size=2, unique=True), st.sampled_from(PREFIXES))
def test_every_site_id_gets_a_writer_name_of_its_own(sites: list[str], prefix: str) -> None:
    first, second = (writer_name_of(prefix, site) for site in sites)
    assert WRITER_NAME.match(first) and WRITER_NAME.match(second)
    assert first != second
