"""The syslog target: RFC 5424 messages over TLS with RFC 5425 octet-counting framing, or over
plain TCP (RFC 6587 octet counting) or UDP (RFC 5426, one message per datagram) in a lab.

Syslog has no acknowledgement of its own, so for TLS and TCP a batch counts as delivered when
1. every byte of its frames was written to the connection,
2. the receiving host's TCP acknowledged all of them (the socket's send queue, `SIOCOUTQ`, is
   empty) within `notify.syslog_timeout`, and
3. the connection was then still open: the server had neither closed nor reset it.
What this cannot see: a server process that dies after its kernel took the bytes but before
it wrote them anywhere. Over UDP a message counts as delivered once the kernel took the datagram.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import ssl
import struct
import termios
import time
from collections.abc import Sequence

from plantwarden.workers.notify import rfc5424
from plantwarden.workers.notify.document import Notification
from plantwarden.workers.notify.settings import SyslogAddress
from plantwarden.workers.notify.target import DeliveryFailed

Connection = socket.socket  # an ssl.SSLSocket for TLS


def unacknowledged_bytes(connection: Connection) -> int:
    """Bytes written to a TCP connection that the peer's TCP has not acknowledged yet (Linux)."""
    answer = fcntl.ioctl(connection.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return int(struct.unpack("i", answer)[0])


def peer_closed(connection: Connection) -> bool:
    """True when the server closed or reset the connection (checked without waiting)."""
    pending = isinstance(connection, ssl.SSLSocket) and connection.pending() > 0
    if not pending and not select.select([connection], [], [], 0)[0]:
        return False
    timeout = connection.gettimeout()
    connection.setblocking(False)
    try:
        return connection.recv(4096) == b""  # a syslog server sends nothing: data is ignored
    except (ssl.SSLWantReadError, BlockingIOError):
        return False  # TLS records that carry no data (session tickets)
    except OSError:
        return True
    finally:
        connection.settimeout(timeout)


class SyslogTarget:
    """Sends batches of notifications over one kept connection, reopened after any failure."""

    name = "syslog"

    def __init__(
        self,
        address: SyslogAddress,
        *,
        context: ssl.SSLContext | None,
        facility: int,
        hostname: str,
        timeout: float,
        max_bytes: int,
        batch_size: int = 100,
    ) -> None:
        if (address.transport == "tls") != (context is not None):
            raise ValueError("a TLS context is needed for tls:// and only there")
        self.address = address
        self.batch_size = batch_size
        self._context = context
        self._facility = facility
        self._hostname = hostname
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._connection: Connection | None = None

    @property
    def where(self) -> str:
        return f"syslog {self.address.transport}://{self.address.host}:{self.address.port}"

    def messages(self, notifications: Sequence[Notification]) -> list[bytes]:
        """The RFC 5424 messages of the notifications."""
        return [
            rfc5424.message(
                n,
                facility=self._facility,
                hostname=self._hostname,
                procid=os.getpid(),
                max_bytes=self._max_bytes,
            )
            for n in notifications
        ]

    def deliver(self, notifications: Sequence[Notification]) -> None:
        """Send the batch and return once it counts as delivered (see the module's docstring)."""
        messages = self.messages(notifications)
        try:
            if self.address.transport == "udp":
                self._send_datagrams(messages)
            else:
                self._send_stream(b"".join(rfc5424.frame(m) for m in messages))
        except DeliveryFailed:
            self.close()
            raise
        except OSError as error:  # ssl.SSLError included
            self.close()
            raise DeliveryFailed(f"{self.where}: {error or type(error).__name__}") from error

    def close(self) -> None:
        """Close the kept connection (the next batch opens a new one)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _send_stream(self, data: bytes) -> None:
        connection = self._open()
        connection.sendall(data)
        self._confirm(connection, len(data))

    def _confirm(self, connection: Connection, size: int) -> None:
        deadline = time.monotonic() + self._timeout
        wait = 0.001
        while (left := unacknowledged_bytes(connection)) > 0:
            if peer_closed(connection):
                raise DeliveryFailed(f"{self.where}: the server closed the connection while receiving")
            if time.monotonic() > deadline:
                raise DeliveryFailed(
                    f"{self.where}: the server's host acknowledged {size - left} of {size} bytes "
                    f"within {self._timeout:g} s"
                )
            time.sleep(wait)
            wait = min(0.05, wait * 2)
        if peer_closed(connection):
            raise DeliveryFailed(f"{self.where}: the server closed the connection while receiving")

    def _open(self) -> Connection:
        if self._connection is not None and not peer_closed(self._connection):
            return self._connection
        self.close()
        raw = socket.create_connection((self.address.host, self.address.port), timeout=self._timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            connection = (
                self._context.wrap_socket(raw, server_hostname=self.address.host) if self._context else raw
            )
        except (OSError, ssl.SSLError):
            raw.close()
            raise
        self._connection = connection
        return connection

    def _send_datagrams(self, messages: Sequence[bytes]) -> None:
        family, kind, proto, _, target = socket.getaddrinfo(
            self.address.host, self.address.port, type=socket.SOCK_DGRAM
        )[0]
        with socket.socket(family, kind, proto) as datagrams:
            for data in messages:
                datagrams.sendto(data, target)
