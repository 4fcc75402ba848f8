"""How a route declares the permission it needs, with the dependency that enforces it.

Every route of the API and the console takes exactly one of:
- `Depends(Requires("platform:alerts.read"))`: the caller must be authenticated (a console
  session, or a bearer token) and the policy must allow the action; the route receives the
  `Actor`, which says where (sites, zones) the action is allowed, for filtering lists;
- `Depends(AUTHENTICATED)`: any authenticated user (their own account, logging out);
- `Depends(PUBLIC)`: no authentication (health probes, the login page).
The web application installs the enforcer (`app.state.enforcer`); domains only declare. The
route table can be read from the dependencies (`declared_permission(route)`), and the suite fails
for a route that declares nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

AUTHENTICATED_ACTION = "authenticated"
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Actor:
    """Who is calling, how they authenticated, and where the route's action is allowed to them."""

    username: str
    user_id: str
    via: str  # "session" or "token"
    scopes: tuple[str, ...] = ()  # a token's scopes; empty for sessions and unscoped tokens
    setup_pending: bool = False  # must set a password / enroll a second factor first
    places: tuple[tuple[str, str | None], ...] = ()  # (site, zone or None for the whole site)

    def with_places(self, places: tuple[tuple[str, str | None], ...]) -> Actor:
        """The same actor, allowed the route's action at `places`."""
        return replace(self, places=places)

    def may_see(self, site: str, zone: str | None = None) -> bool:
        """True when the route's action is allowed for an object of this site (and zone)."""
        return any(s == site and (z is None or z == zone) for s, z in self.places)

    @property
    def sites(self) -> frozenset[str]:
        return frozenset(site for site, _ in self.places)


class Enforcer(Protocol):
    def __call__(self, request: Request, action: str) -> Actor: ...


class Requires:
    """A FastAPI dependency: declares `action` for its route, and enforces it when called."""

    def __init__(self, action: str) -> None:
        namespace, _, name = action.partition(":")
        if namespace not in {"platform", "plant"} or not name:
            raise ValueError(f"action {action!r} must be 'platform:<name>' or 'plant:<name>'")
        self.action = action

    async def __call__(self, request: Request) -> Actor:
        return await enforce(request, self.action)

    def __repr__(self) -> str:
        return f"Requires({self.action!r})"


class _Authenticated:
    """A FastAPI dependency: any authenticated user (their own account, logging out)."""

    action = AUTHENTICATED_ACTION

    async def __call__(self, request: Request) -> Actor:
        return await enforce(request, self.action)

    def __repr__(self) -> str:
        return "AUTHENTICATED"


AUTHENTICATED = _Authenticated()


async def enforce(request: Request, action: str) -> Actor:
    """Read a form's CSRF token if there is one, then run the (blocking) enforcer off the loop."""
    if request.method in {"POST", "PUT", "PATCH", "DELETE"} and request.headers.get(
        "content-type", ""
    ).startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        token = form.get(CSRF_FIELD)
        request.state.csrf_form_token = token if isinstance(token, str) else None
    enforcer: Enforcer = request.app.state.enforcer
    return await run_in_threadpool(enforcer, request, action)


class _Public:
    """A FastAPI dependency: declares that its route needs no authentication."""

    action = "public"

    def __call__(self) -> None:
        return None

    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC = _Public()


def declared_permission(route: Any) -> str | None:
    """The action a route declares ("public" for public routes), or None if it declares none."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    kinds = Requires | _Public | _Authenticated
    declared = [d.call for d in _all_dependencies(dependant) if isinstance(d.call, kinds)]
    return declared[0].action if len(declared) == 1 else None


def _all_dependencies(dependant: Any) -> list[Any]:
    found = []
    for dependency in dependant.dependencies:
        found.append(dependency)
        found.extend(_all_dependencies(dependency))
    return found
