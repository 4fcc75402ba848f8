"""The console's Exercises page with real requests when no simulated plant runs with the server's
data directory: it says so, names the command that runs one, and says that a demo's plant may
answer a few seconds after the console (the page is then to be reloaded); it lists no scenario."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.web_support import server


@pytest.fixture
def analyst(tmp_path: Path) -> Iterator[TestClient]:
    for made in server(tmp_path):
        made.user("sam", "security_analyst")
        with TestClient(made.client.app, base_url="http://testserver") as client:
            made.login(client, "sam")
            yield client


def test_without_a_plant_the_page_says_how_to_run_one_and_to_reload_while_it_starts(
    analyst: TestClient,
) -> None:
    page = analyst.get("/exercises")
    assert page.status_code == 200
    text = page.text
    assert "No simulated plant runs with this server&#39;s data directory" in text, text
    assert "`plantwarden demo` runs one" in text
    assert "reload this page" in text
    assert 'id="launch-' not in text  # no scenario to launch
