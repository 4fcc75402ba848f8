"""One request, one verdict: the policy snapshot, the safety envelope and the rate limits.

`Decider.decide` takes who asks (a certificate role or a source address, as a policy subject),
the PLC the request goes to and the request as the exact Modbus decoder read it, and answers
with a `Verdict`: allowed, or the exception code to answer and the rule and reason to record.
In order:

1. a malformed PDU is refused (never forwarded): exception 01 for an unknown function, 03 else;
2. without any policy snapshot everything is refused (fail closed);
3. the subject's rate limit (per role, a token bucket) refuses with 06 (busy) when spent;
4. the policy decides the plant operation (`plant:modbus.read`, `.write`, ...) on the asset's
   zone and asset with the register range touched (function 23 asks twice: write and read);
5. a write the policy allows must stay within the envelope (`envelope.py`).

A refusal by policy or envelope is exception 01, as the Modbus/TCP Security specification
answers an authorization failure. Everything here is in-memory and takes microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from plantwarden.gateway.envelope import Envelope
from plantwarden.gateway.frames import ILLEGAL_DATA_VALUE, ILLEGAL_FUNCTION
from plantwarden.policy.compile import PolicySnapshot, Request
from plantwarden.policy.model import Subject
from plantwarden.policy.overlay import DenyOverlay
from plantwarden.protocols.modbus.findings import ModbusFinding, Operation
from plantwarden.protocols.modbus.messages import ModbusMessage

SERVER_DEVICE_BUSY = 6
FAIL_CLOSED = "gateway:fail-closed"
RATE_LIMITED = "gateway:rate-limit"
MALFORMED = "gateway:malformed"
ENVELOPE = "gateway:envelope"

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
    _buckets: dict[Subject, _Bucket] = field(default_factory=dict)

    def take(self, subject: Subject, role: str, now: float) -> bool:
        """Spend one token of `subject`; False when none is left."""
        limit = self.limits.get(role)
        if limit is None:
            return True
        bucket = self._buckets.get(subject)
        if bucket is None:
            bucket = self._buckets[subject] = _Bucket(limit.burst, now)
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
    ) -> None:
        self.site = site
        self.snapshot = snapshot
        self.envelope = envelope
        self.overlay = overlay
        self.limiter = RateLimiter(dict(rate_limits or {}))

    @property
    def version(self) -> str:
        """The version of the snapshot in force ("" when there is none)."""
        return "" if self.snapshot is None else self.snapshot.version

    def decide(
        self, subject: Subject, role: str, target: Target, message: ModbusMessage, wall: datetime, now: float
    ) -> Verdict:
        """The verdict on `message` from `subject` (acting as `role`) to `target`.

        `wall` is the time for valid-until limits (timezone-aware); `now` a monotonic time.
        """
        operation = message.operation
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
        if not self.limiter.take(subject, role, now):
            return Verdict(
                False, RATE_LIMITED, f"{subject} exceeds the request rate allowed to role {role}",
                SERVER_DEVICE_BUSY, operation,
            )  # fmt: skip
        action = ACTION_OF_OPERATION.get(operation, "plant:modbus.other")
        code = message.function_code
        address, quantity = _span(message)
        request = Request(
            subject, action, self.site, target.zone, target.asset, address, wall, False, False, quantity
        )
        decision = snapshot.decide(request, self.overlay)
        if decision.allowed and code == 23:
            read = request._replace(action=ACTION_OF_OPERATION[Operation.READ], address=message.address,
                                    quantity=max(message.quantity, 1))  # fmt: skip
            decision = snapshot.decide(read, self.overlay)
        if not decision.allowed:
            return Verdict(False, decision.rule, decision.reason, ILLEGAL_FUNCTION, operation)
        if code in _WRITES and address is not None:
            breach = self.envelope.check(target.asset, code, address, message.values, now)
            if breach is not None:
                rule = f"{ENVELOPE}:{target.asset}/{breach.register}"
                return Verdict(False, rule, breach.reason, ILLEGAL_FUNCTION, operation)
        return Verdict(True, decision.rule, decision.reason, 0, operation)

    def allowed_write(self, target: Target, message: ModbusMessage, now: float) -> None:
        """Note a write that went through (the envelope's rate-of-change memory)."""
        address, _ = _span(message)
        if message.function_code in _WRITES and address is not None:
            self.envelope.remember(target.asset, message.function_code, address, message.values, now)


def _span(message: ModbusMessage) -> tuple[int | None, int]:
    """The first address and the count a request's decision covers (its write part for 23)."""
    code = message.function_code
    if code == 23:
        return message.write_address, max(message.write_quantity, 1)
    if code in _ADDRESSED:
        return message.address, max(message.quantity, 1)
    return None, 1
