"""Plantwarden: an open-source security platform for smart factories (OT/ICS)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("plantwarden")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"
