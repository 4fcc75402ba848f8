"""Errors of the asset inventory."""

from __future__ import annotations

from plantwarden.core.errors import InvalidInput, NotFound


class InvalidSighting(InvalidInput):
    """A sighting is malformed: a bad address, time, confidence, source or attribute."""

    code = "invalid_sighting"


class AssetNotFound(NotFound):
    """No asset has (or ever had, before a merge) the id asked for."""

    code = "asset_not_found"
