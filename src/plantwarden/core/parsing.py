"""Text forms shared by the CLI, the API and the file readers: whole numbers, decimal numbers and
HOST:PORT, in ASCII only (`str.isdigit()` and `float()` also take '²', Arabic-Indic digits or
'1_000', which then fail, or pass, further on); one line of text a person typed (a name, a
reason), kept whole or refused; and the text of a file, refused where it is not UTF-8."""

from __future__ import annotations

import re

from plantwarden.core.errors import InvalidInput

INTEGER = re.compile(r"-?[0-9]+")
"""An integer in ASCII digits (`str.isdigit()` accepts '²', which `int()` refuses)."""
NUMBER = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE)
"""A number as text, without surrounding blanks: ASCII digits, no '_' (`float()` takes '1_000'
and other scripts' digits)."""
_PORT = re.compile(r"[0-9]{1,5}")
MAX_PORT = 65_535


def host_port(text: str) -> tuple[str, int] | None:
    """HOST:PORT (an IPv6 host in brackets) as (host, port), port 0-65535; None when it is not."""
    host, separator, port = text.rpartition(":")
    host = host.strip("[]")
    if not separator or not host or not _PORT.fullmatch(port) or int(port) > MAX_PORT:
        return None
    return host, int(port)


ACTOR_LENGTH = 120
"""The longest name of who acts (`--by`, `--actor`): the narrowest of the columns that keep it."""


def one_line(value: str, what: str, limit: int, *, empty: str | None = None, trim: bool = True) -> str:
    """`value` without spaces at its ends, or `InvalidInput` naming `what` ("the reason"): longer
    than `limit` characters (cut to fit its column, it would lose its end unseen), or holding a
    line break, a tab or another control or format character (it would forge or reorder the lines
    that show it). `empty`: the error for an empty value (None: an empty value is taken). `trim`
    False: spaces at the ends are refused, not taken off (a name kept elsewhere as given)."""
    text = value.strip()
    if not trim and text != value:
        raise InvalidInput(f"{what} {value[:40]!r} starts or ends with a space")
    if not text and empty is not None:
        raise InvalidInput(empty)
    if len(text) > limit:
        raise InvalidInput(f"{what} has {len(text)} characters; at most {limit}")
    if not text.isprintable():
        raise InvalidInput(
            f"{what} {text[:40]!r} holds a line break, a tab or another control or format character: "
            "it is one line of printable characters"
        )
    return text


class NotUtf8Text(ValueError):
    """Bytes that are not UTF-8 text, and where the first bad byte is: `line` (from 1; lines end at
    line feeds), `column` (from 1, in characters: that line's characters before the byte, plus
    one), `offset` (in bytes from the start of the input, from 0) and `byte` (its value). The
    message names the line, the byte and the offset; a reader puts the file's name in front."""

    def __init__(self, line: int, column: int, offset: int, byte: int) -> None:
        super().__init__(f"not UTF-8 text (line {line}, byte 0x{byte:02x} at offset {offset})")
        self.line, self.column, self.offset, self.byte = line, column, offset, byte


def utf8_text(data: bytes) -> str:
    """`data` decoded as UTF-8, or `NotUtf8Text` at its first byte that is not (strict UTF-8: an
    encoded surrogate is refused too). A byte-order mark stays, as U+FEFF: a reader that takes one
    removes it."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        start = error.start
        line_start = data.rfind(b"\n", 0, start) + 1
        column = len(data[line_start:start].decode("utf-8")) + 1  # all good before the first bad byte
        raise NotUtf8Text(data.count(b"\n", 0, start) + 1, column, start, data[start]) from None
