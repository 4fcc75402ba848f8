"""A control socket: a Unix socket in the data directory, readable by its owner only; one JSON
line in, one JSON line out (`{"error": message}` when the request failed).

The running simulated plant listens on `plant_control_path` (`sim/control.py` says what it takes):
`plantwarden sim attack` and the console's exercise page ask it to carry out an attack, so that
its traffic goes through the plant's tap like everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from plantwarden.core.errors import InvalidInput, NotFound, PlantwardenError

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_REQUEST = 64 * 1024


def plant_control_path(data_dir: Path) -> Path:
    """Where the running simulated plant of the data directory listens for requests."""
    return data_dir / "sim" / "control.sock"


async def serve_control(path: Path, handler: Handler) -> asyncio.Server:
    """Listen on `path` (replacing a stale socket), answering each request line with `handler`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if len(line) > MAX_REQUEST:
                raise InvalidInput("the request is too long")
            reply = await handler(json.loads(line))
        except PlantwardenError as error:
            reply = {"error": error.message}
        except (ValueError, TypeError, KeyError) as error:
            reply = {"error": f"a malformed request: {error}"}
        writer.write(json.dumps(reply).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(answer, path=str(path), limit=MAX_REQUEST)
    path.chmod(0o600)
    return server


async def ask(path: Path, request: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
    """Send `request` to the plant listening on `path` and read its answer, all within `timeout`
    seconds (TimeoutError); NotFound if none is running."""
    async with asyncio.timeout(timeout):
        try:
            reader, writer = await asyncio.open_unix_connection(str(path), limit=16 * 1024 * 1024)
        except (FileNotFoundError, ConnectionRefusedError) as error:
            raise NotFound(f"no running plant listens on {path}") from error
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
    if not line:
        raise PlantwardenError("the plant stopped before it answered (was it shut down?)")
    try:
        reply: dict[str, Any] = json.loads(line)
    except ValueError as error:
        raise PlantwardenError(f"the plant's answer is not JSON: {error}") from None
    if not isinstance(reply, dict):
        raise PlantwardenError("the plant's answer is not a JSON object")
    if "error" in reply:
        raise PlantwardenError(str(reply["error"]))
    return reply
