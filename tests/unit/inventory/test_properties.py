"""Properties of the asset book over random sighting streams drawn from a small plant.

The pools are small on purpose, so that streams collide: shared MACs become routers, DHCP
moves addresses, identities merge interfaces.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from plantwarden.inventory import Asset, AssetBook, Binding, Sighting

SEGMENTS = ("cell-a", "cell-b")
IPS = tuple(f"10.0.0.{n}" for n in range(1, 7))
MACS = tuple(f"02:00:00:00:00:0{n}" for n in range(1, 6))
SOURCES = ("arp", "dhcp", "flow", "lldp", "cip_identity")
ATTRIBUTES = st.dictionaries(
    st.sampled_from(("vendor", "serial", "chassis_id", "firmware", "hostname")),
    st.sampled_from(("a", "b", "0")),
    max_size=3,
)


@st.composite
def sightings(draw: st.DrawFn) -> Sighting:
    binding = draw(st.sampled_from(tuple(Binding)))
    ip = draw(st.sampled_from(IPS)) if binding is not Binding.NONE or draw(st.booleans()) else ""
    mac = draw(st.sampled_from(MACS)) if binding is not Binding.NONE or not ip or draw(st.booleans()) else ""
    return Sighting(
        ts_ns=draw(st.integers(0, 50)),
        site="riverside",
        segment=draw(st.sampled_from(SEGMENTS)),
        source=draw(st.sampled_from(SOURCES)),
        confidence=draw(st.sampled_from((0.3, 0.6, 0.9))),
        ip=ip,
        mac=mac,
        binding=binding,
        attributes=draw(ATTRIBUTES),
    )


def identity_keys(asset: Asset) -> set[tuple[str, ...]]:
    value = {name: fact.value for name, fact in asset.facts.items()}.get
    pairs = [("chassis_id",), ("vendor", "serial")]
    return {
        tuple(value(n, "") for n in pair)
        for pair in pairs
        if all(value(n, "") not in ("", "0") for n in pair)
    }


streams = st.lists(sightings(), max_size=40)


def book_of(stream: list[Sighting], batch_sizes: list[int] | None = None) -> AssetBook:
    book = AssetBook(router_threshold=3)
    if batch_sizes is None:
        for sighting in stream:
            book.add(sighting)
        return book
    start = 0
    for size in [*batch_sizes, len(stream)]:
        book.add_many(iter(stream[start : start + size]))
        start += size
    return book


@settings(max_examples=300, deadline=None)
@given(streams, st.lists(st.integers(0, 8), max_size=10))
def test_batching_does_not_change_the_book(stream: list[Sighting], batch_sizes: list[int]) -> None:
    one_by_one, batched = book_of(stream), book_of(stream, batch_sizes)
    assert batched.assets() == one_by_one.assets()
    assert batched.router_macs() == one_by_one.router_macs()


@settings(max_examples=300, deadline=None)
@given(streams)
def test_the_book_keeps_its_invariants(stream: list[Sighting]) -> None:
    book = book_of(stream)
    assets = book.assets()
    holders = [(asset.site, address) for asset in assets for address in asset.ips]
    assert len(holders) == len(set(holders)), "an address is current on two assets"
    for asset in assets:
        assert not asset.ips & asset.past_ips
        assert asset.first_seen_ns <= asset.last_seen_ns and asset.sources
        for address in asset.ips:
            assert book.find(asset.site, address.segment, address.address) == asset
        for merged in asset.merged_ids:
            assert book.get(merged) == asset
    for router in book.router_macs():
        carriers = [asset for asset in assets if (router.segment, router.mac) in asset.macs]
        assert len(carriers) == 1, "a router MAC is on a host, or the router has no asset"
    stated = {(s.segment, s.mac) for s in stream if s.binding is Binding.AUTHORITATIVE}
    for mac in stated:
        carriers = [asset for asset in assets if mac in asset.macs]
        assert len(carriers) == 1, "a MAC a device stated with its IP is on another asset, or on none"
    for asset in assets:
        assert not asset.carried_ips & (asset.ips | asset.past_ips), "its own address counted as carried"
    identities = [key for asset in assets for key in identity_keys(asset)]
    assert len(identities) == len(set(identities)), "two assets share a strong identity"
    seen = {(s.segment, s.ip) for s in stream if s.ip}
    assert seen <= {(a.segment, a.address) for asset in assets for a in asset.ips | asset.past_ips}
