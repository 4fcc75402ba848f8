"""One root error with a stable code; every domain subclasses it.

The web layer maps these classes to HTTP statuses in one table (`plantwarden.web.errors`);
the command line prints the message and exits with a non-zero status.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PlantwardenError(Exception):
    """Root of every error Plantwarden raises on purpose.

    `code` is stable (clients and docs may rely on it); `message` is for people;
    `details` carries structured context (never secrets).
    """

    code: ClassVar[str] = "plantwarden_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidInput(PlantwardenError):
    """The caller sent something malformed or out of range."""

    code = "invalid_input"


class NotFound(PlantwardenError):
    """The named thing does not exist."""

    code = "not_found"


class Conflict(PlantwardenError):
    """The request clashes with the current state (a duplicate, a non-empty target)."""

    code = "conflict"


class NotAuthenticated(PlantwardenError):
    """No valid session or token: the API answers 401, the console sends the browser to log in."""

    code = "unauthenticated"


class PermissionDenied(PlantwardenError):
    """The actor may not do this; the message says which rule refused it."""

    code = "permission_denied"


class ConfigurationError(PlantwardenError):
    """A setting or configuration file is wrong; the message names the setting and the source."""

    code = "configuration_error"


class StoreNotReady(PlantwardenError):
    """The store cannot serve: unreachable, or at a schema revision this version does not expect."""

    code = "store_not_ready"


class BackupError(PlantwardenError):
    """A backup archive cannot be written or read, or does not match its manifest."""

    code = "backup_error"
