"""The deny overlay: quarantine a subject or an asset at once, without compiling the policy again.

A `DenyOverlay` is mutable and thread-safe: each change builds a new immutable `OverlayState`
under a lock and publishes it with one attribute assignment, so a decision reads one consistent
state without taking the lock (an attribute read is atomic in CPython). `PolicySnapshot.decide`
consults it before anything else, and a quarantine denies whatever the grants allow:

- a quarantined subject is denied every action, platform and plant alike;
- a quarantined asset is denied every plant operation (nothing reaches it); platform actions
  about it (reading its alerts and records) stay as the grants say, since investigating a
  quarantined asset is the point.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from plantwarden.policy.errors import InvalidPolicy
from plantwarden.policy.model import SUBJECT_KINDS, Subject

SubjectKey = tuple[str, str]
AssetKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class OverlayState:
    """One immutable state of the overlay: what is quarantined, and why.

    `subject_keys` and `asset_keys` are the lookup sets a decision reads ((kind, id) and
    (site, asset)); `subjects` and `assets` map the same keys to the reason given.
    `generation` counts the changes since the overlay was created.
    """

    subject_keys: frozenset[SubjectKey]
    asset_keys: frozenset[AssetKey]
    subjects: Mapping[SubjectKey, str]
    assets: Mapping[AssetKey, str]
    generation: int

    @property
    def empty(self) -> bool:
        """Whether nothing is quarantined."""
        return not self.subject_keys and not self.asset_keys


EMPTY_OVERLAY = OverlayState(frozenset(), frozenset(), MappingProxyType({}), MappingProxyType({}), 0)


class DenyOverlay:
    """The quarantine list, changed at run time and read by every decision."""

    __slots__ = ("_lock", "_state")

    def __init__(self, state: OverlayState = EMPTY_OVERLAY) -> None:
        self._lock = threading.Lock()
        self._state = state

    def snapshot(self) -> OverlayState:
        """The current state (immutable; later changes publish a new one)."""
        return self._state

    def quarantine_subject(self, subject: Subject, reason: str) -> bool:
        """Deny `subject` everything from now on; False when it already was (the first reason stays)."""
        if subject.kind not in SUBJECT_KINDS or not subject.id:
            raise InvalidPolicy(
                f"cannot quarantine {subject!r}: not a subject", details={"subject": str(subject)}
            )
        key = (subject.kind, subject.id)
        text = _reason(reason)
        with self._lock:
            state = self._state
            if key in state.subjects:
                return False
            self._publish(state, {**state.subjects, key: text}, dict(state.assets))
            return True

    def release_subject(self, subject: Subject) -> bool:
        """End the quarantine of `subject`; False when it was not quarantined."""
        key = (subject.kind, subject.id)
        with self._lock:
            state = self._state
            if key not in state.subjects:
                return False
            subjects = dict(state.subjects)
            del subjects[key]
            self._publish(state, subjects, dict(state.assets))
            return True

    def quarantine_asset(self, site: str, asset: str, reason: str) -> bool:
        """Deny every plant operation on `asset` of `site` from now on; False when it already was."""
        if not site or not asset:
            raise InvalidPolicy("cannot quarantine an asset without a site and an asset id")
        key = (site, asset)
        text = _reason(reason)
        with self._lock:
            state = self._state
            if key in state.assets:
                return False
            self._publish(state, dict(state.subjects), {**state.assets, key: text})
            return True

    def release_asset(self, site: str, asset: str) -> bool:
        """End the quarantine of `asset` of `site`; False when it was not quarantined."""
        key = (site, asset)
        with self._lock:
            state = self._state
            if key not in state.assets:
                return False
            assets = dict(state.assets)
            del assets[key]
            self._publish(state, dict(state.subjects), assets)
            return True

    def _publish(
        self, state: OverlayState, subjects: dict[SubjectKey, str], assets: dict[AssetKey, str]
    ) -> None:
        """Replace the state whole (the caller holds the lock); readers see the old or the new."""
        self._state = OverlayState(
            subject_keys=frozenset(subjects),
            asset_keys=frozenset(assets),
            subjects=MappingProxyType(subjects),
            assets=MappingProxyType(assets),
            generation=state.generation + 1,
        )


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise InvalidPolicy("a quarantine needs a reason (it is shown in every decision it causes)")
    return text
