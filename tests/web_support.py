"""Helpers for tests of the server: users of each role, tokens, logged-in console sessions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from plantwarden.accounts import services as accounts
from plantwarden.accounts import totp
from plantwarden.core import migrate
from plantwarden.core.config import CoreSettings
from plantwarden.core.context import Context
from plantwarden.core.db import Store
from plantwarden.core.settings import Settings
from plantwarden.web.app import create_app
from tests.conftest import make_settings

PASSWORD = "correct horse battery staple"
FAST_HASHING = {"accounts.password_time_cost": "1", "accounts.password_memory_kib": "1024"}
CTX = Context(source="test", actor="test")


def web_settings(data_dir: Path, **overrides: str) -> Settings:
    """Settings of a test server: defaults, a temporary data directory, cheap password hashing, and
    live-update streams that end at once (a test client reads a response to its end)."""
    return make_settings(data_dir, **{**FAST_HASHING, "server.live_seconds": "0", **overrides})


@dataclass
class Server:
    """A test server around a real store, with users made as the tests need them."""

    settings: Settings
    store: Store
    client: TestClient
    recovery_codes: dict[str, list[str]] = field(default_factory=dict)  # by user id: one per login

    def user(
        self, username: str, role: str | None = None, site: str = "plant-a", zone: str | None = None
    ) -> str:
        """A user with a password (and a grant of `role`); admins get their second factor."""
        with self.store.transaction() as session:
            user, _ = accounts.create_user(session, CTX, username, password=PASSWORD)
            if role is not None:
                accounts.grant_role(session, CTX, username, role, site, zone)
            user_id = user.id
        if role == "admin":
            self.enroll_mfa(user_id)
        return username

    def enroll_mfa(self, user_id: object) -> None:
        with self.store.transaction() as session:
            encoded, _ = accounts.enroll_totp(session, CTX, str(user_id))
            secret = totp.secret_from_base32(encoded)
            codes = accounts.confirm_totp(session, CTX, str(user_id), totp.code_at(secret, CTX.clock.now()))
            self.recovery_codes[str(user_id)] = list(codes)

    def token(self, username: str, scopes: tuple[str, ...] = ()) -> str:
        with self.store.transaction() as session:
            user = accounts.get_user_by_name(session, username)
            _, secret = accounts.create_token(session, CTX, user.id, "test", list(scopes), timedelta(days=1))
        return secret

    def login(self, client: TestClient, username: str) -> str:
        """Log `client` in through the console's form; returns the session's CSRF token."""
        page = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None, page.text
        form = {"username": username, "password": PASSWORD, "csrf_token": csrf[1]}
        with self.store.transaction() as session:
            user = accounts.get_user_by_name(session, username)
            codes = self.recovery_codes.get(str(user.id))
        if codes:
            form["totp"] = codes.pop()  # a TOTP code cannot be used twice: a recovery code per login
        response = client.post("/login", data=form, follow_redirects=False)
        assert response.status_code == 303, response.text
        return str(client.get("/api/v1/me").json()["csrf_token"])


def server(data_dir: Path, **overrides: str) -> Iterator[Server]:
    """A test server on `web_settings(data_dir, **overrides)` (`database_url=...` for PostgreSQL)."""
    settings = web_settings(data_dir, **overrides)
    store = Store.from_settings(settings[CoreSettings])
    migrate.ensure_ready(store)
    saved = (accounts._configured.settings, accounts._configured.secrets, accounts._configured.audit)
    app = create_app(settings, store)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Server(settings, store, client)
    accounts._configured.settings, accounts._configured.secrets, accounts._configured.audit = saved
    store.close()
