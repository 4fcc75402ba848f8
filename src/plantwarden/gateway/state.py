"""What the gateway enforces, built in one piece: the policy snapshot, the PLCs and their envelopes.

The policy is the platform's (`accounts.policy_model`: built-in roles and user grants) with the
plant model's rights and bindings (`zones.plant.rights`), plus one grant per role for the
certificate subject of that role at the gateway's site: a client certificate issued by the
platform CA for the site vouches for its role (`cert_role <role>`), as a plant.yaml binding
vouches for a legacy client's address. The plant model is the one applied in the store; the
`--plant` file stands in until one is applied.

The gateway knows no training records and takes no approvals, so it states neither: a right that
requires current training or an approval is never met at the gateway (fail closed); rights meant
for gateway clients are written without them.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from plantwarden.accounts.services import policy_model
from plantwarden.core.db import Store
from plantwarden.core.errors import InvalidInput
from plantwarden.core.parsing import host_port
from plantwarden.gateway.decide import Target
from plantwarden.gateway.envelope import Envelope
from plantwarden.policy.compile import PolicySnapshot, compile_policy
from plantwarden.policy.model import Grant, PolicyModel, Subject
from plantwarden.zones.applied import current_model
from plantwarden.zones.plant.model import PlantModel, SiteModel
from plantwarden.zones.plant.rights import plant_policy, with_plant

log = logging.getLogger(__name__)
MODBUS_PORT = 502


@dataclass(frozen=True)
class GatewayState:
    """One consistent view: the snapshot, the plant version it came from and the routes."""

    snapshot: PolicySnapshot
    plant_version: str
    site: SiteModel
    routes: Mapping[int, Target]
    """Unit id -> PLC; key -1 is the route of any unit id (a single PLC without a unit id)."""

    def route(self, unit_id: int) -> Target | None:
        """The PLC a request with `unit_id` goes to, or None."""
        return self.routes.get(unit_id) or self.routes.get(-1)

    def envelope(self, rate_limits: Mapping[str, Mapping[str, float]]) -> Envelope:
        """A fresh envelope of the routed assets (rate limits: asset -> register name -> units/s)."""
        ids = {target.asset for target in self.routes.values()}
        return Envelope([asset for asset in self.site.assets if asset.id in ids], rate_limits)


def unknown_limits(
    state: GatewayState, change_limits: Mapping[str, Mapping[str, float]], rate_roles: Iterable[str]
) -> list[str]:
    """What `--max-change` (asset -> register name -> units/s) and `--rate-limit` (roles) name that
    the gateway does not guard: an asset not behind it, a register its map does not name, a role
    the policy does not have. Each such limit would limit nothing, silently."""
    routed = {target.asset for target in state.routes.values()}
    assets = {asset.id: asset for asset in state.site.assets if asset.id in routed}
    problems = []
    for asset_id, registers in change_limits.items():
        asset = assets.get(asset_id)
        if asset is None:
            problems.append(
                f"--max-change names asset {asset_id!r}, which is not behind the gateway"
                f" (its PLCs: {', '.join(sorted(assets)) or 'none'})"
            )
            continue
        names = {register.name for register in asset.registers}
        for register in sorted(set(registers) - names):
            problems.append(
                f"--max-change names register {register!r}, which the register map of {asset_id} does not"
                f" have ({', '.join(sorted(names)) or 'it has no register map in plant.yaml'})"
            )
    for role in sorted(set(rate_roles) - set(state.snapshot.roles)):
        problems.append(
            f"--rate-limit names role {role!r}, which the policy does not have"
            f" (roles: {', '.join(sorted(state.snapshot.roles))})"
        )
    return problems


def gateway_model(base: PolicyModel, plant: PlantModel, site: str) -> PolicyModel:
    """The policy model the gateway compiles: `base` with the plant's rights and bindings, and a
    grant of each role to the certificate subject of that role at `site`."""
    model = with_plant(base, plant_policy(plant))
    roles = sorted(model.roles)
    grants = (*model.grants, *(Grant(Subject("cert_role", role), role, site) for role in roles))
    return PolicyModel(roles=model.roles, grants=grants)


def parse_upstreams(items: tuple[str, ...]) -> dict[str, tuple[str, int]]:
    """`ASSET=HOST:PORT` options as a mapping; `InvalidInput` names a malformed one."""
    found: dict[str, tuple[str, int]] = {}
    for item in items:
        asset, _, where = item.partition("=")
        upstream = host_port(where)
        if not asset or upstream is None or upstream[1] == 0:
            raise InvalidInput(
                f"--upstream {item!r}: expected ASSET=HOST:PORT (for example plc-1=10.0.0.5:502)"
            )
        found[asset] = upstream
    return found


def routes_of(site: SiteModel, upstreams: Mapping[str, tuple[str, int]]) -> dict[int, Target]:
    """The unit-id routes to the PLCs: the assets named in `upstreams` (at the address given), or,
    when none is named, the site's `gateway_only` assets (first address, port 502).

    An asset with a `unit_id` answers that unit id; a single PLC without one answers any. Loading
    plant.yaml already refuses a collision among the `gateway_only` assets of a site with one
    gateway (`zones.plant.unit_ids`); this check stays for `--upstream` and sites with several.
    """
    unknown = sorted(set(upstreams) - {asset.id for asset in site.assets})
    if unknown:
        raise InvalidInput(
            f"--upstream names {', '.join(unknown)}, not assets of site {site.id} in the plant model"
        )
    chosen = (
        [a for a in site.assets if a.id in upstreams]
        if upstreams
        else [a for a in site.assets if a.gateway_only]
    )
    routes: dict[int, Target] = {}
    for asset in chosen:
        host, port = upstreams.get(asset.id) or (_host(asset.addresses[0]), MODBUS_PORT)
        target = Target(asset.id, asset.zone, host, port)
        if asset.unit_id is not None:
            if asset.unit_id in routes:
                raise InvalidInput(
                    f"{routes[asset.unit_id].asset} and {asset.id} both answer unit id {asset.unit_id}:"
                    " the gateway routes requests by unit id, so the PLCs behind one gateway need"
                    " distinct unit ids (or a gateway each)"
                )
            routes[asset.unit_id] = target
        elif len(chosen) == 1:
            routes[-1] = target
        else:
            log.warning("asset %s declares no unit_id: no request can be routed to it", asset.id)
    return routes


def _host(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return str(address)


def build_state(
    base: PolicyModel, plant: PlantModel, site: str, upstreams: Mapping[str, tuple[str, int]]
) -> GatewayState:
    """Compile what the gateway enforces for `site`; `InvalidInput` when the site is unknown."""
    try:
        site_model = next(s for s in plant.sites if s.id == site)
    except StopIteration:
        known = ", ".join(s.id for s in plant.sites)
        raise InvalidInput(
            f"site {site!r} is not in the plant model {plant.source} (sites: {known})"
        ) from None
    snapshot = compile_policy(gateway_model(base, plant, site))
    return GatewayState(snapshot, plant.version, site_model, routes_of(site_model, upstreams))


StateLoader = Callable[[], GatewayState]
"""Loads the state in force; raises when the store cannot be read (the caller keeps the last)."""


def store_loader(
    store: Store, fallback: PlantModel, site: str, upstreams: Mapping[str, tuple[str, int]]
) -> StateLoader:
    """Loads the state from the store: its grants and its applied plant model (else `fallback`).

    The gateway reloads every second, in a thread of its own process that competes with the event
    loop for the interpreter: compiling the snapshot (milliseconds) only when what it is compiled
    from changed (the grants read, the plant model's version) keeps the reload to two small queries.
    """
    last: list[tuple[tuple[PolicyModel, str], GatewayState]] = []

    def load() -> GatewayState:
        with store.transaction() as session:
            base = policy_model(session)
            plant = current_model(session) or fallback
        key = (base, plant.version)
        if last and last[0][0] == key:
            return last[0][1]
        state = build_state(base, plant, site, upstreams)
        last[:] = [(key, state)]
        return state

    return load
