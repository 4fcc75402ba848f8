from __future__ import annotations

from pathlib import Path

import pytest

from plantwarden.cli.serve import process_table
from plantwarden.core.errors import InvalidInput
from tests.conftest import make_settings


def test_up_runs_the_server_the_watchdog_and_the_relay_only_when_asked(tmp_path: Path) -> None:
    plain = process_table(make_settings(tmp_path), {"PLANTWARDEN_DATA_DIR": str(tmp_path)})
    assert [p.name for p in plain] == ["server", "watchdog", "pki-expiry"]
    assert plain[2].argv[-4:] == ["pki", "check-expiry", "--every", "6h"]
    assert plain[1].argv[-2:] == ["sensor", "watch"]
    assert plain[0].argv[-1] == "serve" and plain[0].env == {"PLANTWARDEN_DATA_DIR": str(tmp_path)}
    with_relay = process_table(make_settings(tmp_path, **{"nats.relay": "true"}), {})
    assert [p.name for p in with_relay] == ["server", "watchdog", "pki-expiry", "relay"]
    assert with_relay[3].argv[-2:] == ["events", "relay"]


def test_up_runs_the_notifier_when_a_target_is_configured(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, **{"notify.webhook_url": "http://127.0.0.1:9/hook", "notify.webhook_secret": "s" * 32}
    )
    names = [p.name for p in process_table(settings, {})]
    assert names == ["server", "watchdog", "pki-expiry", "notify"]


def test_up_runs_the_gateway_when_its_plant_site_and_a_listener_are_set(tmp_path: Path) -> None:
    for half, missing in [
        (
            {"gateway.plant": "plant.yaml", "gateway.site": "plant-a"},
            "only with gateway.listen or gateway.mbaps",
        ),
        ({"gateway.listen": "0.0.0.0:502"}, "only with gateway.plant and gateway.site too"),
        ({"gateway.site": "plant-a", "gateway.mbaps": "0.0.0.0:802"}, "only with gateway.plant too"),
    ]:  # it ran no gateway, without a word
        with pytest.raises(InvalidInput, match=missing):
            process_table(make_settings(tmp_path, **half), {})
    settings = make_settings(
        tmp_path, **{"gateway.plant": "plant.yaml", "gateway.site": "plant-a", "gateway.mbaps": "0.0.0.0:802"}
    )
    (gateway,) = [p for p in process_table(settings, {}) if p.name == "gateway"]
    assert gateway.argv[-8:] == [
        "gateway",
        "run",
        "--plant",
        "plant.yaml",
        "--site",
        "plant-a",
        "--mbaps",
        "0.0.0.0:802",
    ]


def test_up_gives_the_gateway_its_connections_and_busy_polling(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        **{
            "gateway.plant": "plant.yaml",
            "gateway.site": "plant-a",
            "gateway.listen": "0.0.0.0:502",
            "gateway.plc_connections": "8",
            "gateway.busy_poll": "200",
        },
    )
    (gateway,) = [p for p in process_table(settings, {}) if p.name == "gateway"]
    assert gateway.argv[-4:] == ["--plc-connections", "8", "--busy-poll", "200"]


def test_up_refuses_gateway_settings_out_of_range(tmp_path: Path) -> None:
    base = {"gateway.plant": "plant.yaml", "gateway.site": "plant-a", "gateway.listen": "0.0.0.0:502"}
    for key, value in (("gateway.plc_connections", "0"), ("gateway.busy_poll", "20000")):
        with pytest.raises(InvalidInput, match=r"gateway\.plc_connections must be"):
            process_table(make_settings(tmp_path, **base, **{key: value}), {})
