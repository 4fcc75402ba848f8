"""Errors of the firewall compiler and the drift check."""

from __future__ import annotations

from plantwarden.core.errors import InvalidInput, PlantwardenError


class CannotRender(InvalidInput):
    """The model cannot be written as an nftables ruleset (a name too long for nft, a bad variant)."""

    code = "firewall_cannot_render"


class RulesetUnreadable(InvalidInput):
    """A running or exported ruleset cannot be read (not nft JSON, nft failed, table absent)."""

    code = "firewall_ruleset_unreadable"


class NftFailed(PlantwardenError):
    """The nft command failed; the message carries its own explanation."""

    code = "firewall_nft_failed"
