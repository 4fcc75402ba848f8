"""The gateway process: its listeners, the policy in force, the upstream pools, the supervisor.

- Admission: at most `max_sessions` connections at once, `max_sessions_per_address` from one
  source address (counted from the accept, TLS handshakes included); beyond, the connection is
  refused and recorded before anything is read.
- Plain Modbus/TCP listener: the client is its source address (plant.yaml bindings give roles);
  an address no binding gives a role is refused at connect (while the gateway fails closed, for
  want of a policy, it is served and every request refused).
- Connections are `Link`s (`link.py`): the event loop drives each socket directly, and TLS is
  OpenSSL on the socket itself rather than asyncio's TLS transport (cheaper on the latency path).
- mbaps listener: the TLS handshake is done by the session's own task (`Link.start_tls`) so that
  a failed handshake is recorded too; then the certificate is checked against the inventory; no
  upstream connection is opened for a client that is not verified.
- The supervisor, every `tick` seconds: applies the site's quarantine changes to the deny overlay
  (the event log's `incidents.*` events, `quarantine_watch.py`; the active list is loaded at
  start); closes the sessions of certificates revoked since the last look (the event log's
  `pki.CertificateRevoked`; the fingerprints stay known `REVOKED_MEMORY` seconds, and a session
  registered meanwhile is checked against them, as its inventory check may predate the
  revocation), of expired or quarantined certificates and of quarantined subjects
  (the deny overlay); every `refresh_seconds` it reloads the policy state and swaps it in
  when its version changed (the sessions stay); a reload that fails keeps the last good state,
  and without any state at all every request is refused (fail closed). It also flushes records
  and denial alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from plantwarden.core.eventlog import head_position
from plantwarden.core.listen import listening_socket
from plantwarden.core.records.schema import address_text
from plantwarden.gateway.alerts import Denial, DenialAlerts
from plantwarden.gateway.decide import Decider, RateLimit, Target
from plantwarden.gateway.envelope import Envelope
from plantwarden.gateway.identity import CertificateChecker, ClientRefused, address_client
from plantwarden.gateway.link import Link
from plantwarden.gateway.quarantine_watch import QuarantineWatch
from plantwarden.gateway.records import Endpoints, RecordBuffer, packed
from plantwarden.gateway.revocations import RevocationFeed
from plantwarden.gateway.session import Session
from plantwarden.gateway.state import GatewayState, StateLoader, unknown_limits
from plantwarden.gateway.upstream import UpstreamPool
from plantwarden.policy.overlay import DenyOverlay

log = logging.getLogger(__name__)
Handler = Callable[[Link, Endpoints], Awaitable[None]]
Accepted = Callable[[Link], Coroutine[Any, Any, None]]
BACKLOG = 128
ACCEPT_BACKOFF = 0.1
"""Seconds a listener rests after an accept failed (out of file descriptors, or the like)."""
REFUSED_CLIENT = "gateway:client"
REVOKED_MEMORY = 10.0
"""Seconds a revoked fingerprint stays known after the supervisor read it from the event log."""


@dataclass(frozen=True)
class GatewayConfig:
    """How the gateway runs (addresses are (host, port); port 0 picks a free one)."""

    site: str
    segment: str = "default"
    listen: tuple[str, int] | None = None
    mbaps: tuple[str, int] | None = None
    frame_timeout: float = 5.0
    idle_timeout: float | None = 600.0
    handshake_timeout: float = 10.0
    tick: float = 0.25
    refresh_seconds: float = 1.0
    pool_size: int = 4
    """Connections to each PLC (most PLCs take 2 to 8 in all): with one request in flight each
    (`pipeline_depth` 1), this is how many requests of different clients a PLC runs at once."""
    request_timeout: float = 2.0
    pipeline_depth: int | None = 1
    """Requests in flight per upstream connection: 1 (the default) for PLCs that take one
    transaction at a time, as many do; None for no limit."""
    max_sessions: int = 256
    """Client connections at once (handshakes included); more are refused at connect."""
    max_sessions_per_address: int = 16
    """Client connections at once from one source address."""
    source_rate_limit: RateLimit | None = field(default_factory=lambda: RateLimit(1000.0, 1000.0))
    """Requests a second per source address, whatever the role (None: no limit)."""
    read_fifo: bool = False
    """Whether read FIFO queue (24) may go through (its one address says nothing of what it reads)."""
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    change_limits: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Rate-of-change limits: asset -> register name -> engineering units per second."""


