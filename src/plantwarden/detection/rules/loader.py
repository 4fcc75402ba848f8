"""Rule directories: every `*.yaml` / `*.yml` file loaded, broken files refused one by one, and the
set reloaded when a file changes.

`RuleSet.load(directory)` reads every rule file (sorted by name, subdirectories included); a file
with a problem is refused as a whole, with file:line:column and the reason in `refused`, while
the other files load. A rule id found in two files is refused in the second. `reload_if_changed`
compares each file's modification time and size with those of the last load (a directory scan,
no reading), and only then reads the directory again; callers swap in the new set in one
assignment, so a batch is always checked by one whole set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from plantwarden.detection.rules.format import RuleFileError, read_rule_file
from plantwarden.detection.rules.model import Rule
from plantwarden.zones.plant.source import Problem

PACK = Path(__file__).resolve().parent.parent / "pack"
"""The rule pack shipped with Plantwarden."""
SUFFIXES = (".yaml", ".yml")

Stamp = tuple[tuple[str, int, int], ...]


def rule_files(directory: Path) -> list[Path]:
    """The rule files of a directory and its subdirectories, by path."""
    if not directory.is_dir():
        raise RuleFileError([Problem(str(directory), 1, 1, "is not a directory of rule files")])
    return sorted(p for p in directory.rglob("*") if p.suffix in SUFFIXES and p.is_file())


def stamp(files: list[Path]) -> Stamp:
    """Name, modification time and size of each file (what `reload_if_changed` compares)."""
    found = []
    for path in files:
        try:
            info = path.stat()
        except OSError:
            continue
        found.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(found)


@dataclass(frozen=True)
class RuleSet:
    """The rules of a directory as last loaded, and the files refused then."""

    directory: Path
    rules: tuple[Rule, ...]
    refused: tuple[Problem, ...] = ()
    stamp: Stamp = field(default=(), repr=False)

    @classmethod
    def load(cls, directory: Path) -> RuleSet:
        """Every rule file of `directory`; a broken one is left out and its problems kept."""
        files = rule_files(directory)
        before = stamp(files)  # taken before reading: a file written meanwhile is read again next time
        rules: list[Rule] = []
        refused: list[Problem] = []
        seen: dict[str, Rule] = {}
        for path in files:
            try:
                found = read_rule_file(path)
            except RuleFileError as error:
                refused += error.problems
                continue
            clash = next((r for r in found if r.id in seen), None)
            if clash is not None:
                first = seen[clash.id].where
                refused.append(
                    Problem(str(path), clash.line, 1, f"rule id {clash.id!r} is already used in {first}")
                )
                continue
            seen.update({r.id: r for r in found})
            rules += found
        return cls(directory, tuple(rules), tuple(refused), before)

    def usable(self) -> RuleSet:
        """This set, to run, or `RuleFileError` when a file of it was refused or it holds no rule:
        run without them, the sensor (or a check) would miss what they look for unseen."""
        if self.refused:
            raise RuleFileError(self.refused)
        if not self.rules:
            raise RuleFileError([Problem(str(self.directory), 1, 1, "holds no rule file (*.yaml, *.yml)")])
        return self

    def changed(self) -> bool:
        """Whether a rule file was added, removed or modified since this set was loaded."""
        try:
            return stamp(rule_files(self.directory)) != self.stamp
        except RuleFileError:
            return True

    def reload_if_changed(self) -> RuleSet | None:
        """The set loaded again when a file changed (None when nothing did)."""
        if not self.changed():
            return None
        try:
            return RuleSet.load(self.directory)
        except RuleFileError as error:
            return RuleSet(self.directory, (), error.problems, ())

    def by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in self.rules}
