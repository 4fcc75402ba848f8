"""`plantwarden notify ARGS` as a process of its own, for the tests that kill and restart it.

Settings come from PLANTWARDEN_* variables like in any child of `plantwarden up`; the notify
section is added when the settings catalogue does not list it yet.
"""

from __future__ import annotations

import sys

from plantwarden.cli.catalog import SECTIONS
from plantwarden.core.logs import configure_logging
from plantwarden.core.runtime import Runtime
from plantwarden.core.settings import load_settings
from plantwarden.workers.notify.cli import notify_group
from plantwarden.workers.notify.settings import NotifySettings
from tests.unit.workers.notify_support import Provider


def main() -> None:
    sections = SECTIONS if NotifySettings in SECTIONS else (*SECTIONS, NotifySettings)
    settings = load_settings(sections)
    configure_logging(settings.value("log_level"), settings.secret_values())
    provider = Provider(Runtime(settings, source="notify"))
    notify_group.main(sys.argv[1:], obj=provider, prog_name="plantwarden notify")


if __name__ == "__main__":
    main()
