"""Every settings section of the product, in the order the reference lists them."""

from __future__ import annotations

from plantwarden.core.config import CoreSettings, SupervisorSettings
from plantwarden.core.settings import SettingsSection
from plantwarden.web.settings import ServerSettings

SECTIONS: tuple[type[SettingsSection], ...] = (CoreSettings, ServerSettings, SupervisorSettings)
