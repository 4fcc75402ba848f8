"""`plantwarden user` and `plantwarden token`: accounts from the host's command line.

These commands are the break-glass path: whoever can run them on the host is trusted (they read
the store directly). Secrets (one-time passwords, tokens) are printed once and never again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from plantwarden.accounts import services
from plantwarden.accounts.settings import AccountsSettings
from plantwarden.core.cli_values import IntegerRange, actor_name
from plantwarden.core.context import host_actor
from plantwarden.core.runtime import Runtime, RuntimeProvider
from plantwarden.policy.roles import BUILTIN_ROLES

ROLES = sorted(BUILTIN_ROLES)


def _settings(runtime: Runtime) -> AccountsSettings:
    return runtime.settings[AccountsSettings]


by_option = click.option(
    "--by", "by", callback=actor_name, help="Who acts (recorded); default: host:<login name>."
)
force_option = click.option(
    "--force",
    is_flag=True,
    help="Even if this leaves a site with no active user who manages users (recorded as "
    "accounts.last_user_manager_removed); `user grant` on the host is then the way back.",
)


@click.group("user")
def user_group() -> None:
    """User accounts and their roles per site or zone."""


@user_group.command("add")
@click.argument("username")
@click.option(
    "--display-name",
    default="",
    help="The person's name, as shown in the console: at most 200 printable characters on one line.",
)
@click.option("--role", type=click.Choice(ROLES), help="Grant this role at once (needs --site).")
@click.option("--site", help="Site of the role.")
@click.option("--zone", help="Limit the role to this zone of the site.")
@by_option
@click.pass_obj
def add_user(
    provider: RuntimeProvider,
    username: str,
    display_name: str,
    role: str | None,
    site: str | None,
    zone: str | None,
    by: str | None,
) -> None:
    """Add a user with a one-time password (printed once). At the first login it leads only to
    setting a password, and to enrolling the second factor for admins."""
    if (role is None) != (site is None):
        raise click.UsageError("--role and --site go together")
    if zone is not None and role is None:
        raise click.UsageError("--zone needs --role and --site")
    runtime = provider.runtime()
    ctx = runtime.context(host_actor(by))
    with runtime.ready_store().transaction() as session:
        user, one_time = services.create_user(
            session, ctx, username, display_name, settings=_settings(runtime)
        )
        if role is not None and site is not None:
            services.grant_role(session, ctx, user.username, role, site, zone)
    click.echo(
        f"added user {user.username}" + (f" ({role} at {site}{'/' + zone if zone else ''})" if role else "")
    )
    click.echo(f"one-time password (shown once): {one_time}")


@user_group.command("list")
@click.pass_obj
def list_users(provider: RuntimeProvider) -> None:
    """List users, their state and their grants."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        users = services.list_users(session)
        if not users:
            click.echo("no users yet: add one with `plantwarden user add NAME --role admin --site SITE`")
            return
        now = runtime.clock.now()
        for user in users:
            state = []
            if user.disabled:
                state.append("disabled")
            if user.locked:
                state.append("locked")
            if user.needs_password_change:
                state.append("password due")
            state.append("mfa" if user.mfa_enabled else "no mfa")
            grants = ", ".join(
                f"{g.role}@{g.site}{'/' + g.zone if g.zone else ''}"
                + ("" if g.valid_at(now) else " (expired)")
                + (f" (until {g.valid_until:%Y-%m-%d %H:%M})" if g.valid_until and g.valid_at(now) else "")
                for g in user.grants
            )
            last = f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never"
            click.echo(
                f"{user.username}\t{user.display_name}\t{', '.join(state)}\tlast login {last}\t"
                f"{grants or 'no roles'}"
            )


@user_group.command("disable")
@click.argument("username")
@force_option
@by_option
@click.pass_obj
def disable_user(provider: RuntimeProvider, username: str, force: bool, by: str | None) -> None:
    """Disable a user: logins, sessions and tokens stop working. Refused when it would leave a
    site with no active user who manages users (grant admin to someone else first), unless --force."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        user = services.disable_user(session, runtime.context(host_actor(by)), username, force=force)
        click.echo(f"disabled {user.username}")


@user_group.command("enable")
@click.argument("username")
@by_option
@click.pass_obj
def enable_user(provider: RuntimeProvider, username: str, by: str | None) -> None:
    """Enable a disabled user again."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        user = services.enable_user(session, runtime.context(host_actor(by)), username)
        click.echo(f"enabled {user.username}")


