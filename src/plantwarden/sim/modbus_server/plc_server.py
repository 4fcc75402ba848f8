"""One PLC's Modbus/TCP server: its own address, identity, unit id and listen-only mode."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from plantwarden.core.errors import Conflict
from plantwarden.sim.behaviour import identity
from plantwarden.sim.modbus_server._pymodbus import (
    DiagnosticBase,
    ExcCodes,
    ExceptionResponse,
    ForceListenOnlyModeRequest,
    ModbusPDU,
    ReadDeviceInformationRequest,
    RestartCommunicationsOptionRequest,
    untyped,
)
from plantwarden.sim.modbus_server.answers import device_information, echo_single_write
from plantwarden.sim.modbus_server.datastore import ClientAddress, PlcDatastore, WriteObserver, current_client
from plantwarden.sim.modbus_server.handler import PlcModbusServer, UndecodableRequest
from plantwarden.sim.modbus_server.ports import check_bindable, resolve_port
from plantwarden.sim.physics import ProcessModel
from plantwarden.sim.plant import Plc

log = logging.getLogger(__name__)


class PlcServer:
    """One PLC's Modbus/TCP server, on the PLC's own address unless `address` says otherwise."""

    def __init__(
        self,
        plc: Plc,
        model: ProcessModel,
        *,
        port: int | None = None,
        address: str | None = None,
        on_write: WriteObserver | None = None,
    ) -> None:
        self.plc = plc
        self.address = address or plc.host.address
        self.requested_port = resolve_port(port, self.address)
        self.datastore = PlcDatastore(plc, model, on_write=on_write)
        self.identity = dict(identity(plc))
        self.listen_only = False
        self._modbus: PlcModbusServer | None = None
        self._listener: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on once started (the one the system chose for port 0)."""
        if self._listener is None or not self._listener.sockets:
            return self.requested_port
        return int(self._listener.sockets[0].getsockname()[1])

    @property
    def running(self) -> bool:
        """Whether the server listens."""
        return self._modbus is not None

    async def start(self) -> None:
        """Listen; Conflict if the address and port are taken, ConfigurationError if unusable."""
        if self._modbus is not None:
            raise Conflict(f"the Modbus server of PLC {self.plc.name} is already running")
        check_bindable(self.plc, self.address, self.requested_port)
        modbus = PlcModbusServer(self.datastore, (self.address, self.requested_port), self.respond)
        try:
            await modbus.serve_forever(background=True)
        except RuntimeError as error:  # lost a race for the port since the check
            where = f"{self.address}:{self.requested_port}"
            raise Conflict(f"PLC {self.plc.name} cannot listen on {where}: it is taken") from error
        self._modbus = modbus
        self._listener = modbus.transport if isinstance(modbus.transport, asyncio.Server) else None
        log.info("PLC %s serves Modbus/TCP on %s:%d", self.plc.name, self.address, self.port)

    async def stop(self) -> None:
        """Close the listening socket and every client connection."""
        modbus, listener = self._modbus, self._listener
        self._modbus = self._listener = None
        if modbus is None:
            return
        await untyped(modbus).shutdown()
        if listener is not None:
            await listener.wait_closed()
        await asyncio.sleep(0)  # let the closed connections report connection_lost
        self.listen_only = False

    async def __aenter__(self) -> PlcServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    async def respond(self, request: ModbusPDU, client: ClientAddress | None) -> ModbusPDU | None:
        """The answer to one decoded request from `client`, or None for no answer (listen-only)."""
        if self.listen_only:
            self._listen(request)
            return None
        if request.dev_id != self.plc.unit_id:
            return ExceptionResponse(request.function_code, ExcCodes.GATEWAY_NO_RESPONSE)
        if isinstance(request, ForceListenOnlyModeRequest):
            log.info("PLC %s is forced to listen-only mode", self.plc.name)
            self.listen_only = True
            return None
        if isinstance(request, ReadDeviceInformationRequest):
            return device_information(self.identity, request)
        if isinstance(request, UndecodableRequest) or type(request) is DiagnosticBase:
            return ExceptionResponse(request.function_code, ExcCodes.ILLEGAL_FUNCTION)
        return await self._run(request, client)

    def _listen(self, request: ModbusPDU) -> None:
        if isinstance(request, RestartCommunicationsOptionRequest) and request.dev_id == self.plc.unit_id:
            log.info("PLC %s leaves listen-only mode", self.plc.name)
            self.listen_only = False

    async def _run(self, request: ModbusPDU, client: ClientAddress | None) -> ModbusPDU:
        token = current_client.set(client)
        try:
            response = await request.datastore_update(self.datastore, request.dev_id)
        except Exception:
            log.exception("PLC %s failed to answer %s", self.plc.name, request)
            return ExceptionResponse(request.function_code, ExcCodes.DEVICE_FAILURE)
        finally:
            current_client.reset(token)
        return echo_single_write(request, response)
