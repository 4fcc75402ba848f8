"""A small process supervisor: start named child processes, restart a crashed one with backoff,
stop all of them cleanly on SIGINT/SIGTERM.

It knows nothing of what the children are; `plantwarden up` hands it the table of processes
(the server now; the sensor and the gateway as they arrive). The state of every child is written
to a JSON file so that operators and tests can see pids and restart counts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from plantwarden.core.errors import ConfigurationError
from plantwarden.core.files import private_directory

log = logging.getLogger(__name__)
FAILING_AFTER = 5
"""Exits in a row, each soon after its start, after which a child is said to keep failing (a
setting or a file it needs is wrong: restarting alone will not help)."""


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process: a name and the command that runs it."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    nice: int = 0
    """Added to the process's niceness (0-19): a helper that must not take the CPU from the
    processes people wait for (the console, on a busy machine)."""


def ended(status: int) -> str:
    """How a process ended, from its `returncode`: a negative one is the signal that killed it."""
    if status >= 0:
        return f"exited with status {status}"
    try:
        return f"was killed by {signal.Signals(-status).name}"
    except ValueError:
        return f"was killed by signal {-status}"


@dataclass
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    last_exit: int | None = None
    history: list[float] = field(default_factory=list)


class Supervisor:
    """Keeps its children running until `stop()` (or SIGINT/SIGTERM with `run()`)."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        state_file: Path,
        max_backoff: float = 30.0,
        stop_timeout: float = 10.0,
        healthy_after: float = 10.0,
    ) -> None:
        if len({s.name for s in specs}) != len(specs):
            raise ValueError("process names must be unique")
        self._children = [_Child(spec) for spec in specs]
        self._state_file = state_file
        self._max_backoff = max_backoff
        self._stop_timeout = stop_timeout
        self._healthy_after = healthy_after
        self._stopping = threading.Event()

    def run(self) -> int:
        """Supervise until asked to stop; returns 0 after a clean stop."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def supervise(self) -> None:
        """Start every child and keep them running until `stop()`; leaves signal handlers alone.
        A second supervisor of the same state file (a second `plantwarden up` on one data
        directory, on another port) is refused before it starts anything."""
        lock = self._claim()
        try:
            for child in self._children:
                self._start(child)
            while not self._stopping.wait(0.2):
                self._tick()
        finally:
            try:
                self._stop_all()
            finally:
                os.close(lock)  # the lock goes with it

    def _claim(self) -> int:
        """An exclusive lock beside the state file, held while this supervises (the system drops
        it when the process ends, however it ends); `ConfigurationError` when another holds it."""
        private_directory(self._state_file.parent)
        lock = os.open(self._state_file.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise ConfigurationError(
                f"another supervisor (plantwarden up or demo{self._other_pid()}) runs the processes of"
                f" {self._state_file.parent.parent}: stop it first"
            ) from None
        return lock

    def _other_pid(self) -> str:
        try:
            pid = json.loads(self._state_file.read_text())["supervisor_pid"]
        except (OSError, ValueError, KeyError, TypeError):
            return ""
        return f", pid {pid}" if isinstance(pid, int) else ""

    def stop(self) -> None:
        """Ask `run()` to stop every child and return."""
        self._stopping.set()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping every process", signal.Signals(signum).name)
        self._stopping.set()

    def _tick(self) -> None:
        now = time.monotonic()
        for child in self._children:
            process = child.process
            if process is not None and process.poll() is not None:
                child.last_exit = process.returncode
                child.process = None
                delay = self._backoff(child, now)
                child.next_start = now + delay
                log.warning("%s %s; restarting in %.1f s", child.spec.name, ended(child.last_exit), delay)
                if len(child.history) == FAILING_AFTER:  # once per streak: its own errors are above
                    log.error(
                        "%s keeps failing: it ended %d times in a row within %g s of its start;"
                        " its errors are above; still restarting, every %g s at most",
                        child.spec.name,
                        FAILING_AFTER,
                        self._healthy_after,
                        self._max_backoff,
                    )
                self._write_state()
            if child.process is None and now >= child.next_start and not self._stopping.is_set():
                child.restarts += 1
                self._start(child)

    def _backoff(self, child: _Child, now: float) -> float:
        """Exponential backoff over the crashes of the recent past; a child that ran
        `healthy_after` seconds without crashing starts again at once."""
        if now - child.started_at >= self._healthy_after:
            child.history.clear()
        child.history.append(now)
        return min(self._max_backoff, 0.5 * 2 ** (len(child.history) - 1)) if len(child.history) > 1 else 0.0

    def _start(self, child: _Child) -> None:
        env = dict(os.environ)
        env.update(child.spec.env or {})
        child.process = subprocess.Popen(list(child.spec.argv), env=env)
        if child.spec.nice > 0:  # after the start (no preexec_fn: unsafe in a threaded parent)
            with contextlib.suppress(OSError):  # gone already: its exit is handled as any other
                os.setpriority(
                    os.PRIO_PROCESS,
                    child.process.pid,
                    min(os.getpriority(os.PRIO_PROCESS, 0) + child.spec.nice, 19),
                )
        child.started_at = time.monotonic()
        log.info("started %s (pid %d)", child.spec.name, child.process.pid)
        self._write_state()

    def _stop_all(self) -> None:
        running = [c for c in self._children if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            child.process.terminate()
        deadline = time.monotonic() + self._stop_timeout
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s; killing it", child.spec.name, self._stop_timeout)
                child.process.kill()
                child.process.wait()
            child.last_exit = child.process.returncode
            log.info("stopped %s", child.spec.name)
        for child in self._children:
            child.process = None
        self._write_state(stopped=True)

    def _write_state(self, *, stopped: bool = False) -> None:
        state = {
            "supervisor_pid": os.getpid(),
            "stopped": stopped,
            "processes": {
                c.spec.name: {
                    "pid": c.process.pid if c.process is not None else None,
                    "restarts": c.restarts,
                    "last_exit": c.last_exit,
                    "argv": list(c.spec.argv),
                }
                for c in self._children
            },
        }
        private_directory(self._state_file.parent)
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self._state_file)
