"""The first administrator's one-time password leads only to setting a password and enrolling
the second factor; then the console opens."""

from __future__ import annotations

import re
from pathlib import Path

from plantwarden.accounts import services as accounts
from plantwarden.accounts import totp
from plantwarden.zones import services as zones
from tests.web_support import CTX, server


def form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found[1]


def test_one_time_password_to_password_to_authenticator_to_console(data_dir: Path) -> None:
    for made in server(data_dir):
        with made.store.transaction() as session:
            zones.create_site(session, CTX, "plant-a", "Plant A")
            _, one_time = accounts.create_user(session, CTX, "alice")
            accounts.grant_role(session, CTX, "alice", "admin", "plant-a")
        client = made.client
        login = client.get("/login")
        response = client.post(
            "/login",
            data={"username": "alice", "password": one_time, "csrf_token": form_token(login.text)},
            follow_redirects=False,
        )
        assert (response.status_code, response.headers["location"]) == (303, "/account/password")
        for blocked in ("/", "/alerts"):
            detour = client.get(blocked, follow_redirects=False)
            assert (detour.status_code, detour.headers["location"]) == (303, "/account/password"), blocked
        assert client.get("/api/v1/users").status_code == 403  # the API says why instead
        assert client.get("/api/v1/users").json()["error"]["code"] == "account_setup_required"

        page = client.get("/account/password")
        weak = client.post(
            "/account/password",
            data={
                "new_password": "alice12345678",
                "repeat": "alice12345678",
                "csrf_token": form_token(page.text),
            },
        )
        assert weak.status_code == 422 and "user name" in weak.text
        done = client.post(
            "/account/password",
            data={
                "new_password": "a long and quiet valve",
                "repeat": "a long and quiet valve",
                "csrf_token": form_token(page.text),
            },
            follow_redirects=False,
        )
        assert (done.status_code, done.headers["location"]) == (303, "/account/mfa")
        assert client.get("/", follow_redirects=False).headers["location"] == "/account/mfa"

        enrol = client.get("/account/mfa")
        secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', enrol.text)
        assert secret is not None
        code = totp.code_at(totp.secret_from_base32(secret[1]), CTX.clock.now())
        confirmed = client.post("/account/mfa", data={"code": code, "csrf_token": form_token(enrol.text)})
        assert confirmed.status_code == 200 and len(re.findall(r"<li><code>", confirmed.text)) == 10
        console = client.get("/")
        assert console.status_code == 200 and "<h1>Overview</h1>" in console.text
