"""Alert notifications: alert events of the log delivered to a webhook and to syslog (RFC 5424).

Each target reads the event log through a cursor of its own (`notify:webhook`, `notify:syslog`),
so a dead target never holds up the other; a cursor moves only after its target acknowledged
the notifications before it. See docs/notifications.md.
"""
