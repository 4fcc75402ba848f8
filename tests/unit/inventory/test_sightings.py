"""A sighting is checked and made canonical when it is built: bad input raises InvalidSighting."""

from __future__ import annotations

import pytest

from plantwarden.core.errors import InvalidInput
from plantwarden.inventory import Binding, InvalidSighting, Sighting
from tests.unit.inventory.support import arp, make, sighting


def test_addresses_come_out_canonical() -> None:
    seen = arp(1, "2001:DB8:0:0::1", "02:AB:CD:00:00:01")
    assert (seen.ip, seen.mac) == ("2001:db8::1", "02:ab:cd:00:00:01")


@pytest.mark.parametrize(
    "ip", ["10.0.0.256", "10.0.0", "010.0.0.1", "fe80::zz", "host-1", "0.0.0.0", "224.0.0.1"]
)
def test_a_malformed_or_non_host_ip_is_refused(ip: str) -> None:
    with pytest.raises(InvalidSighting, match="address"):
        sighting(1, "flow", ip=ip)


@pytest.mark.parametrize(
    "mac", ["02:00:00:00:00", "02-00-00-00-00-01", "0200.0000.0001", "02:00:00:00:00:0g"]
)
def test_a_malformed_mac_is_refused(mac: str) -> None:
    with pytest.raises(InvalidSighting, match="not a MAC address"):
        sighting(1, "lldp", mac=mac)


@pytest.mark.parametrize("mac", ["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01"])
def test_a_group_mac_names_no_station(mac: str) -> None:
    with pytest.raises(InvalidSighting, match="group MAC"):
        sighting(1, "lldp", mac=mac)


def test_invalid_sighting_is_the_core_invalid_input() -> None:
    with pytest.raises(InvalidInput) as raised:
        sighting(1, "flow", ip="nope")
    assert raised.value.code == "invalid_sighting"
    assert raised.value.details == {"ip": "nope"}


@pytest.mark.parametrize("confidence", [-0.1, 1.5, float("nan"), True])
def test_confidence_is_a_number_within_0_and_1(confidence: float) -> None:
    with pytest.raises(InvalidSighting, match="confidence"):
        sighting(1, "flow", ip="10.0.0.1", confidence=confidence)


@pytest.mark.parametrize("ts_ns", [-1, 1.5, True])
def test_the_time_is_non_negative_integer_nanoseconds(ts_ns: int) -> None:
    with pytest.raises(InvalidSighting, match="ts_ns"):
        Sighting(ts_ns=ts_ns, site="s", segment="g", source="flow", confidence=1.0, ip="10.0.0.1")


def test_a_binding_needs_both_addresses_and_a_sighting_needs_one() -> None:
    with pytest.raises(InvalidSighting, match="needs both"):
        sighting(1, "arp", ip="10.0.0.1", binding=Binding.AUTHORITATIVE)
    with pytest.raises(InvalidSighting, match="an IP or a MAC"):
        sighting(1, "flow")
    with pytest.raises(InvalidSighting, match="binding"):
        fields = {
            "ts_ns": 1,
            "site": "s",
            "segment": "g",
            "source": "arp",
            "confidence": 1.0,
            "ip": "10.0.0.1",
        }
        Sighting(**fields, binding="strong")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("site", "", "needs a site"), ("segment", "", "needs a segment"), ("source", "ARP", "lower-case word")],
)
def test_site_segment_and_source_are_checked(field: str, value: str, message: str) -> None:
    fields = {"ts_ns": 1, "site": "s", "segment": "g", "source": "arp", "confidence": 1.0, "ip": "10.0.0.1"}
    with pytest.raises(InvalidSighting, match=message):
        Sighting(**{**fields, field: value})  # type: ignore[arg-type]


def test_attributes_are_non_empty_texts_and_read_only() -> None:
    with pytest.raises(InvalidSighting, match="leave a missing one out"):
        sighting(1, "dhcp", ip="10.0.0.1", hostname="")
    given = {"hostname": "hmi-1"}
    seen = make(1, "dhcp", "10.0.0.1", "", Binding.NONE, "cell-a", 0.9, given)
    given["hostname"] = "changed"
    assert seen.attributes == {"hostname": "hmi-1"}
    with pytest.raises(TypeError):
        seen.attributes["hostname"] = "x"  # type: ignore[index]
