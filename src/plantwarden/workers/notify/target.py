"""What every notification target offers the delivery loop, and how a delivery fails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from plantwarden.core.errors import PlantwardenError
from plantwarden.workers.notify.document import Notification


class DeliveryFailed(PlantwardenError):
    """A target did not acknowledge a notification; the message says what went wrong."""

    code = "delivery_failed"


class Target(Protocol):
    """A place notifications go. `deliver` returns only once the target acknowledged every
    notification given (what that means depends on the target); otherwise it raises
    `DeliveryFailed`, and the same notifications are delivered again later."""

    name: str
    batch_size: int

    def deliver(self, notifications: Sequence[Notification]) -> None: ...

    def close(self) -> None: ...
