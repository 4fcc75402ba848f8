"""A minimal MQTT 3.1.1 subscriber over asyncio (OASIS MQTT 3.1.1, sec. 3), optionally over TLS.

Just what receiving device telemetry needs: CONNECT (clean session, no credentials), SUBSCRIBE to
one topic filter at QoS 1 at most, PUBLISH received at QoS 0 or 1 (QoS 1 answered with PUBACK; a
broker downgrades QoS 2 to the subscription's 1), PINGREQ to keep the connection alive, and
DISCONNECT. A dedicated reader task turns the byte stream into packets, so that waiting for a
message with a timeout never cuts a packet in half. The broker is outside the platform: packets
larger than `MAX_PACKET` or malformed end the connection with `MqttError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from plantwarden.core.errors import InvalidInput, PlantwardenError
from plantwarden.core.parsing import host_port

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
MAX_PACKET = 1 << 20
CONNACK_REFUSALS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


class MqttError(PlantwardenError):
    """The broker refused us, went silent, or sent something that is not MQTT 3.1.1."""

    code = "mqtt_error"


@dataclass(frozen=True)
class Broker:
    """Where to connect, and the TLS context when the connection is encrypted."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One PUBLISH received."""

    topic: str
    payload: bytes
    qos: int
    dup: bool = False
    """The broker's DUP flag: it sent this message before (a QoS 1 redelivery)."""
    packet_id: int | None = None
    """The packet id to acknowledge (QoS 1), when the subscription acknowledges by hand."""


