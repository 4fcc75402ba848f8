"""Whom an administrator may manage: the users' grants at the sites where they manage users.

`platform:users.manage` is held per site (or zone), like every platform right: an administrator of
plant A changes grants at plant A only, and a user with grants elsewhere is unlocked or disabled
only by someone who manages users at every site of those grants. Nobody changes their own grants
through the API or the console (an administrator could otherwise give themselves any role, plant
operations included): another administrator does it, or `plantwarden user grant` on the host.
The host's CLI is not held to these rules; it is the installation's own authority.
"""

from __future__ import annotations

from plantwarden.accounts.models import User
from plantwarden.accounts.services import check_grant_input
from plantwarden.core.access import Actor
from plantwarden.core.errors import PermissionDenied


def check_grant(actor: Actor, username: str, role: str, site: str, zone: str | None) -> None:
    """PermissionDenied unless `actor` may grant or revoke `role` of `username` at `site`/`zone`
    (InvalidRole, InvalidGrant first for a malformed grant)."""
    check_grant_input(role, site, zone)
    if username == actor.username:
        raise PermissionDenied(
            "you cannot change your own grants: another administrator does it (or `plantwarden user"
            " grant` on the host)"
        )
    if not actor.may_see(site, zone):
        where = f"site {site!r}" + (f" zone {zone!r}" if zone else "")
        raise PermissionDenied(f"you manage users at {_where(actor)}, not at {where}")


def check_user(actor: Actor, user: User) -> None:
    """PermissionDenied unless `actor` manages users at every site where `user` holds a grant (to
    unlock or disable them)."""
    whole_sites = {site for site, zone in actor.places if zone is None}
    outside = sorted({grant.site for grant in user.grants} - whole_sites)
    if outside:
        raise PermissionDenied(
            f"{user.username} holds roles at {', '.join(outside)}, where you do not manage users"
        )


def _where(actor: Actor) -> str:
    places = [site if zone is None else f"{site} zone {zone}" for site, zone in actor.places]
    return ", ".join(sorted(places)) or "no site"
