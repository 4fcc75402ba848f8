"""Deviations as alerts: one per broken fact (its dedup key names the site, kind and key, so a
deviation seen again counts an occurrence of the open alert), titled with the fact broken and
described with the values learned and seen, named as an engineer reads them (`naming`: asset ids,
protocol and function names, registers with their engineering values) when a plant model is
given."""

from __future__ import annotations

from typing import Any

from plantwarden.alerts.models import Severity
from plantwarden.alerts.services import AlertDraft
from plantwarden.core.clock import from_nanoseconds
from plantwarden.core.records.schema import Protocol
from plantwarden.detection.baselines.checker import POLL_TOLERANCE, POLL_WINDOW, Deviation
from plantwarden.detection.baselines.facts import FactKind
from plantwarden.detection.baselines.keys import TABLES
from plantwarden.detection.baselines.naming import (
    REGISTER_WORDS,
    PlantNames,
    Setpoint,
    function_name,
    number,
    protocol_name,
    range_text,
    read_kind,
    transport_name,
)

DETECTOR = "baseline"
EVIDENCE_KIND = "baseline-deviation"
NO_NAMES = PlantNames()


def rule_of(deviation: Deviation) -> str:
    """The rule id of a deviation: `pw-baseline-new-<kind>` or `pw-baseline-<kind>-changed`."""
    kind = deviation.key.kind
    if kind is FactKind.POLLING:
        return "pw-baseline-polling-changed"
    if kind is FactKind.SETPOINT:
        return "pw-baseline-setpoint-outside"
    if kind is FactKind.WRITTEN_RANGE:
        return "pw-baseline-new-written-range"
    return f"pw-baseline-new-{kind.value}"


RULES: dict[str, tuple[str, str, Severity, tuple[str, ...]]] = {
    # rule id: name, title, severity, ATT&CK for ICS techniques
    "pw-baseline-new-asset": ("New asset", "New asset", Severity.MEDIUM, ("T0846",)),
    "pw-baseline-new-edge": ("New communication edge", "New edge", Severity.MEDIUM, ("T0886",)),
    "pw-baseline-new-service": ("New function code", "New function", Severity.HIGH, ("T0855",)),
    "pw-baseline-new-written-range": (
        "New register range written",
        "New registers written",
        Severity.HIGH,
        ("T0836",),
    ),
    "pw-baseline-polling-changed": ("Polling period changed", "Polling changed", Severity.LOW, ()),
    "pw-baseline-setpoint-outside": (
        "Setpoint outside its learned range",
        "Setpoint outside range",
        Severity.HIGH,
        ("T0836", "T0831"),
    ),
}


def dedup_key(deviation: Deviation) -> str:
    key = deviation.key
    return f"baseline:{key.site}:{key.kind.value}:{key.text}"


def iso(ns: int) -> str:
    return from_nanoseconds(ns).isoformat()


