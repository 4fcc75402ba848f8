"""The gateway's client connection (`Link`) on real loopback sockets.

Each test accepts a connection on 127.0.0.1 and wraps it in a `Link` inside a running event loop;
the client is a plain socket used from the test (small sends) or from a thread (anything that may
block), or that socket wrapped by `ssl` with a certificate from the platform PKI of
`tests.unit.gateway.peers`. Every scenario runs with a loop exception handler that records what
escaped into the loop, and the test fails if anything did.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import select
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from plantwarden.gateway.identity import server_context
from plantwarden.gateway.link import CHUNK, CLOSE_GRACE, HIGH_WATER, Link
from tests.unit.gateway.peers import ClientFiles, Pki
from tests.unit.gateway.support import adu, read_holding

PEER_TIMEOUT = 2.0
"""Seconds a blocking client call may take before the test fails instead of hanging."""


@dataclass
class Tls:
    """The gateway's server context and what clients present."""

    pki: Pki
    server: ssl.SSLContext
    operator: ClientFiles
    foreign: ClientFiles


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    directory: Path = tmp_path_factory.mktemp("link-pki")
    pki = Pki.create(directory)
    yield Tls(
        pki, server_context(pki.server), pki.client("hmi-1", "operator"), pki.foreign_client("x", "operator")
    )
    pki.store.close()


# --- running a scenario -----------------------------------------------------------------------


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `scenario` in a fresh event loop; fail if any exception reached the loop's handler."""
    escaped: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: escaped.append(context))
        await asyncio.wait_for(scenario(), 10)

    asyncio.run(main())
    assert escaped == []


