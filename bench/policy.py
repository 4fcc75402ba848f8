"""Policy decisions: the compiled snapshot against a slow reference and casbin's FastEnforcer.

The policy: 10,000 users (plus 200 source addresses and 20 certificate roles) holding 1-3 grants
each, 100 roles (the 6 built-in and 94 generated ones whose rules carry zone and asset limits,
register ranges and conditions), 50 zones in 5 sites. 20,000 requests, most aimed at what a grant
of the subject allows (so that allow, condition and scope branches are all exercised), the rest
random; a deny overlay holds 50 quarantined users and 40 quarantined assets.

1. Every request is decided by the snapshot and by `bench/policy_reference.py` (the slow,
   obviously correct procedure of docs/policy.md); all must agree on (allowed, rule).
2. The full decision (`snapshot.decide(request, overlay)`) is timed call by call with
   `time.perf_counter_ns` (p50, p99, p99.9; the timer's own cost is included and printed), and
   as throughput over the whole list.
3. casbin's FastEnforcer decides an equivalent policy (RBAC with domains; the model file is
   written below) on a sample of the same requests without the overlay; its answers are checked
   against the snapshot's and timed the same way.

What "equivalent" covers: a domain is "<site>/<zone>" ("<site>/-" for a request about the site as
a whole); a zone grant is one `g` line in its domain and a whole-site grant one `g` line per
domain of the site (casbin has no "any zone of this site" without a domain matching function,
which the FastEnforcer's (domain, action) index would defeat); each rule becomes one `p` line
per (expanded action, domain its site and zone limits admit, merged register range). What
casbin cannot express natively and gets as custom functions: register ranges (`in_range`), the
valid-until of rules (`not_after`) and of grants (`grant_valid`, a side table of the grants,
since a `g` link carries no attributes). Not compared: the deny overlay (casbin would need deny
policies and a reload per quarantine), the naming of the deciding rule and the reason, action
patterns over actions casbin was not given lines for (patterns are expanded over the actions
the requests use), and malformed requests.
"""

from __future__ import annotations

import gc
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.policy_reference import ReferencePolicy
from plantwarden.policy import (
    BUILTIN_ROLES,
    PLATFORM_ACTIONS,
    Conditions,
    DenyOverlay,
    Grant,
    PolicyModel,
    PolicySnapshot,
    Request,
    Role,
    Rule,
    ScopePattern,
    Subject,
    compile_policy,
)
from plantwarden.policy.model import action_matches, merge_ranges

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SITES = tuple(f"site-{s}" for s in range(5))
ZONES = {site: tuple(f"cell-{s * 10 + z:02d}" for z in range(10)) for s, site in enumerate(SITES)}
ZONE_SITE = {zone: site for site, zones in ZONES.items() for zone in zones}
ASSETS = {zone: tuple(f"plc-{zone[5:]}-{a}" for a in range(8)) for zone in ZONE_SITE}
ALL_ZONES = tuple(ZONE_SITE)
PLANT_ACTIONS = (
    *(f"plant:modbus.{op}" for op in ("read", "write", "program", "control", "diagnostic")),
    "plant:s7comm.read",
    "plant:s7comm.write",
)
REQUEST_ACTIONS = PLATFORM_ACTIONS + PLANT_ACTIONS
RULE_PATTERNS = ("plant:modbus.*", "plant:*.read", "plant:*.write", "platform:alerts.*")


def _ranges(rng: random.Random) -> tuple[tuple[int, int], ...]:
    points = sorted(rng.sample(range(10_000), 2 * rng.randint(1, 3)))
    return tuple((points[i], points[i + 1]) for i in range(0, len(points), 2))


def _rule(rng: random.Random, index: int) -> Rule:
    pool = (*RULE_PATTERNS, *PLANT_ACTIONS, *PLANT_ACTIONS, *rng.sample(PLATFORM_ACTIONS, 4))
    zone = rng.choice(ALL_ZONES) if rng.random() < 0.4 else None
    asset = None
    if rng.random() < 0.4:
        asset = rng.choice(ASSETS[zone or rng.choice(ALL_ZONES)])
    valid_until = None
    if rng.random() < 0.2:
        valid_until = NOW + (timedelta(days=30) if rng.random() < 0.5 else -timedelta(days=1))
    return Rule(
        id=f"rule-{index}",
        actions=frozenset(rng.sample(pool, rng.randint(1, 3))),
        scope=ScopePattern(zone=zone, asset=asset, ranges=_ranges(rng) if rng.random() < 0.6 else ()),
        conditions=Conditions(
            valid_until=valid_until,
            requires_training=rng.random() < 0.3,
            requires_approval=rng.random() < 0.15,
        ),
    )


