"""The telemetry routes with real requests: a telemetry source pushes, an analyst reads back,
a viewer is refused both, and a bad sample is named by its index."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from plantwarden.core.clock import SECOND_NS
from plantwarden.monitoring import telemetry_api
from tests.web_support import Server, server


@pytest.fixture
def running(data_dir: Path) -> Iterator[Server]:
    for made in server(data_dir):
        app = made.client.app
        assert isinstance(app, FastAPI)
        if not any(getattr(route, "path", None) == "/api/v1/telemetry" for route in app.routes):
            app.include_router(telemetry_api.router, prefix="/api/v1")  # until web/app.py mounts it
        for name, role in (
            ("source", "telemetry_source"),
            ("analyst", "security_analyst"),
            ("vera", "viewer"),
        ):
            made.user(name, role)
        yield made


def _auth(running: Server, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {running.token(user)}"}


def test_a_source_pushes_and_an_analyst_reads_the_same_values(running: Server) -> None:
    now = time.time_ns()
    samples = [
        {"ts": now - 2 * SECOND_NS, "device": "tank-1", "variable": "level", "value": 51.5},
        {"ts": "2026-11-26T07:00:00Z", "device": "tank-1", "variable": "level", "value": None},
        {"ts": now - SECOND_NS, "device": "boiler-1", "variable": "pressure", "value": 2.25, "quality": 3},
    ]
    pushed = running.client.post(
        "/api/v1/telemetry", json={"site": "plant-a", "samples": samples}, headers=_auth(running, "source")
    )
    assert pushed.status_code == 200, pushed.text
    assert pushed.json() == {"site": "plant-a", "accepted": 3}
    analyst = _auth(running, "analyst")
    read = running.client.get("/api/v1/telemetry", params={"site": "plant-a"}, headers=analyst).json()
    assert read["count"] == 3
    assert [(s["device"], s["value"], s["quality"]) for s in read["samples"]] == [
        ("boiler-1", 2.25, 3),
        ("tank-1", 51.5, 0),
        ("tank-1", None, 1),
    ]
    assert read["samples"][1]["ts_ns"] == now - 2 * SECOND_NS
    only = running.client.get(
        "/api/v1/telemetry",
        params={"site": "plant-a", "device": "tank-1", "since": "2026-11-26T07:00:01Z", "oldest_first": True},
        headers=analyst,
    ).json()
    assert [s["value"] for s in only["samples"]] == [51.5]


def test_a_bad_sample_is_named_and_nothing_is_stored(running: Server) -> None:
    source = _auth(running, "source")
    good = {"ts": time.time_ns(), "device": "tank-1", "variable": "level", "value": 1.0}
    refused = running.client.post(
        "/api/v1/telemetry",
        json={"site": "plant-a", "samples": [good, {**good, "value": "high"}]},
        headers=source,
    )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["message"] == "sample 1: value 'high' is not a number" and error["details"] == {"index": 1}
    too_many = running.client.post(
        "/api/v1/telemetry", json={"site": "plant-a", "samples": [good] * 5001}, headers=source
    )
    assert too_many.status_code == 422 and "at most 5000 samples" in too_many.json()["error"]["message"]
    bad_site = running.client.post(
        "/api/v1/telemetry", json={"site": "Plant A", "samples": [good]}, headers=source
    )
    assert bad_site.status_code == 422 and "not a site id" in bad_site.json()["error"]["message"]
    read = running.client.get(
        "/api/v1/telemetry", params={"site": "plant-a"}, headers=_auth(running, "analyst")
    )
    assert read.json()["count"] == 0


def test_roles_and_sites_are_enforced(running: Server) -> None:
    good = {"ts": time.time_ns(), "device": "tank-1", "variable": "level", "value": 1.0}
    body = {"site": "plant-a", "samples": [good]}
    viewer = _auth(running, "vera")
    assert running.client.post("/api/v1/telemetry", json=body, headers=viewer).status_code == 403
    assert (
        running.client.get("/api/v1/telemetry", params={"site": "plant-a"}, headers=viewer).status_code == 403
    )
    source = _auth(running, "source")
    assert (
        running.client.get("/api/v1/telemetry", params={"site": "plant-a"}, headers=source).status_code == 403
    )
    elsewhere = running.client.post("/api/v1/telemetry", json={**body, "site": "plant-b"}, headers=source)
    assert elsewhere.status_code == 403 and "at site plant-b" in elsewhere.json()["error"]["message"]
    analyst = _auth(running, "analyst")
    assert running.client.post("/api/v1/telemetry", json=body, headers=analyst).status_code == 403
    assert running.client.post("/api/v1/telemetry", json=body).status_code == 401
