"""One PLC's register tables as pymodbus sees them, read from and written to its process model."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextvars import ContextVar

from plantwarden.core.errors import InvalidInput
from plantwarden.sim.modbus_server._pymodbus import ExcCodes, ModbusServerContext
from plantwarden.sim.physics import ProcessModel
from plantwarden.sim.plant import REGISTER_KINDS, Plc, RegisterKind

log = logging.getLogger(__name__)

ClientAddress = tuple[str, int]
WriteObserver = Callable[[str, int, tuple[int, ...], ClientAddress | None], None]
"""`on_write(plc_name, address, raw_values, client_address)`, called after each accepted write."""

FUNCTION_KINDS: dict[int, RegisterKind] = {
    1: "coil",
    2: "discrete",
    3: "holding",
    4: "input",
    5: "coil",
    6: "holding",
    15: "coil",
    16: "holding",
    22: "holding",
    23: "holding",
}
"""The table each data-access function code reads or writes."""

current_client: ContextVar[ClientAddress | None] = ContextVar("modbus_client", default=None)
"""The client whose request is being run, for the write observer."""


class PlcDatastore(ModbusServerContext):
    """One PLC's register tables, read from and written to its process model.

    Each address belongs to the table of its register's `kind`. Reading or writing an address
    without a register of that kind, or writing a read-only one, gives exception 2; a value the
    register cannot take (a float32 word making NaN) gives exception 3, and the words before it
    in the same request stay written. The unit id is checked by `PlcServer`, not here.

    pymodbus 3.16 deprecates `ModbusServerContext` (its constructor logs that it goes in v4) for
    `SimDevice`/`SimData`, whose tables hold values of their own. Here the values live in the
    model, so this subclass takes the interface only (`async_getValues`/`async_setValues`, called
    by each request PDU's `datastore_update`), without the constructor; `old_simulator = True`
    makes `ModbusBaseServer` use it as it is.
    """

    def __init__(self, plc: Plc, model: ProcessModel, *, on_write: WriteObserver | None = None) -> None:
        # Not ModbusServerContext.__init__: it builds pymodbus's own tables and logs a deprecation.
        self.old_simulator = True
        self.simdevices = []
        self.plc = plc
        self.model = model
        self.on_write = on_write
        self.tables: dict[str, frozenset[int]] = {
            kind: frozenset(a for r in plc.registers if r.kind == kind for a in r.addresses)
            for kind in REGISTER_KINDS
        }
        self._writable = frozenset(a for r in plc.registers if r.writable for a in r.addresses)

    def read(self, function_code: int, address: int, count: int) -> list[int] | list[bool] | ExcCodes:
        """The raw words (or bits) at `address`.. for a read function code, or an exception code."""
        kind = FUNCTION_KINDS.get(function_code)
        if kind is None:
            return ExcCodes.ILLEGAL_FUNCTION
        addresses = range(address, address + count)
        if count < 1 or not self.tables[kind].issuperset(addresses):
            return ExcCodes.ILLEGAL_ADDRESS
        image = self.model.registers()
        if kind in ("coil", "discrete"):
            return [bool(image[a]) for a in addresses]
        return [image[a] for a in addresses]

    def write(
        self, function_code: int, address: int, values: Sequence[int], client: ClientAddress | None = None
    ) -> ExcCodes | None:
        """Write raw words (or 0/1 bits) from `address` on; None when accepted, else an exception code."""
        kind = FUNCTION_KINDS.get(function_code)
        if kind not in ("holding", "coil"):
            return ExcCodes.ILLEGAL_FUNCTION
        words = tuple(int(value) for value in values)
        addresses = range(address, address + len(words))
        if not words or not (self.tables[kind] & self._writable).issuperset(addresses):
            return ExcCodes.ILLEGAL_ADDRESS
        try:
            for offset, word in enumerate(words):
                self.model.write(address + offset, word)
        except InvalidInput:
            return ExcCodes.ILLEGAL_VALUE
        self._notify(address, words, client)
        return None

    def _notify(self, address: int, words: tuple[int, ...], client: ClientAddress | None) -> None:
        if self.on_write is None:
            return
        try:
            self.on_write(self.plc.name, address, words, client)
        except Exception:
            log.exception("the write observer failed on a write to PLC %s", self.plc.name)

    async def async_getValues(  # noqa: N802 (pymodbus's name)
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        """pymodbus's read hook: `read`."""
        return self.read(func_code, address, count)

    async def async_setValues(  # noqa: N802 (pymodbus's name)
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        """pymodbus's write hook: `write`, with the client of the request being answered."""
        return self.write(func_code, address, [int(value) for value in values], current_client.get())

    def device_ids(self) -> list[int]:
        """The unit ids served."""
        return [self.plc.unit_id]
