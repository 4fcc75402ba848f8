"""The command line's context object: flags collected first, settings built once on demand."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from plantwarden.core.settings import CONFIG_ENV, Settings, declarations, load_settings

if TYPE_CHECKING:
    from plantwarden.core.runtime import Runtime


@dataclass
class CliState:
    """Global flags of the root command; `runtime()` resolves settings the first time it is asked."""

    config_file: Path | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    _runtime: Runtime | None = None

    def add_overrides(self, values: Mapping[str, str | None]) -> None:
        """Flags of a subcommand (only those given) take precedence over everything else."""
        if self._runtime is not None:
            raise RuntimeError("settings are already built")
        self.overrides.update({k: v for k, v in values.items() if v is not None})

    def settings(self) -> Settings:
        return self.runtime().settings

    def runtime(self) -> Runtime:
        if self._runtime is None:
            # Imported here, not above: every process builds a CliState, and these pull in the store
            # (SQLAlchemy, alembic) and every package's settings, which `--help` does not need.
            from plantwarden.accounts import services as accounts  # noqa: PLC0415
            from plantwarden.cli.catalog import SECTIONS  # noqa: PLC0415
            from plantwarden.core.logs import configure_logging  # noqa: PLC0415
            from plantwarden.core.runtime import Runtime  # noqa: PLC0415

            settings = load_settings(SECTIONS, config_file=self.config_file, overrides=self.overrides)
            configure_logging(settings.value("log_level"), settings.secret_values())
            accounts.configure_for(settings)
            self._runtime = Runtime(settings)
        return self._runtime

    def child_environment(self) -> dict[str, str]:
        """Environment that gives a child process the same settings (flags become variables,
        so that secrets never show in a process listing)."""
        from plantwarden.cli.catalog import SECTIONS  # noqa: PLC0415 - see runtime()

        env_names = {d.key: d.env_var for d in declarations(SECTIONS)}
        env = {env_names[key]: value for key, value in self.overrides.items()}
        config = self.config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
        if config is None and self.settings().config_file is not None:
            config = self.settings().config_file
        if config is not None:
            env[CONFIG_ENV] = str(config.resolve())
        return env

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