class Wording:
    """The words of one deviation's alert: `subject` (the title after the rule's), `what` (the
    description's first sentence: the fact broken and the values), `names` (for the evidence)."""

    def __init__(self, deviation: Deviation, names: PlantNames) -> None:
        self.deviation, self.names = deviation, names
        self.site = deviation.key.site
        self.fields: dict[str, Any] = deviation.key.named()
        self.named: dict[str, Any] = {}
        kind = deviation.key.kind
        if kind is FactKind.ASSET:
            self.subject, self.what = self._asset()
        elif kind in (FactKind.EDGE, FactKind.SERVICE):
            self.subject, self.what = self._edge()
        elif kind is FactKind.WRITTEN_RANGE:
            self.subject, self.what = self._written()
        elif kind is FactKind.POLLING:
            self.subject, self.what = self._polling()
        else:
            self.subject, self.what = self._setpoint()

    def host(self, field: str) -> str:
        text = self.names.host(self.site, str(self.fields[field]))
        self.named[field] = text
        return text

    def protocol(self) -> str:
        text = protocol_name(int(self.fields["protocol"]))
        self.named["protocol"] = text
        return text

    def function(self) -> str:
        text = function_name(int(self.fields["protocol"]), int(self.fields["function"]))
        self.named["function"] = text
        return text

    def registers(self, plural: bool = True) -> str:
        """What the key's addresses count: its table's (coils, holding registers), else Modbus
        registers or another protocol's addresses."""
        table = self.fields.get("table")
        if table in TABLES:
            return TABLES[str(table)][1 if plural else 0]
        word = "register" if int(self.fields["protocol"]) == Protocol.MODBUS else "address"
        return word + ("es" if word == "address" else "s") if plural else word

    @property
    def holding(self) -> bool:
        """Whether the key's addresses are holding registers (the register map names those)."""
        return self.fields.get("table") == "holding"

    def assets(self) -> list[str]:
        """The alert's assets: asset ids, else addresses (never a register or unit number)."""
        ends = ("address",) if self.deviation.key.kind is FactKind.ASSET else ("client", "server")
        return [self.names.asset(self.site, str(self.fields[f])) for f in ends if f in self.fields]

    def _asset(self) -> tuple[str, str]:
        host = self.host("address")
        return host, f"{host} was never seen at site {self.site} while the baseline learned"

    def _edge(self) -> tuple[str, str]:
        client, server, protocol = self.host("client"), self.host("server"), self.protocol()
        transport = transport_name(int(self.fields["transport"]))
        self.named["transport"] = transport
        port = f"{transport}/{self.fields['port']}"
        if self.deviation.key.kind is FactKind.EDGE:
            known = int(self.fields["protocol"]) != Protocol.UNKNOWN
            return (
                f"{client} -> {server} " + (f"{protocol} {port}" if known else port),
                f"{client} talked to {server} with {protocol} over {transport} port "
                f"{self.fields['port']}, a connection never seen while learning",
            )
        function = self.function()
        operation = self.deviation.observed.get("operation")
        kind = f", a {operation}" if operation else ""
        return (
            f"{client} -> {server} {protocol} {function}",
            f"{client} used {protocol} {function}{kind} on {server} ({port}), "
            "never seen on this connection while learning",
        )

    def _unit(self) -> str:
        return f"{self.host('server')} unit {self.fields['unit']}"

    def _written(self) -> tuple[str, str]:
        server, unit = str(self.fields["server"]), int(self.fields["unit"])
        where, protocol = self._unit(), self.protocol()
        learned = (self.deviation.learned or {}).get("ranges", [])
        seen = self.deviation.observed.get("ranges", [])
        fresh = [r for r in seen if not any(a <= r[0] and r[1] <= b for a, b in learned)] or seen
        names = self.names if self.holding else NO_NAMES
        written = names.covered(self.site, server, unit, fresh)
        self.named["registers"] = [
            r.name
            for low, high in fresh
            for r in names.registers("holding", self.site, server, unit, low, high)
        ]
        if not learned:
            return (
                f"{where} {self.registers()} {written}",
                f"{protocol} writes to {where} {self.registers()} {written}: "
                "this unit was never written while learning",
            )
        known = names.covered(self.site, server, unit, learned)
        return (
            f"{where} {self.registers()} {written}",
            f"{protocol} writes to {where} {self.registers()} {written}, outside those written while "
            f"learning: {known}",
        )

    def _polling(self) -> tuple[str, str]:
        client, server, function = self.host("client"), self.host("server"), self.function()
        register, unit = int(self.fields["address"]), int(self.fields["unit"])
        kind = read_kind(int(self.fields["protocol"]), int(self.fields["function"]))
        if kind is None:  # not a Modbus read of a register map's space: no names
            word, names = self.registers(plural=False), []
        else:
            word = REGISTER_WORDS[kind]
            names = self.names.registers(
                kind, self.site, str(self.fields["server"]), unit, register, register
            )
        what = f"{word} {register}" + (f" ({names[0].name})" if names else "")
        if names:
            self.named["register"] = names[0].name
        read = f"{client} reads {server} unit {self.fields['unit']} {what} with {self.protocol()} {function}"
        seen = int(self.deviation.observed.get("median_ns", 0)) / 1e9
        learned = self.deviation.learned
        if learned is None:
            return f"{client} -> {server} {what}", f"{read} every {seconds(seen)}, never seen while learning"
        base = int(learned.get("median_ns", 0)) / 1e9
        return (
            f"{client} -> {server} {what} every {seconds(seen)}, learned {seconds(base)}",
            f"{read} every {seconds(seen)} (the median of the last {POLL_WINDOW} intervals), learned "
            f"every {seconds(base)} (over {learned.get('intervals', 0)} intervals): more than "
            f"{POLL_TOLERANCE:.0%} off",
        )

    def _setpoint(self) -> tuple[str, str]:
        server, unit, register = (
            str(self.fields["server"]),
            int(self.fields["unit"]),
            int(self.fields["address"]),
        )
        seen, learned = self.deviation.observed, self.deviation.learned or {}
        low, high = float(seen["min"]), float(seen["max"])
        raw = f"raw {range_text(low, high)}"
        known = self.names.setpoint(self.site, server, unit, register) if self.holding else None
        if known is None:
            label = f"{self._unit()} {self.registers(plural=False)} {register}"
            value, scale, unit_text, where = raw, "", "", ""
        else:
            self.named["register"] = known.register.name
            label, unit_text = known.label, known.unit
            where = f"; {known.register.name} is holding register {register} of {self._unit()}"
            value = known.span(low, high) or raw
            scale = f", scale {number(known.register.scale)}" if value != raw else ""
        written = f"{label} written {value}"
        detail = f" ({raw}{scale})" if value != raw else ""
        safe = learned.get("safe") or seen.get("safe")
        if safe is not None and int(seen.get("outside_safe", 0)) > 0:
            limits = f"{range_text(float(safe[0]), float(safe[1]))}{unit_text}"
            history = self._learned_writes(learned, known)
            return (
                f"{written}, safe {limits}",
                f"{written}, outside its safe range {limits} in the register map{detail}: "
                f"{seen['outside_safe']} of {self.deviation.count} writes outside{history}{where}",
            )
        usual = self._learned_writes(learned, known) or "; nothing learned"
        return (
            f"{written}{detail}",
            f"{written}{detail}, outside the values written while learning{usual}{where}",
        )

    def _learned_writes(self, learned: dict[str, Any], known: Setpoint | None) -> str:
        if "min" not in learned:
            return ""
        low, high = float(learned["min"]), float(learned["max"])
        raw = f"raw {range_text(low, high)}"
        value = known.span(low, high) if known is not None else None
        return f"; learned {value} ({raw})" if value else f"; learned {raw}"


