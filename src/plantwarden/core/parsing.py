"""Text forms shared by the CLI, the API and the file readers: whole numbers, decimal numbers and
HOST:PORT, in ASCII only (`str.isdigit()` and `float()` also take '²', Arabic-Indic digits or
'1_000', which then fail, or pass, further on)."""

from __future__ import annotations

import re

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
