"""Every settings section of the product, in the order the reference lists them."""

from __future__ import annotations

from plantwarden.accounts.settings import AccountsSettings
from plantwarden.core.auditlog import AuditSettings
from plantwarden.core.config import CoreSettings, NatsSettings, SupervisorSettings
from plantwarden.core.records.settings import RecordsSettings
from plantwarden.core.settings import SettingsSection
from plantwarden.gateway.settings import GatewaySettings
from plantwarden.web.settings import ServerSettings
from plantwarden.workers.notify.settings import NotifySettings

SECTIONS: tuple[type[SettingsSection], ...] = (
    CoreSettings,
    ServerSettings,
    SupervisorSettings,
    RecordsSettings,
    NatsSettings,
    AccountsSettings,
    AuditSettings,
    NotifySettings,
    GatewaySettings,
)