def seconds(value: float) -> str:
    return f"{value:.3g} s"


SETPOINT_UNITS = {
    "safe": "engineering units (the register map's safe_range)",
    "min": "raw written word",
    "max": "raw written word",
}
"""What a setpoint's values count: the safe range is the register map's, in engineering units;
the values written are the raw words of the records (raw / scale is the engineering value)."""


def evidence(deviation: Deviation, names: PlantNames = NO_NAMES) -> dict[str, Any]:
    """The evidence item naming the fact broken and its values (read back by `accept`); `names`
    holds the key's parts as the alert names them, `units` (setpoints) what their values count."""
    units = {"units": SETPOINT_UNITS} if deviation.key.kind is FactKind.SETPOINT else {}
    return {
        "kind": EVIDENCE_KIND,
        "fact": deviation.key.kind.value,
        "site": deviation.key.site,
        "key": deviation.key.text,
        "fields": deviation.key.named(),
        "names": Wording(deviation, names).named,
        "learned": deviation.learned,
        "observed": deviation.observed,
        "scopes": list(deviation.scopes),
        "records": deviation.count,
        "first": iso(deviation.first_ns),
        "last": iso(deviation.last_ns),
        **units,
    }


def draft(deviation: Deviation, names: PlantNames = NO_NAMES) -> AlertDraft:
    """The alert a deviation raises, named with the plant model's `names` (`Scoper.names`)."""
    rule = rule_of(deviation)
    name, title, severity, techniques = RULES[rule]
    wording = Wording(deviation, names)
    records = f"{deviation.count} record{'' if deviation.count == 1 else 's'}"
    when = (
        f"{records}, {iso(deviation.first_ns)}"
        if deviation.first_ns == deviation.last_ns
        else f"{records} from {iso(deviation.first_ns)} to {iso(deviation.last_ns)}"
    )
    return AlertDraft(
        site=deviation.key.site,
        title=f"{title}: {wording.subject}",
        severity=severity,
        detector=DETECTOR,
        rule_id=rule,
        rule_name=name,
        description=f"{wording.what}. Seen in {when}; protected by {', '.join(deviation.scopes)}.",
        techniques=techniques,
        assets=wording.assets(),
        evidence=[evidence(deviation, names), *deviation.samples],
        dedup_key=dedup_key(deviation),
        seen_at=from_nanoseconds(deviation.last_ns),
    )
