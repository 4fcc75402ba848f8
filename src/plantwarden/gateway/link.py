"""A client's connection to the gateway: a non-blocking socket the event loop drives directly.

TLS (mbaps) is an `ssl.SSLSocket` on that socket: OpenSSL reads and writes the kernel socket
itself, so an ADU costs one `recv` and one `send` that decrypt and encrypt in C. asyncio's own
TLS transport (`start_tls`, sslproto) passes every record through memory buffers and several Python
calls each way, which cost more than the gateway's decision on its latency path. Plain Modbus/TCP
clients use the same class without TLS.

The session is called back, not awaited: `on_data` after every read (the bytes are in
`incoming`, where the session takes its ADUs from; `eof` and `error` say when the stream ended),
`on_drained` when written bytes that had to wait for the client are all sent. `write` sends at
once when it can; `close` sends what was written first (for at most `CLOSE_GRACE` seconds), then a
TLS close_notify; `abort` cuts the connection. A session that has enough to do calls
`pause_reading` (the client's sends then back up in its own socket) and `resume_reading`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Any

CHUNK = 64 * 1024
HIGH_WATER = 256 * 1024
"""Bytes read but not taken by the session, or written but not sent, above which the link waits."""
CLOSE_GRACE = 0.5
"""Seconds `close` gives written bytes to leave before the connection is cut."""

_DISCARD_READS = 16
"""At most this many reads of `CHUNK` bytes are discarded before a socket is closed."""
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Link:
    """One accepted client connection; `start_tls` makes it an mbaps one."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        with contextlib.suppress(OSError):  # not every socket family has it
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._loop = asyncio.get_running_loop()
        self._sock: socket.socket = sock
        self._fd = sock.fileno()
        self._peername: Any = sock.getpeername()  # OSError: the client already left
        self._sockname: Any = sock.getsockname()
        self.incoming = bytearray()
        """What arrived and the session did not take yet."""
        self.eof = False
        self.error: OSError | None = None
        self.on_data: Callable[[], None] = _nothing
        self.on_drained: Callable[[], None] = _nothing
        self._outgoing: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._reading = False
        self._writing = False
        self._closing = False
        self._closed = False
        self._cut_done = False
        self._grace: asyncio.TimerHandle | None = None
        self._handshake: tuple[asyncio.Future[None], Callable[[int], object]] | None = None
        """The handshake's wait for the socket, while there is one (closing ends it)."""

    # --- TLS --------------------------------------------------------------------------------

    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> None:
        """The server side of a TLS handshake on this connection, within `timeout` seconds.
        ssl.SSLError (refused: the client's certificate, the protocol), OSError or TimeoutError."""
        if self._reading or self.incoming:
            raise RuntimeError("start_tls must come before the first read")
        tls = context.wrap_socket(self._sock, server_side=True, do_handshake_on_connect=False)
        self._sock = tls
        self._fd = tls.fileno()
        async with asyncio.timeout(timeout):
            while True:
                try:
                    tls.do_handshake()
                    return
                except ssl.SSLWantReadError:
                    await self._ready(self._loop.add_reader, self._loop.remove_reader)
                except ssl.SSLWantWriteError:
                    await self._ready(self._loop.add_writer, self._loop.remove_writer)

    async def _ready(self, add: Any, remove: Any) -> None:
        if self._closing:
            raise ConnectionError("the connection was closed during the TLS handshake")
        ready: asyncio.Future[None] = self._loop.create_future()
        self._handshake = (ready, remove)
        add(self._fd, _set, ready)
        try:
            await ready
        finally:
            if self._handshake is not None:
                self._handshake = None
                remove(self._fd)

    # --- reading ----------------------------------------------------------------------------

    def resume_reading(self) -> None:
        """Read what arrives into `incoming`, calling `on_data` after each read."""
        if not self._reading and not self._closing and not self.eof and self.error is None:
            self._reading = True
            self._loop.add_reader(self._fd, self._on_readable)

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def _on_readable(self) -> None:
        sock, incoming = self._sock, self.incoming
        tls = isinstance(sock, ssl.SSLSocket)
        while True:
            try:
                data = sock.recv(CHUNK)
            except _WOULD_BLOCK:
                break
            except (ssl.SSLError, OSError) as error:
                self.error = error if isinstance(error, OSError) else ConnectionError(str(error))
                self.pause_reading()
                break
            if not data:
                self.eof = True
                self.pause_reading()
                break
            incoming += data
            if len(incoming) >= HIGH_WATER or not tls or not sock.pending():  # type: ignore[attr-defined]
                break  # a plain recv took what there was; OpenSSL holds no decrypted bytes
        self.on_data()

    # --- writing ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send `data` now, or queue it while the socket is full (nothing is written once closing)."""
        if self._closing or self.error is not None or not data:
            return
        if not self._outgoing:
            try:
                sent = self._sock.send(data)
            except _WOULD_BLOCK:
                sent = 0
            except (ssl.SSLError, OSError) as error:
                self._fail(error)
                return
            if sent == len(data):
                return
            data = data[sent:]  # a TLS write is whole or nothing: retried whole, as OpenSSL wants
        self._outgoing.append(data)
        self._queued += len(data)
        if not self._writing:
            self._writing = True
            self._loop.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        outgoing = self._outgoing
        while outgoing:
            data = outgoing[0]
            try:
                sent = self._sock.send(data)
            except _WOULD_BLOCK:
                return
            except (ssl.SSLError, OSError) as error:
                self._fail(error)
                return
            self._queued -= sent
            if sent < len(data):
                outgoing[0] = data[sent:]
                return
            outgoing.popleft()
        self._writing = False
        self._loop.remove_writer(self._fd)
        if self._closing:
            self._finish()
        else:
            self.on_drained()

    def get_write_buffer_size(self) -> int:
        return self._queued

    # --- closing ----------------------------------------------------------------------------

    def detach(self) -> None:
        """Call back no one any more (the session ended)."""
        self.on_data = self.on_drained = _nothing

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; send what was written (for at most `CLOSE_GRACE` s), then close."""
        if self._closing:
            return
        self._closing = True
        self.pause_reading()
        if self._outgoing:
            self._grace = self._loop.call_later(CLOSE_GRACE, self._finish)
        else:
            self._finish()

    def abort(self) -> None:
        """Close at once, dropping what was not sent."""
        self._closing = True
        self._outgoing.clear()
        self._queued = 0
        self._finish(notify=False)

    def _fail(self, error: BaseException) -> None:
        """Writing failed: the connection is gone (the session hears of it as the stream's end)."""
        self.error = error if isinstance(error, OSError) else ConnectionError(str(error))
        self._outgoing.clear()
        self._queued = 0
        self._closing = True
        self._finish(notify=False)
        self._loop.call_soon(self._ended)  # not from inside the session's own write

    def _ended(self) -> None:
        self.on_data()

    def _finish(self, *, notify: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        if self._grace is not None:
            self._grace.cancel()
        self.pause_reading()
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)
        if self._handshake is not None:  # the handshake in progress ends now, not at its timeout
            ready, remove = self._handshake
            self._handshake = None
            remove(self._fd)
            if not ready.done():
                ready.set_exception(ConnectionError("the connection was closed during the TLS handshake"))
        tls = isinstance(self._sock, ssl.SSLSocket)
        if notify and tls and not self._outgoing and self.error is None and not self._close_notify():
            # the socket is full: close_notify waits for room, within the grace
            self._loop.add_writer(self._fd, self._notify_again)
            self._grace = self._loop.call_later(CLOSE_GRACE, self._cut)
            return
        self._cut()

    def _close_notify(self) -> bool:
        """Send TLS close_notify (the client's own is not awaited); False while the socket is full."""
        try:
            self._sock.unwrap()  # type: ignore[attr-defined]
        except ssl.SSLWantWriteError:
            return False
        except (ssl.SSLError, OSError, ValueError):
            pass  # SSLWantReadError: sent, and the client's answer not there yet; or the client left
        return True

    def _notify_again(self) -> None:
        if self._close_notify():
            self._cut()

    def _cut(self) -> None:
        """Close the socket (once)."""
        if self._cut_done:
            return
        self._cut_done = True
        if self._grace is not None:
            self._grace.cancel()
        self._loop.remove_writer(self._fd)
        _discard_unread(self._sock)
        self._sock.close()

    # --- what the gateway asks of a connection ----------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """ "peername", "sockname", or "ssl_object" (the `ssl.SSLSocket`, once TLS)."""
        if name == "peername":
            return self._peername
        if name == "sockname":
            return self._sockname
        if name == "ssl_object":
            return self._sock if isinstance(self._sock, ssl.SSLSocket) else default
        return default


def _discard_unread(sock: socket.socket) -> None:
    """Read away what the client sent and nobody will read: closing a socket that holds unread
    bytes answers with a reset, and the client would lose the answers still on their way."""
    for _ in range(_DISCARD_READS):
        try:
            if not socket.socket.recv(sock, CHUNK):  # the bytes as they are: TLS or not
                return
        except (BlockingIOError, InterruptedError, OSError):
            return


def _nothing() -> None:
    pass


def _set(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
