"""Telemetry samples into rows a process model can read: one row per device and time step.

Samples arrive one variable at a time (a register value in a read answer, a device's message), at
their own moments and not always in order. `DeviceFrames` puts each sample in the step of its time
(`step_ns`, one second by default, the HMI's polling period in the demo plant) and its device's
column of its variable; the last sample of a step wins. A step is handed on once the newest
sample of its device is `lateness_ns` past its end: what comes later for a step already handed on
is dropped and counted (`late`). A variable a step has no sample of is NaN there (the model reads
NaN as missing). Variables are learned as they appear: a device's columns only grow, in order of
first appearance, so rows handed on earlier are a prefix of the columns of later ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from plantwarden.core.clock import SECOND_NS
from plantwarden.core.errors import InvalidInput
from plantwarden.core.records.batch import RecordBatch

MAX_VARIABLES = 256
"""Columns one device may have: a bound on memory against a flood of invented variable names."""
MAX_OPEN_STEPS = 3600
"""Steps one device may hold open: past it the oldest are handed on early."""


@dataclass
class Rows:
    """Rows of one device: the start of each step (ns) and the values, NaN where missing."""

    device: str
    variables: list[str]
    times: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.times)

    def part(self, start: int, stop: int) -> Rows:
        """Rows `start` to `stop` (the same columns)."""
        return Rows(self.device, self.variables, self.times[start:stop], self.values[start:stop])


@dataclass
class _Device:
    variables: dict[str, int] = field(default_factory=dict)
    open: dict[int, dict[int, float]] = field(default_factory=dict)
    newest: int = -1
    released: int = -1
    """The last step handed on (nothing at or before it is taken any more)."""


class DeviceFrames:
    """Telemetry batches in, completed rows per device out (see the module's docstring)."""

    def __init__(self, *, site: str, step_ns: int = SECOND_NS, lateness_ns: int = 5 * SECOND_NS) -> None:
        if step_ns <= 0 or lateness_ns < 0:
            raise InvalidInput("the step must be positive and the lateness at least zero")
        self.site = site
        self.step_ns = step_ns
        self.lateness_ns = lateness_ns
        self.devices: dict[str, _Device] = {}
        self.late = 0
        """Samples dropped because their step was handed on already."""
        self.refused = 0
        """Samples dropped because their device had `MAX_VARIABLES` variables already."""

    def add(self, batch: RecordBatch) -> list[Rows]:
        """Take a telemetry batch (other sites' samples and bad-quality ones are left out); the
        rows it completes, per device."""
        if batch.kind.name != "telemetry" or not len(batch):
            return []
        keep = (batch["site"] == self.site) & (batch["quality"] == 0)
        if not keep.any():
            return []
        batch = batch.take(keep)
        steps = batch["ts"] // self.step_ns
        done: list[Rows] = []
        devices = batch["device"]
        for name in dict.fromkeys(devices.tolist()):
            rows = np.flatnonzero(devices == name)
            device = self.devices.setdefault(str(name), _Device())
            self._take(device, steps[rows], batch["variable"][rows], batch["value"][rows])
            found = self._release(str(name), device, final=False)
            if found is not None:
                done.append(found)
        return done

    def drain(self) -> list[Rows]:
        """Every step still open, handed on (the end of the input)."""
        found = [self._release(name, device, final=True) for name, device in self.devices.items()]
        return [rows for rows in found if rows is not None]

    def _take(
        self,
        device: _Device,
        steps: npt.NDArray[np.int64],
        variables: npt.NDArray[np.object_],
        values: npt.NDArray[np.float64],
    ) -> None:
        for step, variable, value in zip(steps.tolist(), variables.tolist(), values.tolist(), strict=True):
            if step <= device.released:
                self.late += 1
                continue
            column = device.variables.get(variable)
            if column is None:
                if len(device.variables) >= MAX_VARIABLES:
                    self.refused += 1
                    continue
                column = device.variables[variable] = len(device.variables)
            device.open.setdefault(step, {})[column] = value
            device.newest = max(device.newest, step)

    def _release(self, name: str, device: _Device, *, final: bool) -> Rows | None:
        if not device.open:
            return None
        ready = sorted(device.open)
        if not final:
            horizon = (device.newest * self.step_ns - self.lateness_ns) // self.step_ns
            cut = int(np.searchsorted(np.asarray(ready), horizon, side="left"))
            cut = max(cut, len(ready) - MAX_OPEN_STEPS)
            ready = ready[:cut]
        if not ready:
            return None
        values = np.full((len(ready), len(device.variables)), np.nan)
        for row, step in enumerate(ready):
            for column, value in device.open.pop(step).items():
                values[row, column] = value
        device.released = ready[-1]
        times = np.asarray(ready, dtype=np.int64) * self.step_ns
        return Rows(name, list(device.variables), times, values)
