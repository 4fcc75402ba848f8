"""Drift: a running or exported ruleset compared with what the model compiles to.

Each difference is named by the comment of its rules (`conduit X channel Y`, `gateway-only asset
A`, ...): rules the model wants that are missing, rules present that the model does not have,
rules changed under the same comment, a changed chain policy, or the same rules in another order.
`ruleset_permits` reads what a ruleset lets through back as `Permit` values, for reachability.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from plantwarden.core.parsing import NotUtf8Text, utf8_text
from plantwarden.zones.firewall.errors import NftFailed, RulesetUnreadable
from plantwarden.zones.firewall.nftjson import read_ruleset
from plantwarden.zones.firewall.permits import listed_permits
from plantwarden.zones.firewall.render import Variant, compile_ruleset
from plantwarden.zones.firewall.rules import Rule, Ruleset, rule_text
from plantwarden.zones.plant.model import SiteModel
from plantwarden.zones.plant.permits import Permit


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the ruleset differs from the model: `kind` is missing, extra, changed, policy or
    order; `subject` names the rules (their comment)."""

    kind: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


def _nft_json(command: list[str]) -> Any:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        message = result.stderr.strip() or f"exit status {result.returncode}"
        if "No such file or directory" in message:
            raise RulesetUnreadable(f"the table is not loaded ({message})")
        raise NftFailed(f"{' '.join(command)} failed: {message}")
    return json.loads(result.stdout)


def running_document(table: str = "plantwarden", netns: str | None = None) -> Any:
    """`nft -j list table inet <table>` of the current or a named network namespace (hours in UTC)."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return _nft_json([*prefix, "env", "TZ=UTC", "nft", "-j", "list", "table", "inet", table])


def exported_document(path: Path, table: str = "plantwarden") -> Any:
    """An exported ruleset: nft JSON as it is, or nft text (read by loading it into a fresh, empty
    network namespace and listing it there; needs root). Hours are taken as UTC."""
    try:
        text = utf8_text(path.read_bytes())
    except OSError as error:
        raise RulesetUnreadable(f"cannot read {path}: {error.strerror}") from None
    except NotUtf8Text as error:
        raise RulesetUnreadable(f"{path} is not an nft listing: {error}") from None
    if not text.strip():
        raise RulesetUnreadable(f"{path} is empty: expected an nft listing of table inet {table}")
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise RulesetUnreadable(f"{path} is not valid JSON: {error}") from None
    script = f'nft -f "$1" && nft -j list table inet {table}'
    return _nft_json(["unshare", "--net", "env", "TZ=UTC", "sh", "-c", script, "sh", str(path)])


def _by_comment(rules: tuple[Rule, ...]) -> dict[str, list[Rule]]:
    grouped: dict[str, list[Rule]] = {}
    for rule in rules:
        grouped.setdefault(rule.comment, []).append(rule)
    return grouped


def _described(rules: Counter[Rule]) -> str:
    return "; ".join(rule_text(rule) for rule in rules.elements())


def compare(expected: Ruleset, actual: Ruleset) -> list[Difference]:
    """Every difference between the model's ruleset and the one read, named by rule comment."""
    differences: list[Difference] = []
    if expected.policy != actual.policy:
        differences.append(
            Difference("policy", "chain forward", f"policy {actual.policy}, the model says {expected.policy}")
        )
    wanted, found = _by_comment(expected.rules), _by_comment(actual.rules)
    for subject in [*wanted, *(c for c in found if c not in wanted)]:
        missing = Counter(wanted.get(subject, [])) - Counter(found.get(subject, []))
        extra = Counter(found.get(subject, [])) - Counter(wanted.get(subject, []))
        if missing and not found.get(subject):
            differences.append(Difference("missing", subject, _described(missing)))
        elif extra and not wanted.get(subject):
            differences.append(Difference("extra", subject, _described(extra)))
        elif missing or extra:
            wants, has = _described(missing) or "nothing more", _described(extra) or "nothing more"
            detail = f"the model has {wants}; found {has}"
            differences.append(Difference("changed", subject, detail))
    if not differences and expected.rules != actual.rules:
        order = ", ".join(dict.fromkeys(rule.comment for rule in actual.rules))
        differences.append(
            Difference("order", "chain forward", f"the model's rules in another order: {order}")
        )
    return differences


def drift(
    site: SiteModel,
    document: Any,
    *,
    variant: Variant = "normal",
    zone: str | None = None,
    table: str = "plantwarden",
    at: datetime,
) -> list[Difference]:
    """The differences between a listed ruleset and what the model compiles to at `at`."""
    expected = compile_ruleset(site, variant=variant, zone=zone, table=table, at=at)
    return compare(expected, read_ruleset(document, table))


def ruleset_permits(document: Any, table: str = "plantwarden") -> list[Permit]:
    """What a listed ruleset lets through, as permits, exactly: each accept rule minus every drop
    before it (gateway-only guards, islands), see `permits.listed_permits`."""
    return list(listed_permits(document, table))