async def until(condition: Callable[[], object], what: str, timeout: float = 1.5) -> None:
    """Wait (letting the loop run) until `condition()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.002)


@dataclass
class Connection:
    link: Link
    accepted: socket.socket
    """The socket the link was made from (a TLS link detaches it: its fd then is the SSLSocket's)."""
    client: socket.socket
    data_calls: int = 0
    eof_at_calls: list[bool] = field(default_factory=list)
    drained_sizes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.link.on_data = self._on_data
        self.link.on_drained = lambda: self.drained_sizes.append(self.link.get_write_buffer_size())

    def _on_data(self) -> None:
        self.data_calls += 1
        self.eof_at_calls.append(self.link.eof)


@contextlib.asynccontextmanager
async def connected(
    *, client_rcvbuf: int | None = None, link_sndbuf: int | None = None
) -> AsyncIterator[Connection]:
    """A Link on an accepted loopback connection, and its client (blocking, with a timeout).
    `client_rcvbuf`: a small receive buffer for the client, so that a link's writes back up soon;
    `link_sndbuf`: a small send buffer for the link's socket, so that its sends are cut short."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.socket()
        if client_rcvbuf is not None:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, client_rcvbuf)
        client.settimeout(PEER_TIMEOUT)
        client.connect(listener.getsockname())
        accepted, _ = listener.accept()  # the connection is already in the backlog
    if link_sndbuf is not None:
        accepted.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, link_sndbuf)
    connection = Connection(Link(accepted), accepted, client)
    try:
        yield connection
    finally:
        connection.link.abort()
        client.close()
        connection.client.close()  # the TLS client that took it over, if there is one
        accepted.close()


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def read_to_end(sock: socket.socket, size: int = CHUNK) -> tuple[bytes, BaseException | None]:
    """Everything the peer receives (`size` bytes at a time) until EOF, and the error that ended
    it instead (if one did)."""
    received = bytearray()
    try:
        while data := sock.recv(size):
            received += data
    except OSError as error:  # ssl.SSLError is one
        return bytes(received), error
    return bytes(received), None


def read_exactly(sock: socket.socket, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        data = sock.recv(min(CHUNK, size - len(received)))
        if not data:
            break
        received += data
    return bytes(received)


PAYLOAD = random.Random(802).randbytes(8 * 1024 * 1024)  # noqa: S311 - test bytes, not secrets


def fill(link: Link, *, extra_chunks: int = 2) -> int:
    """Write PAYLOAD in chunks until the link has to queue, then `extra_chunks` more; the count
    of bytes written. The client must not be reading."""
    written = 0
    while link.get_write_buffer_size() == 0:
        assert written < len(PAYLOAD), "8 MiB went out without the socket ever being full"
        link.write(PAYLOAD[written : written + CHUNK])
        written += CHUNK
    for _ in range(extra_chunks):
        link.write(PAYLOAD[written : written + CHUNK])
        written += CHUNK
    return written


def certificate_der(files: ClientFiles) -> bytes:
    return x509.load_pem_x509_certificate(files.certificate.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )


async def handshake(connection: Connection, tls: Tls, files: ClientFiles | None) -> ssl.SSLSocket:
    """The client's TLS handshake (in a thread) against the link's `start_tls`, both completed."""
    context = tls.pki.client_context(files)
    client, _ = await asyncio.gather(
        asyncio.to_thread(
            context.wrap_socket, connection.client, server_hostname="127.0.0.1", suppress_ragged_eofs=False
        ),
        connection.link.start_tls(tls.server, timeout=PEER_TIMEOUT),
    )
    connection.client = client  # wrap_socket took over the plain client socket
    return client


# --- 1. reading a plain connection -----------------------------------------------------------


def test_bytes_from_the_client_arrive_in_incoming_and_on_data_is_called() -> None:
    async def scenario() -> None:
        async with connected() as c:
            assert c.link.get_extra_info("peername") == c.client.getsockname()
            assert c.link.get_extra_info("sockname") == c.client.getpeername()
            assert c.link.get_extra_info("ssl_object") is None
            c.link.resume_reading()
            c.client.sendall(b"first")
            await until(lambda: c.link.incoming == b"first", "the first send arrives")
            assert c.data_calls >= 1
            calls = c.data_calls
            pieces = [bytes([n]) * (n * 100 + 1) for n in range(1, 9)]
            for piece in pieces:
                c.client.sendall(piece)
            await until(lambda: c.link.incoming == b"first" + b"".join(pieces), "every send arrives")
            assert c.data_calls > calls
            assert not c.link.eof and c.link.error is None

    run(scenario)


def test_a_client_that_closes_gives_eof_and_one_more_on_data() -> None:
    async def scenario() -> None:
        async with connected() as c:
            c.link.resume_reading()
            c.client.sendall(b"last words")
            c.client.close()
            await until(lambda: c.link.eof, "eof")
            assert c.link.incoming == b"last words"
            assert c.eof_at_calls[-1] is True  # the session heard of the end
            assert c.link.error is None
            c.link.resume_reading()  # nothing more to read: no reader comes back
            assert not asyncio.get_running_loop().remove_reader(c.accepted.fileno())

    run(scenario)


def test_a_client_that_half_closes_still_gets_the_answer() -> None:
    async def scenario() -> None:
        async with connected() as c:
            c.link.resume_reading()
            c.client.sendall(b"request")
            c.client.shutdown(socket.SHUT_WR)
            await until(lambda: c.link.eof, "eof")
            c.link.write(b"answer")
            c.link.close()
            assert await asyncio.to_thread(read_to_end, c.client) == (b"answer", None)

    run(scenario)


def test_a_reset_from_the_client_ends_the_stream_without_an_exception_in_the_loop() -> None:
    async def scenario() -> None:
        async with connected() as c:
            c.link.resume_reading()
            c.client.sendall(b"before")
            await until(lambda: c.link.incoming == b"before", "the send arrives")
            reset(c.client)
            await until(lambda: c.link.error is not None or c.link.eof, "the reset is noticed")
            assert c.link.eof or isinstance(c.link.error, ConnectionResetError)
            assert c.eof_at_calls  # on_data was called for the end too
            c.link.write(b"too late")  # ignored or fails quietly
            c.link.close()
            assert c.link.is_closing()

    run(scenario)


def test_a_write_to_a_client_that_reset_marks_the_error_closes_and_calls_on_data() -> None:
    async def scenario() -> None:
        async with connected() as c:
            reset(c.client)
            await until(lambda: readable(c.accepted), "the reset arrives")
            c.link.write(b"answer")  # the session's write does not raise
            assert isinstance(c.link.error, ConnectionResetError | BrokenPipeError)
            assert c.link.is_closing()
            assert c.accepted.fileno() == -1
            assert c.data_calls == 0  # not from inside the session's own write...
            await until(lambda: c.data_calls == 1, "on_data for the end")  # ...but soon after
            c.link.write(b"more")  # ignored
            assert c.link.get_write_buffer_size() == 0

    run(scenario)


def upload(c: Connection, size: int) -> Callable[[], int]:
    """Read like the session does: pause at HIGH_WATER, take the bytes soon after, resume; the
    function returned says how many bytes were taken so far (they are checked against PAYLOAD)."""
    taken = bytearray()
    loop = asyncio.get_running_loop()

    def take() -> None:
        taken.extend(c.link.incoming)
        c.link.incoming.clear()
        c.link.resume_reading()

    def on_data() -> None:
        if len(c.link.incoming) >= HIGH_WATER:
            c.link.pause_reading()
            loop.call_soon(take)

    c.link.on_data = on_data
    c.link.resume_reading()
    return lambda: len(taken) + len(c.link.incoming) if taken == PAYLOAD[: len(taken)] else -1


@pytest.mark.parametrize("secure", [False, True], ids=["plain", "tls"])
def test_a_large_upload_arrives_whole_through_pauses_at_high_water(tls: Tls, secure: bool) -> None:
    size = 4 * 1024 * 1024

    async def scenario() -> None:
        async with connected() as c:
            client = await handshake(c, tls, tls.operator) if secure else c.client
            arrived = upload(c, size)
            sending = asyncio.to_thread(client.sendall, PAYLOAD[:size])
            await sending
            await until(lambda: arrived() in (size, -1), "the whole upload", timeout=5)
            assert arrived() == size
            assert bytes(c.link.incoming) == PAYLOAD[size - len(c.link.incoming) : size]

    run(scenario)


# --- 2. writing to a client that does not read -----------------------------------------------


@pytest.mark.parametrize("link_sndbuf", [None, 16 * 1024], ids=["default", "small-sndbuf"])
def test_writes_queue_while_the_client_does_not_read_and_arrive_whole_and_in_order(
    link_sndbuf: int | None,
) -> None:
    """With a small send buffer, the queued chunks also leave in pieces (partial sends)."""

    async def scenario() -> None:
        async with connected(client_rcvbuf=32 * 1024, link_sndbuf=link_sndbuf) as c:
            written = fill(c.link)
            assert c.link.get_write_buffer_size() > 0
            assert c.drained_sizes == []
            received = await asyncio.to_thread(read_exactly, c.client, written)
            assert len(received) == written
            assert received == PAYLOAD[:written]
            await until(lambda: c.drained_sizes, "on_drained")
            assert c.drained_sizes == [0]
            assert c.link.get_write_buffer_size() == 0
            c.link.write(b"after the queue")  # goes out at once again
            assert c.link.get_write_buffer_size() == 0
            assert await asyncio.to_thread(read_exactly, c.client, 15) == b"after the queue"

    run(scenario)


# --- 3. closing with bytes still queued --------------------------------------------------------


def test_close_sends_the_queued_bytes_then_eof_to_a_client_that_reads_within_the_grace() -> None:
    async def scenario() -> None:
        async with connected(client_rcvbuf=32 * 1024) as c:
            written = fill(c.link)
            loop = asyncio.get_running_loop()
            started = loop.time()
            c.link.close()
            assert c.link.is_closing()
            c.link.write(b"not any more")  # ignored once closing
            received, error = await asyncio.to_thread(read_to_end, c.client)
            assert error is None
            assert received == PAYLOAD[:written]
            await until(lambda: c.accepted.fileno() == -1, "the socket is closed")
            assert loop.time() - started < CLOSE_GRACE
            assert c.drained_sizes == []  # a closing link has no one to tell

    run(scenario)


def test_close_cuts_a_client_that_never_reads_after_the_grace() -> None:
    async def scenario() -> None:
        async with connected(client_rcvbuf=32 * 1024) as c:
            written = fill(c.link)
            loop = asyncio.get_running_loop()
            started = loop.time()
            c.link.close()
            await until(lambda: c.accepted.fileno() == -1, "the socket is closed", timeout=CLOSE_GRACE + 1)
            elapsed = loop.time() - started
            assert CLOSE_GRACE - 0.05 <= elapsed <= CLOSE_GRACE + 0.5
            received, _ = await asyncio.to_thread(read_to_end, c.client)
            assert len(received) < written  # the queue was dropped...
            assert received == PAYLOAD[: len(received)]  # ...and what came is an unbroken prefix

    run(scenario)


def test_close_delivers_what_was_written_when_the_client_sent_bytes_the_link_did_not_read() -> None:
    async def scenario() -> None:
        async with connected(client_rcvbuf=32 * 1024) as c:
            c.client.sendall(b"a pipelined request the session never read")
            await until(lambda: _peek(c.accepted), "the request reaches the link's socket")
            written = fill(c.link)
            c.link.close()
            received, error = await asyncio.to_thread(read_to_end, c.client)
            assert error is None, f"{error!r} after {len(received)} of {written} bytes"
            assert received == PAYLOAD[:written]

    run(scenario)


# --- 4. TLS ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tls13", [True, False], ids=["tls1.3", "tls1.2"])
def test_tls_with_a_valid_client_certificate_carries_data_both_ways(tls: Tls, tls13: bool) -> None:
    async def scenario() -> None:
        async with connected() as c:
            context = tls.pki.client_context(tls.operator, tls13=tls13)

            def client_side() -> ssl.SSLSocket:  # sends its request right after its handshake
                client = context.wrap_socket(
                    c.client, server_hostname="127.0.0.1", suppress_ragged_eofs=False
                )
                client.sendall(b"request")
                return client

            client, _ = await asyncio.gather(
                asyncio.to_thread(client_side), c.link.start_tls(tls.server, timeout=PEER_TIMEOUT)
            )
            c.client = client
            ssl_object = c.link.get_extra_info("ssl_object")
            assert isinstance(ssl_object, ssl.SSLSocket)
            assert ssl_object.getpeercert(binary_form=True) == certificate_der(tls.operator)
            c.link.resume_reading()
            await until(lambda: c.link.incoming == b"request", "the request arrives decrypted")
            c.link.write(b"answer")
            assert await asyncio.to_thread(read_exactly, client, 6) == b"answer"
            client.sendall(b"second")
            await until(lambda: c.link.incoming == b"requestsecond", "the second request arrives")
            assert ssl_object.version() == ("TLSv1.3" if tls13 else "TLSv1.2")

    run(scenario)


def test_a_tls_client_that_sends_close_notify_gives_eof_and_gets_one_back(tls: Tls) -> None:
    async def scenario() -> None:
        async with connected() as c:
            client = await handshake(c, tls, tls.operator)
            c.link.resume_reading()
            client.sendall(b"last request")
            unwrapping = asyncio.create_task(asyncio.to_thread(client.unwrap))  # waits for our answer
            await until(lambda: c.link.eof, "eof")
            assert c.link.incoming == b"last request" and c.link.error is None
            assert c.eof_at_calls[-1] is True
            c.link.close()
            plain = await unwrapping  # returns once our close_notify came back
            plain.close()

    run(scenario)


def test_tls_close_sends_close_notify(tls: Tls) -> None:
    async def scenario() -> None:
        async with connected() as c:
            client = await handshake(c, tls, tls.operator)
            c.link.resume_reading()
            c.link.write(b"bye")
            c.link.close()
            received, error = await asyncio.to_thread(read_to_end, client)
            assert (received, error) == (b"bye", None)  # a clean TLS EOF, not SSLEOFError
            assert c.link.get_extra_info("ssl_object").fileno() == -1

    run(scenario)


def test_tls_abort_sends_no_close_notify(tls: Tls) -> None:
    """The other side of the test above: the client can tell a cut connection from a closed one."""

    async def scenario() -> None:
        async with connected() as c:
            client = await handshake(c, tls, tls.operator)
            c.link.abort()
            received, error = await asyncio.to_thread(read_to_end, client)
            assert received == b""
            assert isinstance(error, ssl.SSLEOFError)

    run(scenario)


def test_tls_writes_queue_while_the_client_does_not_read_then_close_flushes_them(tls: Tls) -> None:
    async def scenario() -> None:
        async with connected(client_rcvbuf=32 * 1024, link_sndbuf=16 * 1024) as c:
            client = await handshake(c, tls, tls.operator)
            written = fill(c.link, extra_chunks=3)
            assert c.link.get_write_buffer_size() > 0
            c.link.close()
            received, error = await asyncio.to_thread(read_to_end, client)
            assert len(received) == written
            assert received == PAYLOAD[:written]
            assert error is None  # then close_notify: a clean TLS EOF

    run(scenario)


def test_tls_close_after_a_backlog_ends_with_close_notify(tls: Tls) -> None:
    """With these buffers the last flush fills the send buffer about every second time: 30
    attempts all end cleanly only when close() gets its close_notify out every time."""

    async def scenario() -> None:
        for attempt in range(30):
            async with connected(client_rcvbuf=32 * 1024, link_sndbuf=8 * 1024) as c:
                client = await handshake(c, tls, tls.operator)
                written = fill(c.link)
                c.link.close()
                received, error = await asyncio.to_thread(read_to_end, client, 1024)
                assert received == PAYLOAD[:written]
                assert error is None, f"attempt {attempt}: {error!r} after all {written} bytes"

    run(scenario)


# --- 5. TLS refused ----------------------------------------------------------------------------


@pytest.mark.parametrize("tls13", [True, False], ids=["tls1.3", "tls1.2"])
@pytest.mark.parametrize("presents", ["foreign", "none"])
def test_tls_refuses_a_client_certificate_from_another_ca_or_none(
    tls: Tls, presents: str, tls13: bool
) -> None:
    files = tls.foreign if presents == "foreign" else None

    async def scenario() -> None:
        async with connected() as c:
            context = tls.pki.client_context(files, tls13=tls13)

            def client_side() -> BaseException | None:
                try:  # TLS 1.3: the client finishes first; the refusal comes as an alert on read
                    with context.wrap_socket(c.client, server_hostname="127.0.0.1") as client:
                        client.recv(1)
                except OSError as error:
                    return error
                return None

            peer = asyncio.create_task(asyncio.to_thread(client_side))
            with pytest.raises(ssl.SSLError):
                await c.link.start_tls(tls.server, timeout=PEER_TIMEOUT)
            c.link.abort()
            assert isinstance(await peer, OSError)  # the client got no session

    run(scenario)


def test_tls_handshake_times_out_when_the_client_sends_nothing(tls: Tls) -> None:
    async def scenario() -> None:
        async with connected() as c:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                await c.link.start_tls(tls.server, timeout=0.2)
            assert 0.19 <= loop.time() - started < 1.0
            fd = c.link.get_extra_info("ssl_object").fileno()
            assert not loop.remove_reader(fd)  # the handshake left no reader behind
            assert not loop.remove_writer(fd)

    run(scenario)


def test_abort_during_the_tls_handshake_ends_it_at_once(tls: Tls) -> None:
    async def scenario() -> None:
        async with connected() as c:
            loop = asyncio.get_running_loop()
            handshake = asyncio.create_task(c.link.start_tls(tls.server, timeout=1.5))
            await until(lambda: c.link.get_extra_info("ssl_object") is not None, "the handshake starts")
            await asyncio.sleep(0)  # it now waits for the ClientHello
            fd = c.link.get_extra_info("ssl_object").fileno()
            c.link.abort()
            assert not loop.remove_reader(fd), "a reader is left on the closed fd"
            done, _ = await asyncio.wait([handshake], timeout=0.5)
            assert done, "start_tls still waits after abort()"
            assert isinstance(handshake.exception(), OSError)

    run(scenario)


@pytest.mark.parametrize(
    "garbage",
    [adu(1, 1, read_holding(0, 1)) * 3, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    ids=["modbus", "http"],
)
def test_tls_refuses_garbage_instead_of_a_client_hello(tls: Tls, garbage: bytes) -> None:
    async def scenario() -> None:
        async with connected() as c:
            c.client.sendall(garbage)
            started = time.monotonic()
            with pytest.raises(ssl.SSLError):
                await c.link.start_tls(tls.server, timeout=PEER_TIMEOUT)
            assert time.monotonic() - started < 0.5  # refused at once, not by the timeout

    run(scenario)


def test_tls_handshake_fails_at_once_when_the_client_leaves(tls: Tls) -> None:
    async def scenario() -> None:
        async with connected() as c:
            c.client.close()
            started = time.monotonic()
            with pytest.raises((ssl.SSLError, ConnectionError)):  # SSLEOFError: EOF in the handshake
                await c.link.start_tls(tls.server, timeout=PEER_TIMEOUT)
            assert time.monotonic() - started < 0.5

    run(scenario)


# --- 6. writes after the end; pausing ------------------------------------------------------------


@pytest.mark.parametrize("end", ["close", "abort"])
def test_writes_after_close_or_abort_are_ignored(end: str) -> None:
    async def scenario() -> None:
        async with connected() as c:
            c.link.write(b"sent")
            getattr(c.link, end)()
            c.link.write(b"ignored")
            assert c.link.get_write_buffer_size() == 0
            getattr(c.link, end)()  # a second close or abort is harmless too
            assert c.accepted.fileno() == -1
            received, _ = await asyncio.to_thread(read_to_end, c.client)
            assert received == b"sent"
            assert c.data_calls == 0 and c.drained_sizes == []

    run(scenario)


def test_pause_reading_holds_back_on_data_and_resume_delivers_what_came_meanwhile() -> None:
    async def scenario() -> None:
        async with connected() as c:
            c.link.resume_reading()
            c.client.sendall(b"one")
            await until(lambda: c.link.incoming == b"one", "the first send arrives")
            c.link.pause_reading()
            calls = c.data_calls
            c.client.sendall(b"two")
            c.client.shutdown(socket.SHUT_WR)
            # the bytes and the FIN wait in the link's socket: PEEK sees them, the link does not
            await until(lambda: _peek(c.accepted) == b"two", "the second send reaches the socket")
            for _ in range(20):
                await asyncio.sleep(0)
            await asyncio.sleep(0.02)
            assert c.data_calls == calls
            assert c.link.incoming == b"one" and not c.link.eof
            c.link.resume_reading()
            await until(lambda: c.link.eof, "eof")
            assert c.link.incoming == b"onetwo"
            assert c.data_calls > calls

    run(scenario)


def _peek(sock: socket.socket) -> bytes:
    try:
        return sock.recv(CHUNK, socket.MSG_PEEK)
    except BlockingIOError:
        return b""