@user_group.command("unlock")
@click.argument("username")
@click.option("--source", "sources", multiple=True, help="Also clear the throttle of this address.")
@by_option
@click.pass_obj
def unlock_user(provider: RuntimeProvider, username: str, sources: tuple[str, ...], by: str | None) -> None:
    """Clear a lockout, the failure count and the login throttle of a user (break glass)."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        user = services.unlock_user(session, runtime.context(host_actor(by)), username, sources)
        click.echo(f"unlocked {user.username}")


@user_group.command("reset-mfa")
@click.argument("username")
@by_option
@click.pass_obj
def reset_mfa(provider: RuntimeProvider, username: str, by: str | None) -> None:
    """Remove a user's second factor and recovery codes; they enroll again at the next login."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        user = services.reset_mfa(session, runtime.context(host_actor(by)), username)
        click.echo(f"second factor of {user.username} removed: they enroll again at the next login")


@user_group.command("grant")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--site", required=True)
@click.option("--zone", help="Limit the role to this zone of the site.")
@click.option("--valid-until", type=click.DateTime(), help="Last instant of the grant (UTC).")
@by_option
@click.pass_obj
def grant(
    provider: RuntimeProvider,
    username: str,
    role: str,
    site: str,
    zone: str | None,
    valid_until: datetime | None,
    by: str | None,
) -> None:
    """Grant a role to a user at a site (or one zone of it)."""
    runtime = provider.runtime()
    until = valid_until.replace(tzinfo=UTC) if valid_until else None
    with runtime.ready_store().transaction() as session:
        granted = services.grant_role(
            session, runtime.context(host_actor(by)), username, role, site, zone, until
        )
        click.echo(f"granted {granted.role} at {site}{'/' + zone if zone else ''} to {username}")


@user_group.command("revoke")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--site", required=True)
@click.option("--zone")
@force_option
@by_option
@click.pass_obj
def revoke(
    provider: RuntimeProvider,
    username: str,
    role: str,
    site: str,
    zone: str | None,
    force: bool,
    by: str | None,
) -> None:
    """Revoke a role grant. Refused when it would leave the site with no active user who manages
    users (grant admin to someone else first), unless --force."""
    runtime = provider.runtime()
    ctx = runtime.context(host_actor(by))
    with runtime.ready_store().transaction() as session:
        services.revoke_grant(session, ctx, username, role, site, zone, force=force)
        click.echo(f"revoked {role} at {site}{'/' + zone if zone else ''} from {username}")


@click.group("token")
def token_group() -> None:
    """API bearer tokens."""


@token_group.command("create")
@click.option("--user", "username", required=True, help="Whose rights the token carries.")
@click.option("--name", required=True, help="What the token is for: 1-120 printable characters on one line.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="A platform action the token may use (repeatable); none: all of the user's rights.",
)
@click.option("--expires-days", type=IntegerRange(min=1), required=True, help="Lifetime in days.")
@by_option
@click.pass_obj
def create_token(
    provider: RuntimeProvider,
    username: str,
    name: str,
    scopes: tuple[str, ...],
    expires_days: int,
    by: str | None,
) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        user = services.get_user_by_name(session, username)
        token, plaintext = services.create_token(
            session,
            runtime.context(host_actor(by)),
            user.id,
            name,
            scopes,
            timedelta(days=expires_days),
            settings=_settings(runtime),
        )
        click.echo(
            f"created token {token.id} ({token.prefix}) for {user.username}, "
            f"expires {token.expires_at:%Y-%m-%d}"
        )
    click.echo(f"token (shown once): {plaintext}")


@token_group.command("list")
@click.option("--user", "username", help="Only this user's tokens.")
@click.pass_obj
def list_tokens(provider: RuntimeProvider, username: str | None) -> None:
    """List tokens (never their secrets)."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        user_id = services.get_user_by_name(session, username).id if username else None
        tokens = services.list_tokens(session, user_id)
        if not tokens:
            click.echo("no tokens")
            return
        now = runtime.clock.now()
        for token in tokens:
            if token.revoked_at is not None:
                state = "revoked"
            elif token.expires_at <= now:
                state = "expired"
            else:
                state = f"expires {token.expires_at:%Y-%m-%d}"
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            click.echo(
                f"{token.id}\t{token.prefix}\t{token.user.username}\t{token.name}\t{state}\t"
                f"used {used}\t{', '.join(token.scopes) or 'all rights'}"
            )


@token_group.command("revoke")
@click.argument("token_id")
@by_option
@click.pass_obj
def revoke_token(provider: RuntimeProvider, token_id: str, by: str | None) -> None:
    """Revoke a token (by id or prefix)."""
    runtime = provider.runtime()
    with runtime.ready_store().transaction() as session:
        token = services.revoke_token(session, runtime.context(host_actor(by)), token_id)
        click.echo(f"revoked token {token.id} ({token.prefix})")
