from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from plantwarden.core.errors import ConfigurationError
from plantwarden.core.processes import ProcessSpec, Supervisor, ended
from tests.helpers import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def read_state(path: Path) -> dict[str, object]:
    state: dict[str, object] = json.loads(path.read_text())
    return state


def pid_of(path: Path, name: str) -> int | None:
    processes = read_state(path)["processes"]
    assert isinstance(processes, dict)
    pid = processes[name]["pid"]
    return int(pid) if pid else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_crashed_process_is_restarted_and_all_stop_cleanly(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    supervisor = Supervisor(
        [ProcessSpec("one", SLEEPER), ProcessSpec("two", SLEEPER)], state_file=state, stop_timeout=5
    )
    runner = threading.Thread(target=supervisor.supervise, daemon=True)
    runner.start()
    first = wait_for(lambda: pid_of(state, "one"), what="first start")
    other = wait_for(lambda: pid_of(state, "two"), what="second process")
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: p if (p := pid_of(state, "one")) not in (None, first) else None, what="restart")
    processes = read_state(state)["processes"]
    assert isinstance(processes, dict)
    assert processes["one"]["restarts"] == 1
    assert processes["one"]["last_exit"] == -signal.SIGKILL
    assert pid_of(state, "two") == other  # the healthy sibling was left alone
    supervisor.stop()
    runner.join(timeout=15)
    assert not runner.is_alive()
    assert not alive(second) and not alive(other)
    assert read_state(state)["stopped"] is True


def test_a_process_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
    ]
    state = tmp_path / "state.json"
    supervisor = Supervisor([ProcessSpec("stubborn", stubborn)], state_file=state, stop_timeout=1)
    runner = threading.Thread(target=supervisor.supervise, daemon=True)
    runner.start()
    pid = wait_for(lambda: pid_of(state, "stubborn"), what="start")
    wait_for(lambda: True if _ignores_term(pid) else None, what="the child to ignore SIGTERM")
    supervisor.stop()
    runner.join(timeout=10)
    assert not alive(pid)
    processes = read_state(state)["processes"]
    assert isinstance(processes, dict) and processes["stubborn"]["last_exit"] == -signal.SIGKILL


def _ignores_term(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def test_backoff_grows_for_a_process_that_keeps_crashing(tmp_path: Path) -> None:
    supervisor = Supervisor([ProcessSpec("x", SLEEPER)], state_file=tmp_path / "s.json", max_backoff=4)
    child = supervisor._children[0]
    child.started_at = 100.0
    delays = [supervisor._backoff(child, 100.0 + i * 0.1) for i in range(6)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 4.0, 4.0]
    child.started_at = 200.0
    assert supervisor._backoff(child, 260.0) == 0.0  # it ran long enough to count as healthy again


def test_names_must_be_unique(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        Supervisor([ProcessSpec("a", SLEEPER), ProcessSpec("a", SLEEPER)], state_file=tmp_path / "s")


def test_a_process_started_nicer_runs_at_that_niceness(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    supervisor = Supervisor(
        [ProcessSpec("helper", SLEEPER, nice=5), ProcessSpec("main", SLEEPER)],
        state_file=state,
        stop_timeout=5,
    )
    runner = threading.Thread(target=supervisor.supervise, daemon=True)
    runner.start()
    try:
        helper = wait_for(lambda: pid_of(state, "helper"), what="the helper")
        main = wait_for(lambda: pid_of(state, "main"), what="the main process")
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, helper) == min(own + 5, 19)
        assert os.getpriority(os.PRIO_PROCESS, main) == own
    finally:
        supervisor.stop()
        runner.join(timeout=15)


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (0, "exited with status 0"),
        (3, "exited with status 3"),
        (-signal.SIGKILL, "was killed by SIGKILL"),
        (-signal.SIGSEGV, "was killed by SIGSEGV"),
        (-200, "was killed by signal 200"),
    ],
)
def test_the_log_says_how_a_process_ended(status: int, text: str) -> None:
    assert ended(status) == text


def test_a_killed_process_is_logged_with_its_signal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "state.json"
    supervisor = Supervisor([ProcessSpec("one", SLEEPER)], state_file=state, stop_timeout=5)
    runner = threading.Thread(target=supervisor.supervise, daemon=True)
    with caplog.at_level("WARNING", logger="plantwarden.core.processes"):
        runner.start()
        first = wait_for(lambda: pid_of(state, "one"), what="first start")
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: p if (p := pid_of(state, "one")) not in (None, first) else None, what="restart")
        supervisor.stop()
        runner.join(timeout=15)
    assert "one was killed by SIGKILL; restarting in 0.0 s" in caplog.messages


def test_a_process_that_keeps_failing_at_its_start_is_said_to_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong setting made a child exit at once, again and again: warnings at growing intervals,
    never a line that said restarting would not help."""
    failing = ProcessSpec("gateway", [sys.executable, "-c", "raise SystemExit(1)"])
    supervisor = Supervisor([failing], state_file=tmp_path / "s.json", max_backoff=0.05)
    runner = threading.Thread(target=supervisor.supervise, daemon=True)
    with caplog.at_level("WARNING", logger="plantwarden.core.processes"):
        runner.start()
        wait_for(lambda: (read_state(tmp_path / "s.json")["processes"]["gateway"]["restarts"] >= 7) or None)  # type: ignore[index]
        supervisor.stop()
        runner.join(timeout=15)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "gateway keeps failing: it ended 5 times in a row within 10 s of its start; its errors are above;"
        " still restarting, every 0.05 s at most"
    ]


def test_a_second_supervisor_of_the_same_processes_is_refused(tmp_path: Path) -> None:
    """A second `plantwarden up` on the same data directory (on another port) ran a second set of
    every process beside the first: two sensors, two watchdogs."""
    state = tmp_path / "run" / "supervisor.json"
    first = Supervisor([ProcessSpec("one", SLEEPER)], state_file=state, stop_timeout=5)
    runner = threading.Thread(target=first.supervise, daemon=True)
    runner.start()
    try:
        wait_for(lambda: pid_of(state, "one"), what="the first supervisor's child")
        second = Supervisor([ProcessSpec("one", SLEEPER)], state_file=state, stop_timeout=5)
        with pytest.raises(ConfigurationError) as refused:
            second.supervise()
        assert str(refused.value) == (
            f"another supervisor (plantwarden up or demo, pid {os.getpid()}) runs the processes of"
            f" {tmp_path}: stop it first"
        )
        assert read_state(state)["stopped"] is False  # the second wrote nothing
    finally:
        first.stop()
        runner.join(timeout=15)
    again = Supervisor([ProcessSpec("one", SLEEPER)], state_file=state, stop_timeout=5)
    threading.Timer(0.5, again.stop).start()
    again.supervise()  # the first one's lock went with it
    assert read_state(state)["stopped"] is True