def build_model(seed: int = 11, users: int = 10_000) -> PolicyModel:
    """The benchmark's policy: 100 roles, 50 zones in 5 sites, `users` users and a few others."""
    rng = random.Random(seed)  # noqa: S311 - reproducible benchmark data, not secrets
    roles = dict(BUILTIN_ROLES)
    for r in range(100 - len(roles)):
        name = f"role-{r:03d}"
        roles[name] = Role(name, "generated", tuple(_rule(rng, i) for i in range(rng.randint(2, 5))))
    generated = sorted(set(roles) - set(BUILTIN_ROLES))
    builtin_weights = {
        "viewer": 3,
        "operator": 5,
        "engineer": 3,
        "security_analyst": 1,
        "admin": 1,
        "auditor": 1,
    }
    subjects = [Subject("user", f"u{n:05d}") for n in range(users)]
    subjects += [Subject("address", f"10.{n // 250}.{n % 250}.1") for n in range(200)]
    subjects += [Subject("cert_role", f"badge-{n}") for n in range(20)]
    grants = []
    for subject in subjects:
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.4:
                role = rng.choices(list(builtin_weights), weights=list(builtin_weights.values()))[0]
            else:
                role = rng.choice(generated)
            site = rng.choice(SITES)
            zone = rng.choice(ZONES[site]) if rng.random() < 0.7 else None
            roll = rng.random()
            until = (
                NOW - timedelta(hours=1) if roll < 0.08 else NOW + timedelta(days=7) if roll < 0.16 else None
            )
            grants.append(Grant(subject, role, site, zone, until))
    return PolicyModel(roles, grants)


def make_requests(model: PolicyModel, n: int, seed: int = 12) -> list[Request]:
    """`n` requests: 80 % aimed at a grant and rule of the subject, 20 % anywhere (3 % strangers)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible benchmark data, not secrets
    grants = list(model.grants)
    requests = []
    for _ in range(n):
        if rng.random() < 0.8:
            grant = rng.choice(grants)
            rule = rng.choice(model.roles[grant.role].rules)
            actions = [a for a in REQUEST_ACTIONS if any(action_matches(p, a) for p in rule.actions)]
            zone = grant.zone or rule.scope.zone or rng.choice((None, *ZONES[grant.site]))
            if zone is not None and ZONE_SITE[zone] != grant.site:
                zone = rng.choice(ZONES[grant.site])
            asset = rule.scope.asset or (rng.choice(ASSETS[zone]) if zone else None)
            address = rng.randrange(10_000)
            if rule.scope.ranges:
                low, high = rng.choice(rule.scope.ranges)
                address = rng.randint(max(low - 2, 0), high + 2)
            subject, site, act = grant.subject, grant.site, rng.choice(actions or REQUEST_ACTIONS)
        else:
            subject = rng.choice(grants).subject if rng.random() < 0.97 else Subject("user", "stranger")
            site = rng.choice(SITES)
            zone = rng.choice((None, *ZONES[site]))
            asset = rng.choice(ASSETS[zone]) if zone and rng.random() < 0.7 else None
            address, act = rng.randrange(10_000), rng.choice(REQUEST_ACTIONS)
        plant = act.startswith("plant:")
        requests.append(
            Request(
                subject=subject,
                action=act,
                site=site,
                zone=zone,
                asset=asset if plant or rng.random() < 0.2 else None,
                address=address if plant else None,
                now=NOW if rng.random() < 0.95 else None,
                training_current=rng.random() < 0.9,
                approval_given=rng.random() < 0.4,
                quantity=1 if rng.random() < 0.8 else rng.randint(2, 10),
            )
        )
    return requests


_OUTCOMES = {
    "default-deny": "default deny",
    "deny": "quarantined",
    "grant": "grant expired",
    "role": "condition unmet",
}


def make_overlay(model: PolicyModel, seed: int = 13) -> DenyOverlay:
    rng = random.Random(seed)  # noqa: S311 - reproducible benchmark data, not secrets
    overlay = DenyOverlay()
    users = sorted({g.subject for g in model.grants if g.subject.kind == "user"}, key=lambda s: s.id)
    for subject in rng.sample(users, 50):
        overlay.quarantine_subject(subject, "bench: credentials under review")
    for zone in rng.sample(ALL_ZONES, 40):
        overlay.quarantine_asset(ZONE_SITE[zone], rng.choice(ASSETS[zone]), "bench: unexpected firmware")
    return overlay


@dataclass(frozen=True)
class Timing:
    samples_ns: list[int]
    per_second: float

    def quantile(self, q: float) -> float:
        ordered = sorted(self.samples_ns)
        return float(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)])


def time_calls(
    decide: Callable[..., object],
    requests: Sequence[Request],
    passes: int,
    overlay: DenyOverlay | None = None,
) -> Timing:
    """Per-call latency over `passes` passes (each call timed alone), then throughput."""
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    for _ in range(passes):
        if overlay is None:
            for request in requests:
                started = clock()
                decide(request)
                append(clock() - started)
        else:
            for request in requests:
                started = clock()
                decide(request, overlay)
                append(clock() - started)
    started = clock()
    for _ in range(passes):
        if overlay is None:
            for request in requests:
                decide(request)
        else:
            for request in requests:
                decide(request, overlay)
    elapsed = clock() - started
    return Timing(samples, passes * len(requests) / (elapsed / 1e9))


def timer_cost(n: int = 200_000) -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        started = clock()
        samples.append(clock() - started)
    return statistics.median(samples)


def _line(name: str, timing: Timing) -> None:
    us = [timing.quantile(q) / 1000 for q in (0.5, 0.99, 0.999)]
    print(
        f"{name:44} p50 {us[0]:9.2f} us  p99 {us[1]:9.2f} us  p99.9 {us[2]:9.2f} us"
        f"  {timing.per_second:>12,.0f} decisions/s  ({len(timing.samples_ns):,} timed calls)"
    )


# --- casbin ----------------------------------------------------------------------------------------

CASBIN_MODEL = """\
[request_definition]
r = sub, dom, act, obj, addr, qty, now, trained, approved

