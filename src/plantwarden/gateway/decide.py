"""One request, one verdict: the policy snapshot, the safety envelope and the rate limits.

`Decider.decide` takes who asks (a certificate role or a source address, as a policy subject),
the PLC the request goes to and the request as the exact Modbus decoder read it, and answers
with a `Verdict`: allowed, or the exception code to answer and the rule and reason to record.
In order:

1. a malformed PDU is refused (never forwarded): exception 01 for an unknown function, 03 else;
2. without any policy snapshot everything is refused (fail closed);
3. a PLC declared without a unit id takes unit ids 1 and 255 only (else 0A, no path), one
   declared with one only that one;
4. the rate limit of the source address (whatever the role) and the subject's (per role, token
   buckets) refuse with 06 (busy) when spent;
5. read FIFO queue (24) is refused unless allowed: its one pointer address says nothing of what
   it reads;
6. the policy decides the plant operation (`plant:modbus.read`, `.write`, ...) on the asset's
   zone and asset with the register range touched (function 23 asks twice: write and read);
7. for an asset with a register map, the addresses must be ones the map declares in the table of
   the function code (else 02, illegal data address), and a write must touch only registers of
   that table whose writers list the role whose rule allowed it (01): the policy's write ranges
   merge the tables;
8. a write the policy allows must stay within the envelope (`envelope.py`); its values are
   remembered for the rate-of-change limits when it is allowed, so that two writes in flight at
   once are each checked against the other (kept even if the PLC then refuses it: conservative).

A refusal by policy or envelope is exception 01, as the Modbus/TCP Security specification
answers an authorization failure. Everything here is in-memory and takes microseconds.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from plantwarden.gateway.envelope import TABLE_OF_FUNCTION, AssetEnvelope, Envelope
from plantwarden.gateway.frames import GATEWAY_PATH_UNAVAILABLE, ILLEGAL_DATA_VALUE, ILLEGAL_FUNCTION
from plantwarden.policy.compile import Decision, PolicySnapshot, Request
from plantwarden.policy.model import Subject
from plantwarden.policy.overlay import DenyOverlay
from plantwarden.protocols.modbus.findings import ModbusFinding, Operation
from plantwarden.protocols.modbus.messages import ModbusMessage

ILLEGAL_DATA_ADDRESS = 2
SERVER_DEVICE_BUSY = 6
FAIL_CLOSED = "gateway:fail-closed"
RATE_LIMITED = "gateway:rate-limit"
MALFORMED = "gateway:malformed"
ENVELOPE = "gateway:envelope"
REGISTER_MAP = "gateway:register-map"
UNIT_ID = "gateway:unit-id"
FIFO = "gateway:fifo"
ANY_UNIT_IDS = frozenset({1, 255})
"""The unit ids a PLC declared without one answers to (1, and 255 as Modbus/TCP's "no unit")."""
_MAX_BUCKETS = 10_000
_SOURCE = "source address"

ACTION_OF_OPERATION: dict[Operation, str] = {
    operation: f"plant:modbus.{operation.name.lower()}"
    for operation in Operation
    if operation is not Operation.NONE
}
"""The plant action of each Modbus operation (`OTHER` is no known action: default deny)."""
_WRITES = frozenset({5, 6, 15, 16, 22, 23})
_ADDRESSED = frozenset({1, 2, 3, 4, 5, 6, 15, 16, 22, 24})


class Verdict(NamedTuple):
    """What to do with a request: `exception_code` 0 forwards it; the rule and reason are recorded."""

    allowed: bool
    rule: str
    reason: str
    exception_code: int
    operation: Operation


@dataclass(frozen=True, slots=True)
class Target:
    """A PLC behind the gateway: its asset and zone in the plant model, where it listens."""

    asset: str
    zone: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `per_second` requests a second on average, `burst` at once, per subject."""

    per_second: float
    burst: float


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """Token buckets per subject, sized by the subject's role (roles without a limit: none)."""

    limits: Mapping[str, RateLimit]
    _buckets: dict[Hashable, _Bucket] = field(default_factory=dict)

    def take(self, subject: Hashable, role: str, now: float) -> bool:
        """Spend one token of `subject` (a policy subject, a source address); False when none is
        left."""
        limit = self.limits.get(role)
        return True if limit is None else self.take_at(subject, limit, now)

    def take_at(self, key: Hashable, limit: RateLimit, now: float) -> bool:
        """Spend one token of `key`'s bucket, sized by `limit`; False when none is left."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:  # refilled buckets carry no memory: drop them
                full = limit.burst / limit.per_second
                self._buckets = {k: b for k, b in self._buckets.items() if now - b.stamp < full}
            bucket = self._buckets[key] = _Bucket(limit.burst, now)
        bucket.tokens = min(limit.burst, bucket.tokens + (now - bucket.stamp) * limit.per_second)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True


class Decider:
    """Decides requests for one site under the snapshot in force (swapped by the server)."""

    def __init__(
        self,
        site: str,
        snapshot: PolicySnapshot | None,
        envelope: Envelope,
        *,
        overlay: DenyOverlay | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        source_rate_limit: RateLimit | None = None,
        read_fifo: bool = False,
    ) -> None:
        self.site = site
        self.snapshot = snapshot
        self.envelope = envelope
        self.overlay = overlay
        self.limiter = RateLimiter(dict(rate_limits or {}))
        self.per_asset = RateLimiter({})
        """Buckets per subject, role and PLC, for the assets' `rate_limits` in plant.yaml."""
        self.sources = RateLimiter({} if source_rate_limit is None else {_SOURCE: source_rate_limit})
        self.read_fifo = read_fifo

    @property
    def version(self) -> str:
        """The version of the snapshot in force ("" when there is none)."""
        return "" if self.snapshot is None else self.snapshot.version

    def decide(
        self,
        subject: Subject,
        role: str,
        target: Target,
        message: ModbusMessage,
        wall: datetime,
        now: float,
        *,
        source: str = "",
    ) -> Verdict:
        """The verdict on `message` from `subject` (acting as `role`, connected from `source`; a
        plain client's subject is its address) to `target`.

        `wall` is the time for valid-until limits (timezone-aware); `now` a monotonic time.
        """
        operation = message.operation
        refusal = self.source_refusal(source or (subject.id if subject.kind == "address" else ""), now,
                                      operation)  # fmt: skip
        if refusal is not None:  # every request counts, malformed ones too
            return refusal
        if message.finding != ModbusFinding.OK:
            code = (
                ILLEGAL_FUNCTION if message.finding == ModbusFinding.UNKNOWN_FUNCTION else ILLEGAL_DATA_VALUE
            )
            return Verdict(
                False, MALFORMED, f"malformed request: {message.finding.name.lower()}", code, operation
            )
        snapshot = self.snapshot
        if snapshot is None:
            return Verdict(
                False, FAIL_CLOSED, "the gateway holds no policy snapshot yet", ILLEGAL_FUNCTION, operation
            )
        mapped = self.envelope.asset(target.asset)
        refusal = self._before_policy(subject, role, target, message, mapped, source, now)
        if refusal is not None:
            return refusal
        action = ACTION_OF_OPERATION.get(operation, "plant:modbus.other")
        code = message.function_code
        address, quantity = _span(message)
        request = Request(
            subject, action, self.site, target.zone, target.asset, address, wall, False, False, quantity
        )
        decision = write_decision = snapshot.decide(request, self.overlay)
        if decision.allowed and code == 23:
            read = request._replace(action=ACTION_OF_OPERATION[Operation.READ], address=message.address,
                                    quantity=max(message.quantity, 1))  # fmt: skip
            decision = snapshot.decide(read, self.overlay)
        if not decision.allowed:
            return Verdict(False, decision.rule, decision.reason, ILLEGAL_FUNCTION, operation)
        if mapped is not None and mapped.tables is not None:
            refusal = _off_the_map(mapped, _allowing_role(write_decision, role), target, message)
            if refusal is not None:
                return refusal
        if code in _WRITES and address is not None:
            breach = self.envelope.check(target.asset, code, address, message.values, now)
            if breach is not None:
                rule = f"{ENVELOPE}:{target.asset}/{breach.register}"
                return Verdict(False, rule, breach.reason, ILLEGAL_FUNCTION, operation)
            self.envelope.remember(target.asset, code, address, message.values, now)
        return Verdict(True, decision.rule, decision.reason, 0, operation)

    def source_refusal(self, source: str, now: float, operation: Operation) -> Verdict | None:
        """The refusal of a request from `source` (a client's address) beyond its rate, or None; the
        session asks it for requests no PLC would take, which `decide` never sees."""
        if source and not self.sources.take(source, _SOURCE, now):
            return Verdict(False, RATE_LIMITED, f"source address {source} exceeds its request rate",
                           SERVER_DEVICE_BUSY, operation)  # fmt: skip
        return None

    def _before_policy(
        self,
        subject: Subject,
        role: str,
        target: Target,
        message: ModbusMessage,
        mapped: AssetEnvelope | None,
        source: str,
        now: float,
    ) -> Verdict | None:
        """The refusals that do not need the policy: unit id, the subject's and the PLC's rates,
        FIFO reads."""
        operation, unit_id = message.operation, message.unit_id
        if (
            mapped is not None
            and unit_id != mapped.unit_id
            and (mapped.unit_id is not None or unit_id not in ANY_UNIT_IDS)
        ):
            expected = "1 or 255" if mapped.unit_id is None else str(mapped.unit_id)
            return Verdict(False, UNIT_ID, f"{target.asset} answers to unit id {expected}, not {unit_id}",
                           GATEWAY_PATH_UNAVAILABLE, operation)  # fmt: skip
        if not self.limiter.take(subject, role, now):
            return Verdict(
                False, RATE_LIMITED, f"{subject} exceeds the request rate allowed to role {role}",
                SERVER_DEVICE_BUSY, operation,
            )  # fmt: skip
        per_second = None if mapped is None else mapped.rates.get(role)
        if per_second is not None and not self.per_asset.take_at(
            (subject, role, target.asset), RateLimit(per_second, 2 * per_second), now
        ):
            return Verdict(
                False, RATE_LIMITED, f"{subject} exceeds the {per_second:g} requests a second that"
                f" {target.asset} takes from role {role}", SERVER_DEVICE_BUSY, operation,
            )  # fmt: skip
        if message.function_code == 24 and not self.read_fifo:
            return Verdict(False, FIFO, "read FIFO queue (24) is not allowed through this gateway: its"
                           " one pointer address does not say which registers it reads",
                           ILLEGAL_FUNCTION, operation)  # fmt: skip
        return None


def _allowing_role(decision: Decision, role: str) -> str:
    """The role whose rule allowed (`role:<role>/<rule>`), else the client's own."""
    if decision.rule.startswith("role:"):
        return decision.rule[5:].split("/", 1)[0]
    return role


def _off_the_map(mapped: AssetEnvelope, role: str, target: Target, message: ModbusMessage) -> Verdict | None:
    """The refusal of a request that leaves the register map of its function's table, or None."""
    assert mapped.tables is not None
    code, operation = message.function_code, message.operation
    kind = TABLE_OF_FUNCTION.get(code)
    if kind is None:
        return None
    table = mapped.tables[kind]
    spans = [_span(message)]
    if code == 23:
        spans.append((message.address, max(message.quantity, 1)))
    for first, count in spans:
        if first is None:
            continue
        last = first + count - 1
        hole = table.uncovered(first, last)
        if hole is not None:
            return Verdict(False, REGISTER_MAP, f"{target.asset} declares no {kind} register at address"
                           f" {hole} (request: {kind} {first}-{last})", ILLEGAL_DATA_ADDRESS,
                           operation)  # fmt: skip
    first, count = spans[0]
    if code in _WRITES and first is not None:
        register = table.not_writable(first, first + count - 1, role)
        if register is not None:
            return Verdict(False, REGISTER_MAP, f"role {role or '(none)'} is not a writer of {kind}"
                           f" {register.name} of {target.asset}", ILLEGAL_FUNCTION, operation)  # fmt: skip
    return None


def _span(message: ModbusMessage) -> tuple[int | None, int]:
    """The first address and the count a request's decision covers (its write part for 23)."""
    code = message.function_code
    if code == 23:
        return message.write_address, max(message.write_quantity, 1)
    if code in _ADDRESSED:
        return message.address, max(message.quantity, 1)
    return None, 1
