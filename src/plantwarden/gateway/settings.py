"""Settings of the gateway as `plantwarden up` runs it: which plant and site it guards, where it
listens. Unset (the default), `up` does not start a gateway; `plantwarden gateway run` takes the
same things as options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plantwarden.core.errors import InvalidInput
from plantwarden.core.settings import SettingsSection, setting


@dataclass(frozen=True)
class GatewaySettings(SettingsSection):
    """The Modbus/TCP security gateway under `plantwarden up`."""

    section = "gateway"
    doc = (
        "The Modbus/TCP security gateway in front of the PLCs (docs/gateway.md). With `plant` and "
        "`site` set, `plantwarden up` runs `plantwarden gateway run` with them and restarts it when "
        "it stops; at least one of `listen` and `mbaps` must be set then (some of the four set and "
        "not the rest is refused)."
    )

    plant: Path | None = setting(None, "plant.yaml of the plant (the applied model in the store wins).")
    site: str | None = setting(None, "The site whose PLCs the gateway guards.")
    listen: str | None = setting(None, "HOST:PORT of the plain Modbus/TCP listener (legacy clients).")
    mbaps: str | None = setting(None, "HOST[:PORT] of the Modbus/TCP Security listener (TLS, port 802).")
    plc_connections: int = setting(4, "Connections the gateway keeps to each PLC at most (1-256).")
    busy_poll: int = setting(
        0, "Microseconds the gateway polls for work before sleeping (0-10000; for a core of its own)."
    )

    def argv(self) -> list[str] | None:
        """The `plantwarden gateway run` arguments, or None when `up` runs no gateway (none of
        `plant`, `site`, `listen` and `mbaps` is set). Some of them set but not enough to run it is
        `InvalidInput` naming what is missing: `up` ran no gateway then, without a word."""
        given = {"plant": self.plant, "site": self.site, "listen": self.listen, "mbaps": self.mbaps}
        if not any(given.values()):
            return None
        missing = [f"gateway.{key}" for key in ("plant", "site") if not given[key]]
        if not (self.listen or self.mbaps):
            missing.append("gateway.listen or gateway.mbaps")
        if missing or self.plant is None or not self.site:
            named = ", ".join(f"gateway.{key}" for key, value in given.items() if value)
            raise InvalidInput(
                f"{named} set, but `plantwarden up` runs the gateway only with {' and '.join(missing)}"
                " too (or unset them all: no gateway)"
            )
        if not 1 <= self.plc_connections <= 256 or not 0 <= self.busy_poll <= 10_000:
            raise InvalidInput(
                f"gateway.plc_connections must be 1-256 and gateway.busy_poll 0-10000, not "
                f"{self.plc_connections} and {self.busy_poll}"
            )
        args = ["gateway", "run", "--plant", str(self.plant), "--site", self.site]
        if self.listen:
            args += ["--listen", self.listen]
        if self.mbaps:
            args += ["--mbaps", self.mbaps]
        if self.plc_connections != 4:
            args += ["--plc-connections", str(self.plc_connections)]
        if self.busy_poll:
            args += ["--busy-poll", str(self.busy_poll)]
        return args
