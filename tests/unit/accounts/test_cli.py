from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from plantwarden.accounts import services
from plantwarden.accounts.cli import token_group, user_group
from plantwarden.accounts.errors import InvalidTokenRequest, LastUserManager
from plantwarden.accounts.settings import AccountsSettings
from plantwarden.cli.catalog import SECTIONS
from plantwarden.core.clock import FixedClock
from plantwarden.core.errors import InvalidInput
from plantwarden.core.runtime import Runtime
from plantwarden.core.settings import load_settings
from tests.unit.accounts.conftest import GOOD_PASSWORD


class Provider:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def runtime(self) -> Runtime:
        return self._runtime


@pytest.fixture
def provider(data_dir: Path, clock: FixedClock) -> Iterator[Provider]:
    sections = SECTIONS if AccountsSettings in SECTIONS else (*SECTIONS, AccountsSettings)
    settings = load_settings(
        sections,
        environ={},
        cwd=data_dir,
        overrides={
            "data_dir": str(data_dir),
            "accounts.password_memory_kib": "1024",
            "accounts.password_time_cost": "1",
        },
    )
    runtime = Runtime(settings, clock)
    yield Provider(runtime)
    runtime.close()


def run(provider: Provider, group: click.Group, *args: str) -> str:
    result = CliRunner().invoke(group, list(args), obj=provider, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_add_a_first_admin_and_manage_users(provider: Provider) -> None:
    out = run(
        provider, user_group, "add", "ada", "--display-name", "Ada L.", "--role", "admin", "--site", "plant-a"
    )
    assert "added user ada (admin at plant-a)" in out
    match = re.search(r"one-time password \(shown once\): (\S+)", out)
    assert match is not None
    one_time = match.group(1)
    runtime = provider.runtime()
    ctx = runtime.context()
    with runtime.ready_store().transaction() as session:
        result = services.login(
            session, ctx, "ada", one_time, "127.0.0.1", settings=runtime.settings[AccountsSettings]
        )
        assert (result.needs_password_change, result.needs_mfa_enrollment) == (True, True)
        assert services.get_user_by_name(session, "ada").display_name == "Ada L."
    run(provider, user_group, "grant", "ada", "--role", "viewer", "--site", "plant-b", "--zone", "cell-1")
    listing = run(provider, user_group, "list")
    assert listing.startswith("ada\tAda L.\tpassword due, no mfa\tlast login 2026-11-26 08:00\t")
    assert "admin@plant-a" in listing and "viewer@plant-b/cell-1" in listing
    run(provider, user_group, "revoke", "ada", "--role", "viewer", "--site", "plant-b", "--zone", "cell-1")
    assert "viewer" not in run(provider, user_group, "list")
    run(provider, user_group, "add", "abe", "--role", "admin", "--site", "plant-a")  # ada is not the last
    assert "disabled ada" in run(provider, user_group, "disable", "ada")
    assert "disabled" in run(provider, user_group, "list")
    assert "enabled ada" in run(provider, user_group, "enable", "ada")
    assert "unlocked ada" in run(provider, user_group, "unlock", "ada", "--source", "10.0.0.5")
    assert "second factor of ada removed" in run(provider, user_group, "reset-mfa", "ada")


@pytest.mark.parametrize(
    ("display_name", "problem"),
    [
        ("A" * 199 + "BC", "the display name has 201 characters; at most 200"),
        ("Ada\nmallory\tadmin@plant-a", "holds a line break, a tab or another control or format character"),
        ("Ada\tL.", "holds a line break"),
        ("Ada \u202eL.", "holds a line break"),
    ],
)
def test_a_display_name_that_would_be_cut_or_break_the_user_list_is_refused(
    provider: Provider, display_name: str, problem: str
) -> None:
    refused = CliRunner().invoke(user_group, ["add", "ada", "--display-name", display_name], obj=provider)
    assert isinstance(refused.exception, InvalidInput), refused.output
    assert problem in refused.exception.message
    assert run(provider, user_group, "list").startswith("no users yet")


def test_the_longest_display_name_is_kept_whole_on_one_line(provider: Provider) -> None:
    name = "Ada Lovelace, Leitwarte Halle 3 " + "x" * 167 + "y"
    run(provider, user_group, "add", "ada", "--display-name", f"  {name} ")
    (line,) = run(provider, user_group, "list").splitlines()
    assert line.startswith(f"ada\t{name}\tpassword due")


def test_a_token_name_that_would_break_the_token_list_is_refused(provider: Provider) -> None:
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        services.create_user(session, runtime.context(), "alice", password=GOOD_PASSWORD)
    for name, problem in [
        ("exporter\nfake\tline", "the token name 'exporter\\nfake\\tline' holds a line break, a tab or"),
        ("exporter\x1b[2K", "the token name 'exporter\\x1b[2K' holds a line break, a tab or another control"),
        ("x" * 121, "the token name has 121 characters; at most 120"),
        (" ", "a token needs a name"),
    ]:
        args = ["create", "--user", "alice", "--name", name, "--expires-days", "3"]
        refused = CliRunner().invoke(token_group, args, obj=provider)
        assert isinstance(refused.exception, InvalidTokenRequest), refused.output
        assert refused.exception.message.startswith(problem), refused.exception.message
        assert refused.exception.code == "invalid_token_request"  # as the token's other refusals
    assert run(provider, token_group, "list") == "no tokens\n"
    args = ["create", "--user", "alice", "--name", f"  {'x' * 120} ", "--expires-days", "3"]
    run(provider, token_group, *args)
    assert f"\t{'x' * 120}\t" in run(provider, token_group, "list")  # kept whole, without its end spaces


def test_role_needs_a_site(provider: Provider) -> None:
    result = CliRunner().invoke(user_group, ["add", "ada", "--role", "admin"], obj=provider)
    assert result.exit_code == 2 and "--role and --site go together" in result.output


def test_tokens_from_the_command_line(provider: Provider) -> None:
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        services.create_user(session, runtime.context(), "alice", password=GOOD_PASSWORD)
    assert run(provider, token_group, "list") == "no tokens\n"
    out = run(
        provider,
        token_group,
        "create",
        "--user",
        "alice",
        "--name",
        "exporter",
        "--scope",
        "platform:alerts.read",
        "--expires-days",
        "30",
    )
    match = re.search(r"token \(shown once\): (pwt_\S+)", out)
    assert match is not None
    plaintext = match.group(1)
    with runtime.ready_store().transaction() as session:
        user, token = services.authenticate_token(session, runtime.context(), plaintext)
    assert user.username == "alice" and token.scopes == ["platform:alerts.read"]
    listing = run(provider, token_group, "list", "--user", "alice")
    assert token.prefix in listing and "expires 2026-12-26" in listing and plaintext not in listing
    assert f"revoked token {token.id}" in run(provider, token_group, "revoke", str(token.id))
    assert "\trevoked\t" in run(provider, token_group, "list")


def test_the_last_admin_of_a_site_is_kept_unless_forced(provider: Provider) -> None:
    run(provider, user_group, "add", "ada", "--role", "admin", "--site", "plant-a")
    for command in (("revoke", "ada", "--role", "admin", "--site", "plant-a"), ("disable", "ada")):
        refused = CliRunner().invoke(user_group, list(command), obj=provider)
        assert isinstance(refused.exception, LastUserManager), refused.output
        assert "would leave site plant-a with no active user who manages users" in refused.exception.message
    assert "admin@plant-a" in run(provider, user_group, "list")
    out = run(provider, user_group, "revoke", "ada", "--role", "admin", "--site", "plant-a", "--force")
    assert "revoked admin at plant-a from ada" in out
    with provider.runtime().ready_store().transaction() as session:
        assert services.list_grants(session, "ada") == []
        assert services.user_managers(session, ["plant-a"]) == []
