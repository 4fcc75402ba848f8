"""Listening sockets, bound before a server says it serves.

uvicorn binds its own socket after start-up: an address in use (another server, a second
`plantwarden up`) was logged after "serving the console at ...", and the process exited with
status 3, which the supervisor restarted forever; the MQTT broker's ended in a traceback of its
broadcast loop. Binding first turns it into one clear error, at `plantwarden serve`, `devices
broker` and, checked before any process starts, at `plantwarden up` and `plantwarden demo`.
"""

from __future__ import annotations

import socket

from plantwarden.core.errors import ConfigurationError


def listening_socket(
    host: str, port: int, *, named_by: str = "settings server.host and server.port, or --host/--port"
) -> socket.socket:
    """A TCP socket bound to (host, port), as uvicorn would bind it; a `ConfigurationError` naming
    the address and what set it (`named_by`) when the system refuses it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        raise ConfigurationError(
            f"cannot listen on {shown}:{port}: {error.strerror or error} ({named_by};"
            " is another Plantwarden server running?)"
        ) from None
    return sock
