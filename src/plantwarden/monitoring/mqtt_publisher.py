"""A minimal MQTT 3.1.1 publisher over asyncio (OASIS MQTT 3.1.1, sec. 3.3 and 4.3), optionally
over TLS with a client certificate: what a device agent needs to send its telemetry.

QoS 0 is sent and forgotten; QoS 1 waits for the broker's PUBACK. `send(..., dup=True)` sends a
message again with the same packet id and the DUP flag set, as a client does after a lost
acknowledgement (sec. 4.4): the receiver then sees it twice, which the platform counts as a
duplicate, not an attack. A message whose acknowledgement never came is an `MqttError` for the
caller (the agent reports it and stops); nothing is queued for a later connection. The broker
answering a packet it does not expect, or nothing at all, ends the connection with `MqttError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from plantwarden.monitoring.telemetry_mqtt import (
    CONNACK,
    CONNACK_REFUSALS,
    DISCONNECT,
    PINGREQ,
    PUBACK,
    PUBLISH,
    Broker,
    MqttError,
    connect_packet,
    packet,
    read_packet,
)


def publish_packet(
    topic: str, payload: bytes, *, qos: int, packet_id: int | None, dup: bool = False
) -> bytes:
    """A PUBLISH packet (not retained); `packet_id` only at QoS 1."""
    if qos not in (0, 1):
        raise ValueError("only QoS 0 and 1 are supported")
    name = topic.encode()
    if not name or len(name) > 65535 or "+" in topic or "#" in topic:
        raise ValueError(f"{topic!r} is not a topic to publish on")
    body = struct.pack(">H", len(name)) + name
    if qos:
        if packet_id is None or not 0 < packet_id < 65536:
            raise ValueError("a QoS 1 PUBLISH needs a packet id from 1 to 65535")
        body += struct.pack(">H", packet_id)
    flags = (0x08 if dup else 0) | (qos << 1)
    return packet(PUBLISH, flags, body + payload)


class MqttPublisher:
    """One connection to a broker for publishing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep_alive: int) -> None:
        self._reader, self._writer = reader, writer
        self.keep_alive = keep_alive
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._next_id = 0
        self._task: asyncio.Task[None] | None = None
        self._ping: asyncio.Task[None] | None = None
        self._lost: BaseException | None = None

    @classmethod
    async def open(
        cls,
        broker: Broker,
        client_id: str,
        *,
        keep_alive: int = 30,
        timeout: float = 10.0,
        clean_session: bool = True,
    ) -> MqttPublisher:
        """Connect and wait for the broker to accept (CONNACK 0)."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(broker.host, broker.port, ssl=broker.tls)
        publisher = cls(reader, writer, keep_alive)
        try:
            writer.write(connect_packet(client_id, keep_alive, clean_session=clean_session))
            await writer.drain()
            async with asyncio.timeout(timeout):
                kind, _, body = await read_packet(reader)
        except BaseException:
            await publisher.close()
            raise
        if kind != CONNACK or len(body) != 2:
            await publisher.close()
            raise MqttError("the broker did not answer CONNECT with CONNACK")
        if body[1]:
            await publisher.close()
            raise MqttError(f"the broker refused the connection: {CONNACK_REFUSALS.get(body[1], body[1])}")
        publisher._task = asyncio.create_task(publisher._read_loop())
        publisher._ping = asyncio.create_task(publisher._keep_alive())
        return publisher

    def packet_id(self) -> int:
        """The next packet id (1 to 65535, then round again)."""
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, timeout: float = 10.0) -> int | None:
        """Send one message; at QoS 1 wait for its PUBACK. The packet id used (None at QoS 0)."""
        packet_id = self.packet_id() if qos else None
        await self.send(topic, payload, qos=qos, packet_id=packet_id, timeout=timeout)
        return packet_id

    async def send(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int,
        packet_id: int | None,
        dup: bool = False,
        timeout: float = 10.0,
    ) -> None:
        """Send a PUBLISH as given (a redelivery: the same packet id, `dup` set) and, at QoS 1,
        wait for its acknowledgement."""
        if self._lost is not None:
            raise MqttError(f"connection to the broker lost: {self._lost}")
        waiter: asyncio.Future[None] | None = None
        if qos and packet_id is not None:
            waiter = self._acks[packet_id] = asyncio.get_running_loop().create_future()
        try:
            self._writer.write(publish_packet(topic, payload, qos=qos, packet_id=packet_id, dup=dup))
            await self._writer.drain()
            if waiter is not None:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(waiter)
        except TimeoutError:
            raise MqttError(
                f"the broker did not acknowledge the message on {topic!r} within {timeout:g} s"
            ) from None
        except OSError as error:
            raise MqttError(f"connection to the broker lost: {error}") from None
        finally:
            if packet_id is not None:
                self._acks.pop(packet_id, None)

    async def _read_loop(self) -> None:
        try:
            while True:
                kind, _, body = await read_packet(self._reader)
                if kind == PUBACK and len(body) == 2:
                    waiter = self._acks.get(struct.unpack(">H", body)[0])
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
        except (OSError, asyncio.IncompleteReadError, MqttError) as error:
            self._lost = error or EOFError("closed by the broker")
            for waiter in self._acks.values():
                if not waiter.done():
                    waiter.set_exception(MqttError(f"connection to the broker lost: {self._lost}"))

    async def _keep_alive(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            while True:
                await asyncio.sleep(self.keep_alive / 2)
                self._writer.write(packet(PINGREQ, 0, b""))
                await self._writer.drain()

    async def close(self) -> None:
        """DISCONNECT (when still possible) and close the connection."""
        for task in (self._task, self._ping):
            if task is not None:
                task.cancel()
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self._writer.write(packet(DISCONNECT, 0, b""))
            self._writer.close()
            async with asyncio.timeout(2.0):
                await self._writer.wait_closed()