[policy_definition]
p = sub, dom, act, obj, lo, hi, until, training, approval

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.act == p.act && (p.obj == "*" || r.obj == p.obj) \
&& in_range(r.addr, r.qty, p.lo, p.hi) && not_after(r.now, p.until) \
&& (p.training == "0" || r.trained) && (p.approval == "0" || r.approved) \
&& grant_valid(r.sub, p.sub, r.dom, r.now)
"""


def _domains(site: str) -> tuple[str, ...]:
    return (f"{site}/-", *(f"{site}/{zone}" for zone in ZONES[site]))


def _key(subject: Subject) -> str:
    return f"{subject.kind}:{subject.id}"


def _stamp(moment: datetime | None) -> str:
    return "" if moment is None else repr(moment.timestamp())


def casbin_lines(model: PolicyModel) -> tuple[list[str], dict[tuple[str, str, str], float]]:
    """The policy file's lines and the grants' valid-until side table."""
    lines = []
    for role in model.roles.values():
        for rule in role.rules:
            actions = [a for a in REQUEST_ACTIONS if any(action_matches(p, a) for p in rule.actions)]
            limits = rule.scope
            domains = [
                domain
                for site in SITES
                if limits.site in (None, site)
                for domain in _domains(site)
                if limits.zone in (None, domain.partition("/")[2])
            ]
            spans = [(str(low), str(high)) for low, high in merge_ranges(limits.ranges)] or [("", "")]
            conditions = rule.conditions
            tail = (
                f"{_stamp(conditions.valid_until)}, {int(conditions.requires_training)},"
                f" {int(conditions.requires_approval)}"
            )
            for act in actions:
                for domain in domains:
                    for low, high in spans:
                        lines.append(
                            f"p, {role.name}, {domain}, {act}, {limits.asset or '*'}, {low}, {high}, {tail}"
                        )
    until: dict[tuple[str, str, str], float] = {}
    for grant in model.grants:
        granted = _domains(grant.site) if grant.zone is None else (f"{grant.site}/{grant.zone}",)
        limit = math.inf if grant.valid_until is None else grant.valid_until.timestamp()
        for domain in granted:
            key = (_key(grant.subject), grant.role, domain)
            if key not in until:
                lines.append(f"g, {key[0]}, {grant.role}, {domain}")
            until[key] = max(until.get(key, -math.inf), limit)
    return lines, until


def casbin_enforcer(model: PolicyModel, work: Path) -> Callable[[Request], bool]:
    import casbin  # type: ignore[import-untyped]  # noqa: PLC0415 - a dev dependency of this benchmark only

    lines, grant_until = casbin_lines(model)
    (work / "model.conf").write_text(CASBIN_MODEL)
    (work / "policy.csv").write_text("\n".join(lines) + "\n")
    enforcer = casbin.FastEnforcer(str(work / "model.conf"), str(work / "policy.csv"), cache_key_order=[1, 2])

    def in_range(address: int, quantity: int, low: str, high: str) -> bool:
        return low == "" or (address >= 0 and int(low) <= address and address + quantity - 1 <= int(high))

    def not_after(now: float | None, until: str) -> bool:
        return until == "" or (now is not None and now <= float(until))

    def grant_valid(subject: str, role: str, domain: str, now: float | None) -> bool:
        limit = grant_until.get((subject, role, domain), -math.inf)
        return limit == math.inf or (now is not None and now <= limit)

    enforcer.add_function("in_range", in_range)
    enforcer.add_function("not_after", not_after)
    enforcer.add_function("grant_valid", grant_valid)
    p_lines = sum(line[0] == "p" for line in lines)
    print(f"casbin policy: {p_lines:,} p lines, {len(lines) - p_lines:,} g lines")

    def decide(request: Request) -> bool:
        return bool(
            enforcer.enforce(
                _key(request.subject),
                f"{request.site}/{request.zone or '-'}",
                request.action,
                request.asset or "-",
                -1 if request.address is None else request.address,
                request.quantity,
                None if request.now is None else request.now.timestamp(),
                request.training_current,
                request.approval_given,
            )
        )

    return decide


# --- the run ---------------------------------------------------------------------------------------


def run(*, quick: bool = False) -> None:
    n = 2_000 if quick else 20_000
    passes = 1 if quick else 5
    casbin_n = 200 if quick else 2_000
    started = time.perf_counter()
    model = build_model(users=1_000 if quick else 10_000)
    built = time.perf_counter() - started
    started = time.perf_counter()
    snapshot: PolicySnapshot = compile_policy(model)
    compiled = time.perf_counter() - started
    requests = make_requests(model, n)
    overlay = make_overlay(model)
    users = len({g.subject for g in model.grants})
    zones = sum(len(z) for z in ZONES.values())
    print(
        f"## policy: {users:,} subjects, {len(model.grants):,} grants, {len(model.roles)} roles,"
        f" {zones} zones; built in {built:.1f} s, compiled in {compiled:.2f} s;"
        f" version {snapshot.version[:16]}"
    )

    reference = ReferencePolicy(model)
    state = overlay.snapshot()
    quarantined = {Subject(kind, id_) for kind, id_ in state.subject_keys}  # type: ignore[arg-type]
    started = time.perf_counter()
    outcomes: dict[str, int] = {}
    for request in requests:
        decision = snapshot.decide(request, overlay)
        expected = reference.decide(request, quarantined, state.asset_keys)
        assert (decision.allowed, decision.rule) == expected, (request, decision, expected)
        kind = "allowed" if decision.allowed else _OUTCOMES[decision.rule.partition(":")[0]]
        outcomes[kind] = outcomes.get(kind, 0) + 1
    print(
        f"reference check: {len(requests):,} of {len(requests):,} decisions agree on (allowed, rule)"
        f" ({time.perf_counter() - started:.1f} s); outcomes {dict(sorted(outcomes.items()))}"
    )

    gc.collect()
    gc.freeze()  # the snapshot and the requests are long-lived: keep them out of the collector's scans
    cost = timer_cost()
    print(f"timer: perf_counter_ns pair costs {cost:.0f} ns (included in every figure below)")
    ours = time_calls(snapshot.decide, requests, passes, overlay)
    _line("snapshot.decide(request, overlay)", ours)
    bare = time_calls(snapshot.decide, requests, passes)
    _line("snapshot.decide(request), no overlay", bare)

    with tempfile.TemporaryDirectory(prefix="pw-bench-policy-") as work:
        started = time.perf_counter()
        casbin_decide = casbin_enforcer(model, Path(work))
        print(f"casbin FastEnforcer loaded in {time.perf_counter() - started:.1f} s")
        sample = requests[:casbin_n]
        agree = sum(casbin_decide(request) == snapshot.decide(request).allowed for request in sample)
        print(f"casbin check: {agree:,} of {len(sample):,} answers agree with the snapshot (no overlay)")
        assert agree == len(sample)
        gc.collect()
        theirs = time_calls(casbin_decide, sample, 1)
        _line("casbin FastEnforcer.enforce", theirs)
    gc.unfreeze()
    print(
        f"ratio (casbin / snapshot without overlay): p50 x{theirs.quantile(0.5) / bare.quantile(0.5):,.0f},"
        f" p99 x{theirs.quantile(0.99) / bare.quantile(0.99):,.0f},"
        f" throughput x{bare.per_second / theirs.per_second:,.0f}"
    )
    target = ours.quantile(0.99) / 1000
    print(
        f"target p99 <= 5 us for the full decision: {'met' if target <= 5 else 'NOT met'} ({target:.2f} us)"
    )
