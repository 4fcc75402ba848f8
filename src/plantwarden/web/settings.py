"""Settings of the server process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plantwarden.core.errors import ConfigurationError
from plantwarden.core.parsing import MAX_PORT
from plantwarden.core.settings import SettingsSection, setting


@dataclass(frozen=True)
class ServerSettings(SettingsSection):
    """Where and how the server listens."""

    section = "server"
    doc = (
        "Plain HTTP is allowed only on a loopback address; binding to any other address needs TLS "
        "(a certificate generated in `<data_dir>/tls/` when none is configured)."
    )

    host: str = setting("127.0.0.1", "Address the server binds to.")
    port: int = setting(8000, "TCP port of the server (1-65535).")
    tls: str = setting(
        "auto",
        "TLS mode: auto (off on loopback, on elsewhere), on (always), off (loopback only).",
        choices=("auto", "on", "off"),
    )
    tls_cert: Path | None = setting(None, "PEM certificate (chain) for TLS; unset: generated locally.")
    tls_key: Path | None = setting(None, "PEM private key for `tls_cert`.")
    live_seconds: int = setting(
        300, "Seconds a console's live-update stream lasts before the browser reconnects (0-3600)."
    )

    def __post_init__(self) -> None:
        if not 1 <= self.port <= MAX_PORT:
            raise ConfigurationError(
                f"setting 'server.port' must be a TCP port (1-{MAX_PORT}), not {self.port}"
            )
