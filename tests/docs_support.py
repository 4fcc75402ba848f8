"""What the README and docs/ show of the product, read out of their Markdown: the `plantwarden`
command lines (in code blocks and inline code) and the server paths. Tests check each against the
real command tree and the real routes, so that the docs cannot drift from what runs."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")))

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`([^`]+)`")
_COMMAND = re.compile(r"^(?:\$ )?(?:[A-Z_][A-Z0-9_]*=\S+ )*(?:\S*/)?plantwarden(?: (?P<rest>.*)|$)")
_METHOD_PATH = re.compile(r"\b(?P<method>GET|POST|PUT|PATCH|DELETE) +(?P<path>/[\w/{}.:~-]*)")
_API_PATH = re.compile(r"^(?P<path>/(?:api/v1|\.well-known)/[\w/{}.:-]*)(?:\?\S*)?$")


@dataclass(frozen=True)
class Mention:
    """One thing a document shows, and where."""

    document: Path
    line: int
    text: str
    bare: bool = False
    """A command line written without the program's name (`sensor run --pcap`)."""

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def _lines(document: Path) -> Iterator[tuple[int, str, bool]]:
    """(line number, line, whether it sits in a fenced code block)."""
    in_block = False
    for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), 1):
        if _FENCE.match(line):
            in_block = not in_block
            continue
        yield number, line, in_block


def command_lines(document: Path, bare: Collection[str] = ()) -> Iterator[Mention]:
    """Each `plantwarden ...` command line: the text after `plantwarden`. A code block's line that
    ends in a backslash continues on the next; `\\|` (a pipe escaped in a table) reads as `|`. Inline
    code that starts with a word of `bare` and goes on (`sensor run --pcap`, as prose writes a
    command without the program's name) counts too."""
    pending: tuple[int, str] | None = None
    for number, line, in_block in _lines(document):
        if in_block:
            text = line.strip()
            if pending is not None:
                pending = (pending[0], pending[1] + " " + text.removesuffix("\\"))
                if not text.endswith("\\"):
                    yield Mention(document, pending[0], pending[1])
                    pending = None
                continue
            match = _COMMAND.match(text)
            if match is None:
                continue
            rest = match.group("rest") or ""
            if text.endswith("\\"):
                pending = (number, rest.removesuffix("\\"))
            else:
                yield Mention(document, number, rest)
        else:
            for code in _INLINE_CODE.findall(line):
                code = code.replace("\\|", "|")
                match = _COMMAND.match(code)
                if match is not None:
                    yield Mention(document, number, match.group("rest") or "")
                elif code.split(" ", 1)[0] in bare and " " in code.strip():
                    yield Mention(document, number, code, bare=True)


def server_paths(document: Path) -> Iterator[tuple[Mention, str | None]]:
    """Each server path a document names, with its method where one is written (`GET /api/v1/x`);
    a bare path in inline code counts when it is under /api/v1 or /.well-known."""
    for number, line, _ in _lines(document):
        for match in _METHOD_PATH.finditer(line):
            path = match.group("path").rstrip(".:")
            yield Mention(document, number, path), match.group("method")
        for code in _INLINE_CODE.findall(line):
            found = _API_PATH.match(code.strip())
            if found is not None:
                yield Mention(document, number, found.group("path").rstrip(".:")), None
