"""The sim CLI's gateway, endpoint and unit-id options, and the control socket's gateway value."""

from __future__ import annotations

import click
import pytest

from plantwarden.core.errors import InvalidInput
from plantwarden.sim.cli import _endpoint, _gateway_of, _unit_ids

OWN = ("127.10.1.60", 5020)


def test_an_attack_names_no_gateway_the_plants_own_or_host_and_port() -> None:
    assert _gateway_of(None, OWN) is None and _gateway_of(False, OWN) is None
    assert _gateway_of(True, OWN) == OWN
    assert _gateway_of(["10.0.0.1", 502], None) == ("10.0.0.1", 502)
    with pytest.raises(InvalidInput, match="runs without a gateway"):
        _gateway_of(True, None)


@pytest.mark.parametrize(
    "asked",
    [["127.0.0.1", True], ["h", 70000], ["h", 0], ["h", -5], [None, 502], ["", 502], [["x"], 502],
     ["h", "502"], ["h"], "127.0.0.1:502", 1],
)  # fmt: skip
def test_a_malformed_gateway_is_refused(asked: object) -> None:
    with pytest.raises(InvalidInput, match="is not true or"):
        _gateway_of(asked, OWN)


def test_unit_ids_are_plc_equals_ascii_digits() -> None:
    assert _unit_ids(("tank-1=11", "boiler-1=6")) == {"tank-1": 11, "boiler-1": 6}
    for bad in ("tank-1", "=3", "tank-1=x", "tank-1=³", "tank-1=-1"):
        with pytest.raises(click.BadParameter, match="is not PLC=N"):
            _unit_ids((bad,))


def test_an_endpoint_is_host_and_an_ascii_port_or_off() -> None:
    assert _endpoint(None, None, "127.0.0.1:1883") == ("127.0.0.1", 1883)  # type: ignore[arg-type]
    assert _endpoint(None, None, "[::1]:502") == ("::1", 502)  # type: ignore[arg-type]
    assert _endpoint(None, None, "off") is None  # type: ignore[arg-type]
    for bad in ("h:²", "h:١٢", "h:0", "h:65536", "h:", ":502", "h"):
        with pytest.raises(click.BadParameter, match="is not HOST:PORT"):
            _endpoint(None, None, bad)  # type: ignore[arg-type]