def parse_broker(text: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets) as (host, port)."""
    found = host_port(text)
    if found is None or found[1] == 0:
        raise InvalidInput(f"broker {text!r} is not HOST:PORT (e.g. 127.0.0.1:1883)")
    return found


def tls_context(ca: Path | None, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """A client TLS context verifying the broker (by `ca`, or the system's CAs) and presenting a
    client certificate when `cert` is given."""
    if key is not None and cert is None:
        raise InvalidInput("a TLS key needs its certificate (--tls-cert)")
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
    except ssl.SSLError:  # empty, binary, or PEM of something else
        raise InvalidInput(f"--tls-ca {ca}: no CA certificate in it (expected PEM certificates)") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        try:
            context.load_cert_chain(str(cert), str(key) if key else None)
        except ssl.SSLError:
            raise InvalidInput(
                f"--tls-cert {cert}"
                + (f", --tls-key {key}" if key else "")
                + ": not a PEM certificate and its private key, or they do not match"
            ) from None
    return context


def check_topic_filter(topic_filter: str) -> str:
    """A topic filter: non-empty, '+' a whole level, '#' only as the last level."""
    levels = topic_filter.split("/")
    bad_plus = any("+" in level and level != "+" for level in levels)
    bad_hash = any("#" in level for level in levels[:-1]) or ("#" in levels[-1] and levels[-1] != "#")
    if not topic_filter or bad_plus or bad_hash or "\0" in topic_filter or len(topic_filter) > 1024:
        raise InvalidInput(f"{topic_filter!r} is not an MQTT topic filter")
    return topic_filter


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def _remaining(length: int) -> bytes:
    out = bytearray()
    while True:
        length, digit = divmod(length, 128)
        out.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(out)


def packet(kind: int, flags: int, body: bytes) -> bytes:
    """A control packet: fixed header (type, flags, remaining length), then `body`."""
    return bytes(((kind << 4) | flags,)) + _remaining(len(body)) + body


def connect_packet(client_id: str, keep_alive: int, *, clean_session: bool = True) -> bytes:
    """CONNECT, MQTT 3.1.1, no will, no credentials; with `clean_session` false the broker keeps
    the session (subscriptions, unacknowledged QoS 1 messages) across connections."""
    flags = 0x02 if clean_session else 0x00
    return packet(
        CONNECT, 0, _string("MQTT") + struct.pack(">BBH", 4, flags, keep_alive) + _string(client_id)
    )


def subscribe_packet(packet_id: int, topic_filter: str, qos: int) -> bytes:
    """SUBSCRIBE to one filter with a maximum QoS."""
    return packet(SUBSCRIBE, 0x02, struct.pack(">H", packet_id) + _string(topic_filter) + bytes((qos,)))


def parse_publish(flags: int, body: bytes) -> tuple[Message, int | None]:
    """A PUBLISH body as a message and its packet id (None at QoS 0)."""
    qos = (flags >> 1) & 0x03
    if qos == 3 or len(body) < 2:
        raise MqttError("a malformed PUBLISH packet")
    end = 2 + struct.unpack_from(">H", body)[0]
    packet_id = None
    if qos:
        if len(body) < end + 2:
            raise MqttError("a PUBLISH packet cut short")
        packet_id = struct.unpack_from(">H", body, end)[0]
    if len(body) < end:
        raise MqttError("a PUBLISH topic longer than its packet")
    try:
        topic = body[2:end].decode()
    except UnicodeDecodeError:
        raise MqttError("a PUBLISH topic that is not UTF-8") from None
    return Message(topic, body[end + (2 if qos else 0) :], qos, bool(flags & 0x08), packet_id), packet_id


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """The next packet: (type, flags, body)."""
    first = (await reader.readexactly(1))[0]
    length = shift = 0
    for _ in range(4):
        digit = (await reader.readexactly(1))[0]
        length |= (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            break
    else:
        raise MqttError("a remaining length longer than four bytes")
    if length > MAX_PACKET:
        raise MqttError(f"a packet of {length} bytes (more than {MAX_PACKET})")
    return first >> 4, first & 0x0F, await reader.readexactly(length)


class MqttSubscription:
    """One connection to a broker, subscribed to one topic filter."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        keep_alive: int,
        *,
        clean_session: bool = True,
        manual_ack: bool = False,
    ) -> None:
        self._reader, self._writer = reader, writer
        self.keep_alive = keep_alive
        self.clean_session, self.manual_ack = clean_session, manual_ack
        self._packets: asyncio.Queue[tuple[int, int, bytes] | BaseException] = asyncio.Queue(maxsize=1024)
        self._task: asyncio.Task[None] | None = None
        self._last_sent = self._last_received = time.monotonic()

    @classmethod
    async def open(
        cls,
        broker: Broker,
        client_id: str,
        topic_filter: str,
        *,
        keep_alive: int = 30,
        timeout: float = 10.0,
        clean_session: bool = True,
        manual_ack: bool = False,
    ) -> MqttSubscription:
        """Connect, subscribe (QoS 1 at most), and wait for the broker to accept both.

        With `manual_ack` a QoS 1 message is acknowledged only by `acknowledge` (after what it
        carries is safely stored); with `clean_session` false as well, the broker sends again, DUP
        set, what was not acknowledged when the connection ended (at least once)."""
        check_topic_filter(topic_filter)
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(broker.host, broker.port, ssl=broker.tls)
        subscription = cls(reader, writer, keep_alive, clean_session=clean_session, manual_ack=manual_ack)
        try:
            async with asyncio.timeout(timeout):
                await subscription._handshake(client_id, topic_filter)
        except BaseException:
            await subscription.close()
            raise
        subscription._task = asyncio.create_task(subscription._read_loop())
        return subscription

    async def _handshake(self, client_id: str, topic_filter: str) -> None:
        await self._send(connect_packet(client_id, self.keep_alive, clean_session=self.clean_session))
        kind, _, body = await read_packet(self._reader)
        if kind != CONNACK or len(body) != 2:
            raise MqttError("the broker did not answer CONNECT with CONNACK")
        if body[1]:
            raise MqttError(f"the broker refused the connection: {CONNACK_REFUSALS.get(body[1], body[1])}")
        await self._send(subscribe_packet(1, topic_filter, 1))
        while True:  # a broker may deliver (retained) messages before SUBACK: keep them for later
            kind, flags, body = await read_packet(self._reader)
            if kind == SUBACK:
                break
            await self._packets.put((kind, flags, body))
        if len(body) != 3 or body[2] == 0x80:
            raise MqttError(f"the broker refused the subscription to {topic_filter!r}")

    async def _read_loop(self) -> None:
        try:
            while True:
                await self._packets.put(await read_packet(self._reader))
        except (OSError, asyncio.IncompleteReadError, MqttError) as error:
            await self._packets.put(error)

    async def _send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()
        self._last_sent = time.monotonic()

    async def next_message(self, timeout: float) -> Message | None:
        """The next PUBLISH, or None if none came within `timeout` seconds; keeps the connection
        alive meanwhile. MqttError when the connection is lost or the broker went silent."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if now - self._last_received > self.keep_alive * 1.5:
                raise MqttError(f"the broker sent nothing for {self.keep_alive * 1.5:.0f} s")
            if now - self._last_sent >= self.keep_alive / 2:
                await self._send(packet(PINGREQ, 0, b""))
            wait = min(deadline, self._last_sent + self.keep_alive / 2) - time.monotonic()
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    item = await self._packets.get()
            except TimeoutError:
                if time.monotonic() >= deadline:
                    return None
                continue
            if isinstance(item, BaseException):
                raise MqttError(f"connection to the broker lost: {item or type(item).__name__}")
            self._last_received = time.monotonic()
            message = await self._received(*item)
            if message is not None:
                return message

    async def _received(self, kind: int, flags: int, body: bytes) -> Message | None:
        if kind != PUBLISH:
            return None  # PINGRESP, or an acknowledgement we do not wait for
        message, packet_id = parse_publish(flags, body)
        if packet_id is not None and not self.manual_ack:
            await self._send(packet(PUBACK, 0, struct.pack(">H", packet_id)))
        return message

    async def acknowledge(self, packet_ids: list[int]) -> None:
        """PUBACK the QoS 1 messages with these ids (`manual_ack` subscriptions)."""
        if packet_ids:
            await self._send(b"".join(packet(PUBACK, 0, struct.pack(">H", i)) for i in packet_ids))

    async def close(self) -> None:
        """DISCONNECT (when still possible) and close the connection."""
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(OSError, RuntimeError):
            self._writer.write(packet(DISCONNECT, 0, b""))
            self._writer.close()
            async with asyncio.timeout(2.0):
                await self._writer.wait_closed()