class Gateway:
    """Listeners, sessions and the policy in force; `start`, then `stop`."""

    def __init__(
        self,
        config: GatewayConfig,
        loader: StateLoader,
        *,
        tls: ssl.SSLContext | None = None,
        checker: CertificateChecker | None = None,
        revocations: RevocationFeed | None = None,
        records: RecordBuffer | None = None,
        alerts: DenialAlerts | None = None,
        overlay: DenyOverlay | None = None,
        quarantine: QuarantineWatch | None = None,
    ) -> None:
        if config.mbaps is not None and (tls is None or checker is None):
            raise ValueError("an mbaps listener needs a TLS context and a certificate checker")
        if quarantine is not None and quarantine.site != config.site:
            raise ValueError(f"the quarantine watch is of site {quarantine.site}, not {config.site}")
        self.quarantine = quarantine
        self.config, self.loader, self.tls, self.checker = config, loader, tls, checker
        self.revocations, self.alerts = revocations, alerts
        self.records = records if records is not None else RecordBuffer(None)
        self.overlay = overlay if overlay is not None else DenyOverlay()
        self.state: GatewayState | None = None
        self.decider = Decider(config.site, None, Envelope([], {}), overlay=self.overlay,
                               rate_limits=config.rate_limits, source_rate_limit=config.source_rate_limit,
                               read_fifo=config.read_fifo)  # fmt: skip
        self.sessions: set[Session] = set()
        self.connections: dict[str, int] = {}
        """Open client connections per source address (admission)."""
        self._revoked: dict[bytes, float] = {}
        self.addresses: dict[str, tuple[str, int]] = {}
        self._pools: dict[tuple[str, int], UpstreamPool] = {}
        self._listeners: list[socket.socket] = []
        self._handshaking: set[Link] = set()
        self._accept_said = 0.0  # when a failure to accept was last logged
        self._tasks: set[asyncio.Task[Any]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._flush_due = False
        self._records_said = 0.0  # when a failure to write records was last logged (0: writing)

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the policy state (a failure leaves the gateway failing closed), open the listeners
        and start the supervisor."""
        await self._reload()
        if self.revocations is not None:
            await asyncio.to_thread(self.revocations.start)
        if self.quarantine is not None:
            try:
                await asyncio.to_thread(self.quarantine.start, self.overlay)
            except Exception as error:  # retried at every tick (`poll` starts until it succeeds)
                log.warning("cannot load the quarantine list: %s", error)
        if self.config.listen is not None:
            await self._listen("modbus", self.config.listen, self._admitted(self._plain))
        if self.config.mbaps is not None:
            await self._listen("mbaps", self.config.mbaps, self._admitted(self._secure))
        self._supervisor = asyncio.create_task(self._supervise())

    async def _listen(self, name: str, where: tuple[str, int], handler: Accepted) -> None:
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(where[0], where[1], type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        host, port = str(found[0][4][0]), int(found[0][4][1])  # the first address it resolves to
        option = "--listen" if name == "modbus" else "--mbaps"
        listener = listening_socket(host, port, named_by=option)  # in use: one error naming it
        listener.listen(BACKLOG)
        listener.setblocking(False)
        self._listeners.append(listener)
        self.addresses[name] = listener.getsockname()[:2]
        loop.add_reader(listener.fileno(), self._accept, listener, handler)

    def _accept(self, listener: socket.socket, handler: Accepted) -> None:
        for _ in range(BACKLOG):  # what is waiting, within reason: the loop has other work
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of descriptors, or the like: the client waits or leaves
                # the connection stays in the backlog and the listener readable: look again later
                loop = asyncio.get_running_loop()
                loop.remove_reader(listener.fileno())
                loop.call_later(ACCEPT_BACKOFF, self._listen_again, listener, handler)
                now = time.monotonic()
                if now >= self._accept_said + 60.0:
                    self._accept_said = now
                    log.warning(
                        "cannot accept connections (%s); trying again every %s s", error, ACCEPT_BACKOFF
                    )
                return
            try:
                link = Link(sock)
            except OSError:  # gone before it was looked at
                sock.close()
                continue
            task = asyncio.get_running_loop().create_task(handler(link))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _listen_again(self, listener: socket.socket, handler: Accepted) -> None:
        if listener in self._listeners:  # not closed by stop() meanwhile
            asyncio.get_running_loop().add_reader(listener.fileno(), self._accept, listener, handler)

    async def stop(self) -> None:
        """Close the listeners and every session, flush the records and alerts, close the pools."""
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            loop.remove_reader(listener.fileno())
            listener.close()
        self._listeners.clear()
        for link in list(self._handshaking):  # no session yet: nothing to say, nothing to wait for
            link.abort()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for session in list(self.sessions):
            session.close("gateway:stopped", "the gateway stopped")
        if self._tasks:  # closed sessions end by themselves; cancel only what does not
            _, pending = await asyncio.wait(list(self._tasks), timeout=2.0)
            for task in pending:
                task.cancel()
        for pool in self._pools.values():
            await pool.close()
        await asyncio.to_thread(self._flush)
        await asyncio.to_thread(self.records.close)

    # --- what sessions call -----------------------------------------------------------------

    def pool(self, target: Target) -> UpstreamPool:
        """The upstream pool of a PLC (made on first use, kept across policy swaps)."""
        key = (target.host, target.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = UpstreamPool(
                target.host,
                target.port,
                size=self.config.pool_size,
                request_timeout=self.config.request_timeout,
                pipeline_depth=self.config.pipeline_depth,
            )
        return pool

    def record(self, ts: int, ends: Endpoints, **fields: Any) -> None:
        if self.records.add(ts, ends, **fields):
            self._flush_due = True

    def denied(self, denial: Denial) -> None:
        if self.alerts is not None:
            self.alerts.note(denial, time.monotonic())

    @staticmethod
    def peer_text(ends: Endpoints) -> str:
        return address_text(ends.src)

    # --- connections ------------------------------------------------------------------------

    def _admitted(self, handler: Handler) -> Accepted:
        """`handler` behind the connection caps (overall and per source address)."""

        async def admit(link: Link) -> None:
            ends = self._ends(link)
            address = self.peer_text(ends)
            open_here = self.connections.get(address, 0)
            if sum(self.connections.values()) >= self.config.max_sessions:
                refusal = f"the gateway already serves {self.config.max_sessions} connections (max_sessions)"
            elif open_here >= self.config.max_sessions_per_address:
                refusal = (f"{address} already has {open_here} connections open"
                           f" (max_sessions_per_address {self.config.max_sessions_per_address})")  # fmt: skip
            else:
                refusal = ""
            if refusal:
                self._refused(ends, "capacity", refusal)
                link.abort()
                return
            self.connections[address] = open_here + 1
            try:
                await handler(link, ends)
            except Exception:  # one connection's failure must not reach the loop's handler
                log.exception("the session of %s failed", address)
                link.abort()
            finally:
                link.close()  # when the handler did not (cancelled at stop, in its handshake)
                left = self.connections.pop(address, 1) - 1
                if left > 0:
                    self.connections[address] = left

        return admit

    async def _plain(self, link: Link, ends: Endpoints) -> None:
        state = self.state
        client = address_client(link.get_extra_info("peername")[0], None if state is None else state.site)
        if state is not None and not client.role:  # without a state: refused request by request
            self._refused(ends, "unbound", f"no plant.yaml binding gives {client.subject.id} a role")
            link.abort()
            return
        await self._serve(Session(self, client, link, ends))

    async def _secure(self, link: Link, ends: Endpoints) -> None:
        assert self.tls is not None
        assert self.checker is not None
        self._handshaking.add(link)
        try:
            await link.start_tls(self.tls, self.config.handshake_timeout)
        except (ssl.SSLError, ConnectionError, OSError, TimeoutError) as error:
            why = "timed out" if isinstance(error, TimeoutError) else str(error)
            self._refused(ends, "handshake", f"the TLS handshake failed: {why}")
            link.abort()
            return
        finally:
            self._handshaking.discard(link)
        ssl_object = link.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        try:
            client = await asyncio.to_thread(self.checker.check, der)
        except ClientRefused as refusal:
            self._refused(ends, refusal.reason, refusal.message)
            link.close()
            return
        if self.quarantine is not None and client.serial in self.quarantine.certificates:
            self._refused(
                ends, "quarantined", f"the certificate {client.serial} of {client.device} is quarantined"
            )
            link.close()
            return
        await self._serve(Session(self, client, link, ends))

    async def _serve(self, session: Session) -> None:
        self.sessions.add(session)
        fingerprint = session.client.fingerprint
        if fingerprint and fingerprint in self._revoked:  # revoked after its inventory check
            client = session.client
            session.close(
                "gateway:revoked", f"the certificate {client.serial} of {client.device} was revoked"
            )
        try:
            await session.run()
        finally:
            self.sessions.discard(session)

    def _ends(self, link: Link) -> Endpoints:
        peer = link.get_extra_info("peername") or ("", 0)
        local = link.get_extra_info("sockname") or ("", 0)
        return Endpoints(
            self.config.site, self.config.segment, packed(peer[0]), peer[1], packed(local[0]), local[1]
        )

    def _refused(self, ends: Endpoints, reason: str, message: str) -> None:
        log.info("refused a client at %s: %s", self.peer_text(ends), message)
        rule = f"{REFUSED_CLIENT}:{reason}"
        self.record(
            time.time_ns(), ends, operation=0, function=-1, unit=-1, address=-1, quantity=0, status=-2,
            value=float("nan"), response_ns=-1, allowed=False, rule=rule, reason=message,
            policy_version=self.decider.version, subject="", device="", asset="",
        )  # fmt: skip
        peer = self.peer_text(ends)
        self.denied(
            Denial(ends.site, "", "", "unverified client", "", peer, rule, message, -1, -1, time.time_ns())
        )

    # --- supervision ------------------------------------------------------------------------

    async def _supervise(self) -> None:
        next_reload = time.monotonic() + self.config.refresh_seconds
        next_flush = time.monotonic() + 1.0
        while True:
            await asyncio.sleep(self.config.tick)
            try:
                await self._watch()
                now = time.monotonic()
                if now >= next_reload:
                    next_reload = now + self.config.refresh_seconds
                    await self._reload()
                if now >= next_flush or self._flush_due:
                    next_flush, self._flush_due = now + 1.0, False
                    await asyncio.to_thread(self._flush)
            except Exception:  # the supervisor must outlive any one failure
                log.exception("gateway supervisor step failed; retrying")

    async def _reload(self) -> None:
        try:
            state = await asyncio.to_thread(self.loader)
        except Exception as error:
            kept = (
                "keeps the last good policy" if self.state is not None else "refuses everything (fail closed)"
            )
            log.warning("the gateway cannot load its policy (%s); it %s", error, kept)
            return
        old = self.state
        if old is not None and (state.snapshot.version, state.plant_version) == (
            old.snapshot.version,
            old.plant_version,
        ):
            return
        for problem in unknown_limits(state, self.config.change_limits, self.config.rate_limits):
            log.warning("%s: that limit limits nothing under plant %s", problem, state.plant_version[:12])
        envelope = state.envelope(self.config.change_limits)
        envelope.carry_from(self.decider.envelope)
        self.state = state  # one assignment in the event loop: sessions see the old or the new
        self.decider.snapshot, self.decider.envelope = state.snapshot, envelope
        log.info(
            "gateway policy %s in force (plant %s)", state.snapshot.version[:12], state.plant_version[:12]
        )

    async def _watch(self) -> None:
        revoked = await asyncio.to_thread(self._read_log)
        certificates = self.quarantine.certificates if self.quarantine is not None else frozenset()
        moment = time.monotonic()
        self._revoked = {k: t for k, t in self._revoked.items() if moment - t < REVOKED_MEMORY}
        self._revoked.update(dict.fromkeys(revoked, moment))
        revoked = set(self._revoked)
        now = datetime.now(UTC)
        quarantined = self.overlay.snapshot().subject_keys
        for session in list(self.sessions):
            client = session.client
            if client.fingerprint and client.fingerprint in revoked:
                session.close(
                    "gateway:revoked", f"the certificate {client.serial} of {client.device} was revoked"
                )
            elif client.not_after is not None and now >= client.not_after:
                session.close(
                    "gateway:expired", f"the certificate {client.serial} of {client.device} expired"
                )
            elif (client.subject.kind, client.subject.id) in quarantined:
                session.close("deny:quarantine:subject", f"{client.subject} is quarantined")
            elif client.serial and client.serial in certificates:
                session.close(
                    "deny:quarantine:certificate",
                    f"the certificate {client.serial} of {client.device} is quarantined",
                )

    def _read_log(self) -> set[bytes]:
        """(In a thread, every tick.) Apply the quarantine changes and find the certificates revoked
        since the last tick. While the event log has nothing new, that is one small query outside the
        ORM (the two readers' transactions took ~1.6 ms of the gateway's core a tick, measured in
        the running gateway, and that core is the requests')."""
        readers = [reader for reader in (self.quarantine, self.revocations) if reader is not None]
        if not readers or not self._log_moved(readers):
            return set()
        if self.quarantine is not None:
            try:
                self.quarantine.poll(self.overlay)
            except Exception as error:  # the last known list stays in force
                log.warning("cannot read quarantine changes: %s", error)
        revoked: set[bytes] = set()
        if self.revocations is not None:
            try:
                revoked = self.revocations.revoked_since_last()
            except Exception as error:
                log.warning("cannot read revocations: %s", error)
        return revoked

    @staticmethod
    def _log_moved(readers: list[QuarantineWatch | RevocationFeed]) -> bool:
        """Whether the event log holds events after a reader's position (or a reader has not
        started); True when the store cannot say, so that the readers report why."""
        if any(reader.position is None for reader in readers):
            return True
        try:
            with readers[0].store.engine.connect() as connection:
                head = head_position(connection)
        except Exception:
            return True
        return any(head > (reader.position or 0) for reader in readers)

    def _flush(self) -> None:
        try:
            self.records.flush()
        except Exception as error:  # kept for the next flush; said once a minute, not every tick
            now = time.monotonic()
            if now >= self._records_said + 60.0:
                self._records_said = now
                log.exception("cannot write gateway records (%d wait): %s", len(self.records), error)
        else:
            if self._records_said:
                self._records_said = 0.0
                log.warning("gateway records are written again")
        if self.alerts is not None:
            try:
                self.alerts.flush()
            except Exception:
                log.exception("cannot raise gateway alerts")
