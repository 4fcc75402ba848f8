"""Errors of the plant model."""

from __future__ import annotations

from plantwarden.core.errors import ConfigurationError, Conflict, InvalidInput, NotFound


class InvalidIdentifier(InvalidInput):
    code = "invalid_identifier"


class SiteExists(Conflict):
    code = "site_exists"


class SiteNotFound(NotFound):
    code = "site_not_found"


class SegmentExists(Conflict):
    code = "segment_exists"


class InvalidPlantRights(InvalidInput):
    code = "invalid_plant_rights"


class ConduitNotFound(NotFound):
    """No conduit of that id in a site of the plant model in force that the caller may see."""

    code = "conduit_not_found"


class AppliedPlantUnreadable(ConfigurationError):
    """The plant model in force no longer loads (a newer release checks more, a time zone name
    left the system's tz database): apply a corrected plant.yaml."""

    code = "applied_plant_unreadable"
