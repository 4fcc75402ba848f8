"""A pymodbus client for talking to the PLCs' servers (tests, tools)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from plantwarden.core.errors import NotFound
from plantwarden.sim.modbus_server._pymodbus import AsyncModbusTcpClient


@contextlib.asynccontextmanager
async def modbus_client(
    host: str,
    port: int,
    *,
    timeout: float = 1.0,
    retries: int = 0,
    source_address: tuple[str, int] | None = None,
) -> AsyncIterator[AsyncModbusTcpClient]:
    """A connected pymodbus client (no automatic reconnection), closed on exit; NotFound if no
    server accepts the connection."""
    client = AsyncModbusTcpClient(
        host, port=port, timeout=timeout, retries=retries, source_address=source_address, reconnect_delay=0
    )
    try:
        if not await client.connect():
            raise NotFound(f"no Modbus server accepts connections on {host}:{port}")
        yield client
    finally:
        client.close()
        await asyncio.sleep(0)  # let the transport close its socket
