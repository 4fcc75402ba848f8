"""Which port the PLCs' servers listen on, and whether an address and port can be bound."""

from __future__ import annotations

import errno
import logging
import socket

from plantwarden.core.errors import ConfigurationError, Conflict, InvalidInput
from plantwarden.sim.plant import Plc

log = logging.getLogger(__name__)

MODBUS_PORT = 502
FALLBACK_PORT = 5020
"""Where the servers listen when no port is given and 502 needs privileges this process lacks."""


def resolve_port(port: int | None, address: str) -> int:
    """`port` itself, or for None 502 when this process may bind it on `address`, else 5020."""
    if port is not None:
        if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
            raise InvalidInput(f"port {port!r} is not 0-65535")
        return port
    try:
        _probe(address, MODBUS_PORT)
    except PermissionError:
        log.info("port %d needs root or CAP_NET_BIND_SERVICE: Modbus on %d", MODBUS_PORT, FALLBACK_PORT)
        return FALLBACK_PORT
    except OSError:
        pass  # taken or unusable: starting says which
    return MODBUS_PORT


def check_bindable(plc: Plc, address: str, port: int) -> None:
    """Conflict if `address`:`port` is taken, ConfigurationError if this process cannot bind it."""
    where = f"PLC {plc.name} cannot listen on {address}:{port}"
    try:
        _probe(address, port)
    except PermissionError as error:
        raise ConfigurationError(f"{where}: ports below 1024 need root or CAP_NET_BIND_SERVICE") from error
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise Conflict(f"{where}: the address and port are already in use") from error
        raise ConfigurationError(f"{where}: {error.strerror or error}") from error


def _probe(address: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server binds
        probe.bind((address, port))
