"""The actions the product knows, and the built-in roles (until plant.yaml brings its own rights).

The table of roles and their rights is documented in docs/policy.md; a test keeps the two in
step with `BUILTIN_ROLES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from plantwarden.policy.model import Conditions, Grant, Namespace, PolicyModel, Role, Rule, action

PLATFORM_ACTION_DOCS: Mapping[str, str] = MappingProxyType(
    {
        action(Namespace.PLATFORM, name): text
        for name, text in (
            ("status.read", "see the health and status of the platform and its processes"),
            ("sites.read", "see sites, their zones (network segments) and assets"),
            ("sites.manage", "create and change sites, zones and assets"),
            ("alerts.read", "see alerts"),
            ("alerts.acknowledge", "acknowledge an alert (new -> acknowledged)"),
            ("alerts.close", "close an alert (-> closed), with a verdict"),
            ("alerts.assign", "give an alert to a user or take it back"),
            ("alerts.suppress", "suppress a rule's alerts at a site for a time"),
            ("events.read", "read the domain event log"),
            ("records.read", "query protocol records, flows and telemetry"),
            ("telemetry.write", "push telemetry samples (numeric time series) into the records plane"),
            ("baselines.read", "see learned baselines, their state and the facts they hold"),
            ("baselines.manage", "accept a deviation into a baseline, start protecting, relearn"),
            ("exports.run", "export alerts and records (OCSF, later syslog/CEF and STIX)"),
            ("pki.read", "see device certificates: who holds one, its state and expiry"),
            ("pki.manage", "create enrolment tokens for devices and revoke device certificates"),
            ("users.read", "see user accounts and their grants"),
            ("users.manage", "create, change and disable user accounts and their grants"),
            ("tokens.manage", "issue and revoke API tokens"),
            ("audit.read", "read the audit trail"),
            ("settings.read", "see the settings of the platform"),
            ("settings.manage", "change the settings of the platform"),
            ("policy.read", "see roles, grants and the quarantine list"),
            ("quarantine.manage", "quarantine and release subjects and assets (the deny overlay)"),
            ("plant.apply", "apply a plant model (plant.yaml): zones, conduits, assets, rights, bindings"),
            ("exercises.run", "launch an attack scenario against the simulated plant (the demo, drills)"),
        )
    }
)
"""Every platform action the product knows, with what it allows."""

PLATFORM_ACTIONS: tuple[str, ...] = tuple(PLATFORM_ACTION_DOCS)
"""Every platform action the product knows (`platform:<area>.<verb>`), in the order of the docs."""

PROTOCOLS: tuple[str, ...] = (
    "modbus",
    "s7comm",
    "dnp3",
    "enip",
    "iec104",
    "opcua",
    "mqtt",
    "bacnet",
    "profinet_dcp",
)
"""The industrial protocols of the records plane (`core.records.schema.Protocol`), lower case."""

OPERATION_DOCS: Mapping[str, str] = MappingProxyType(
    {
        "read": "read registers, coils, objects or tags",
        "write": "write registers, coils, objects or tags (change a set point, a command)",
        "program": "download, upload or change the logic or configuration of a controller",
        "control": "change the run state of a controller (start, stop, reset, cold restart)",
        "diagnostic": "diagnostic functions (counters, restart communications, listen-only mode)",
        "identify": "ask a device who it is (vendor, product, revision, serial, modules)",
    }
)
"""The generic plant operations, the same in every protocol (`core.records.schema.Operation`)."""

PLANT_OPERATIONS: tuple[str, ...] = tuple(
    action(Namespace.PLANT, f"{protocol}.{operation}")
    for protocol in PROTOCOLS
    for operation in OPERATION_DOCS
)
"""Every plant operation the product knows: `plant:<protocol>.<operation>` for each protocol."""

KNOWN_ACTIONS: frozenset[str] = frozenset(PLATFORM_ACTIONS + PLANT_OPERATIONS)
"""Platform actions and plant operations together (a compiled snapshot precomputes these)."""

_PLATFORM_READS = frozenset(a for a in PLATFORM_ACTIONS if a.endswith(".read"))


def _platform(*names: str) -> frozenset[str]:
    return frozenset(action(Namespace.PLATFORM, name) for name in names)


_VIEWING = Rule("view", _platform("status.read", "sites.read", "alerts.read"))
_ACKNOWLEDGING = Rule("acknowledge", _platform("alerts.acknowledge"))
_PLANT_READING = Rule("plant-read", frozenset({"plant:*.read", "plant:*.identify"}))
_PLANT_WRITING = Rule(
    "plant-write", frozenset({"plant:*.write"}), conditions=Conditions(requires_training=True)
)

BUILTIN_ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role("viewer", "sees status, sites and alerts", (_VIEWING,)),
        Role(
            "operator",
            "a viewer who acknowledges alerts and reads and writes the plant in the zones granted"
            " (writes with current training)",
            (_VIEWING, _ACKNOWLEDGING, _PLANT_READING, _PLANT_WRITING),
        ),
        Role(
            "engineer",
            "an operator who also programs, controls and diagnoses controllers (programming with"
            " an approval, all with current training)",
            (
                _VIEWING,
                _ACKNOWLEDGING,
                _PLANT_READING,
                _PLANT_WRITING,
                Rule(
                    "plant-program",
                    frozenset({"plant:*.program"}),
                    conditions=Conditions(requires_training=True, requires_approval=True),
                ),
                Rule(
                    "plant-control",
                    frozenset({"plant:*.control", "plant:*.diagnostic"}),
                    conditions=Conditions(requires_training=True),
                ),
            ),
        ),
        Role(
            "security_analyst",
            "works alerts, reads events and records, exports them, quarantines, and runs exercises",
            (
                Rule("alerts", frozenset({"platform:alerts.*"})),
                Rule("investigate", _platform("events.read", "records.read", "exports.run")),
                Rule("baselines", _platform("baselines.read", "baselines.manage")),
                Rule("pki", _platform("pki.read")),
                Rule("quarantine", _platform("quarantine.manage")),
                Rule("exercises", _platform("exercises.run")),
            ),
        ),
        Role(
            "admin",
            "manages users, tokens, sites and settings; no plant operation at all",
            (
                Rule(
                    "read",
                    _platform(
                        "status.read", "sites.read", "users.read", "settings.read", "policy.read", "pki.read"
                    ),
                ),
                Rule(
                    "manage",
                    _platform(
                        "sites.manage",
                        "users.manage",
                        "tokens.manage",
                        "settings.manage",
                        "plant.apply",
                        "pki.manage",
                    ),
                ),
                Rule("quarantine", _platform("quarantine.manage")),
            ),
        ),
        Role(
            "telemetry_source",
            "a device, gateway or script that pushes telemetry samples; sees nothing",
            (Rule("push", _platform("telemetry.write")),),
        ),
        Role(
            "auditor",
            "reads everything on the platform (every *.read), changes nothing",
            (Rule("read", _PLATFORM_READS),),
        ),
    )
}
"""The built-in roles by name; see docs/policy.md for the table."""


def builtin_model(grants: Iterable[Grant]) -> PolicyModel:
    """A policy model of the built-in roles and `grants`."""
    return PolicyModel(roles=dict(BUILTIN_ROLES), grants=tuple(grants))
