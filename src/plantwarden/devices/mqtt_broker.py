"""An MQTT 3.1.1 broker in a Plantwarden process (amqtt), for the demo and small sites: nothing
to install beside the package.

`plantwarden devices broker` runs it with a plain listener, a TLS listener or both. The TLS
listener requires a client certificate of the platform CA (amqtt's own TLS listener asks for one
but lets clients without one in, so the gateway's pattern is used: the listener is ours, an
`asyncio` server with a `CERT_REQUIRED` context, and the broker gets each verified connection),
checks the CRL; `replace_tls` gives the handshakes that follow a context with a fresher CRL.
Mosquitto with the files of `devices broker-config` remains the choice for a large plant: this
broker has no ACL, does not tie a client id to a certificate (a client may take over another's
session by its client id), and keeps a device whose certificate is revoked connected until it
reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from amqtt.broker import Broker

from plantwarden.core.listen import listening_socket

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 1024
"""Client connections at once, both listeners together; more are closed at once."""
PLAIN, TLS = "plain", "tls"


class MqttBroker:
    """amqtt with our listeners: `listen` (plain) and `tls_listen` with `tls` (client certificates
    required); port 0 picks a free one (`addresses` says which)."""

    def __init__(
        self,
        listen: tuple[str, int] | None = None,
        tls_listen: tuple[str, int] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if listen is None and tls_listen is None:
            raise ValueError("a broker needs a plain or a TLS listener")
        if (tls_listen is None) != (tls is None):
            raise ValueError("a TLS listener needs its context, and a context its listener")
        if tls is not None and tls.verify_mode != ssl.CERT_REQUIRED:
            raise ValueError("the broker's TLS context must require client certificates")
        self.listen, self.tls_listen, self.tls = listen, tls_listen, tls
        self._newest = tls
        if tls is not None:
            tls.sni_callback = self._current_context  # every handshake takes the newest context
        self.addresses: dict[str, tuple[str, int]] = {}
        self._servers: list[asyncio.Server] = []
        self._broker: Any = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        listeners = {name: {"type": "external"} for name in (PLAIN, TLS)}
        config = {
            "listeners": {"default": {"type": "external"}, **listeners},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        for noisy in ("amqtt", "transitions"):  # lines per connection and state change otherwise
            logging.getLogger(noisy).setLevel(logging.WARNING)
        sockets = []  # bound first: an address in use is one clear error, before the broker starts
        try:
            for name, where, context in ((PLAIN, self.listen, None), (TLS, self.tls_listen, self.tls)):
                if where is not None:
                    option = "--listen" if name == PLAIN else "--tls"
                    sockets.append((name, listening_socket(where[0], where[1], named_by=option), context))
        except BaseException:
            for _, sock, _ in sockets:
                sock.close()
            raise
        self._broker = Broker(config)
        await self._broker.start()
        for name, sock, context in sockets:
            server = await asyncio.start_server(self._handler(name), sock=sock, ssl=context)
            self._servers.append(server)
            host, port = server.sockets[0].getsockname()[:2]
            self.addresses[name] = (host, port)

    def _handler(self, name: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if len(self._connections) >= MAX_CONNECTIONS:
                log.warning("refused an MQTT connection on the %s listener: %d open", name, MAX_CONNECTIONS)
                writer.close()
                return
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)
            try:
                await self._broker.stream_connected(reader, writer, name)
            except Exception as error:  # one client's broken session must not end the broker
                log.warning("an MQTT session on the %s listener failed: %s", name, error)
            finally:
                self._connections.discard(task)

        return connected

    def replace_tls(self, context: ssl.SSLContext) -> None:
        """New handshakes use `context` (a fresh CRL: a new context rather than a CRL added to the
        old one, whose store would grow by one CRL at each refresh)."""
        if context.verify_mode != ssl.CERT_REQUIRED:
            raise ValueError("the broker's TLS context must require client certificates")
        if self.tls is None:
            raise ValueError("the broker has no TLS listener")
        self._newest = context

    def _current_context(self, connection: ssl.SSLObject, _name: str | None, context: ssl.SSLContext) -> None:
        if self._newest is not None and self._newest is not context:
            connection.context = self._newest

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        if self._broker is not None:
            await self._broker.shutdown()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def load_crl(context: ssl.SSLContext, crl_pem: bytes) -> None:
    """Add a CRL to the context's trust store (OpenSSL reads CRLs from a file, not from `cadata`)."""
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as file:
        file.write(crl_pem)
        file.flush()
        context.load_verify_locations(cafile=file.name)


def broker_tls_context(certificate: str, key: str, chain: str, crl_pem: bytes) -> ssl.SSLContext:
    """The TLS listener's context: our certificate, TLS 1.2+, client certificates of the platform
    CA required, checked against the CRL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, key)
    context.load_verify_locations(cafile=chain)
    load_crl(context, crl_pem)
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_CRL_CHECK_LEAF
    return context
