"""`generate`: the plant's traffic, with attacks, as a capture file, its labels and its ledger.

Talkers wake in time order from one heap; before a talker acts, every frame captured before that
moment is final and goes to the file, so memory holds only the frames in flight. Attacks start
when the capture reaches an even share of its packets (two attacks: at a third and two thirds).
The capture starts at a fixed time (2026-01-05 08:00 UTC), so the same seed, packet count and
attacks give byte-identical files. The three files appear together when generation succeeds:
they are written under temporary names and renamed at the end (`core.files`); when it fails
(Ctrl-C, a full disk) the temporaries are removed and files of the same names stay as they were.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantwarden.core.errors import InvalidInput
from plantwarden.core.files import atomic_open
from plantwarden.sim.attacks import Scenario, scenario
from plantwarden.sim.pcap import capture_format, capture_writer
from plantwarden.sim.plant import Plant, default_plant
from plantwarden.sim.traffic.attack_runner import AttackRunner
from plantwarden.sim.traffic.network import mac_of
from plantwarden.sim.traffic.output import Output
from plantwarden.sim.traffic.run import Run
from plantwarden.sim.traffic.talkers import Talker, everyday_talkers
from plantwarden.sim.traffic.truth import host_entries

START = 1_767_600_000.0
"""2026-01-05 08:00:00 UTC, the first moment of every generated capture."""
PROGRESS_EVERY = 100_000
MAX_PACKETS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Generated:
    """The files a generation wrote and its ledger."""

    capture: Path
    labels: Path
    ledger_path: Path
    ledger: dict[str, Any]


def companion_paths(capture: Path) -> tuple[Path, Path]:
    """Where the labels (CSV) and the ledger (JSON) of `capture` are written: beside it."""
    stem = capture.name.removesuffix(capture.suffix)
    return capture.with_name(f"{stem}.labels.csv"), capture.with_name(f"{stem}.ledger.json")


def generate(
    capture: Path,
    *,
    seed: int,
    packets: int,
    attacks: Sequence[str] = (),
    plant: Plant | None = None,
    nanoseconds: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Generated:
    """Write `packets` frames of the plant's traffic with `attacks` (scenario names) to `capture`."""
    kind = capture_format(capture)
    if not 1 <= packets <= MAX_PACKETS:
        raise InvalidInput(f"--packets must be 1-{MAX_PACKETS}, not {packets}")
    scenarios = [scenario(name) for name in attacks]
    if not capture.parent.is_dir():
        raise InvalidInput(f"{capture.parent} is not a directory")
    labels_path, ledger_path = companion_paths(capture)
    with (
        atomic_open(capture) as stream,
        atomic_open(labels_path, "w", newline="") as labels,
        atomic_open(ledger_path, "w") as ledger_file,
    ):
        comment = f"Plantwarden simulated plant, seed {seed}"
        writer = capture_writer(stream, kind, nanoseconds=nanoseconds, comment=comment)
        out = Output(writer, labels, packets)
        run = Run(plant or default_plant(), seed, out, START)
        network = run.network
        out.ledger.hosts.know(host_entries(run.plant, network.hosts.values(), mac_of, network.router_mac))
        _drive(run, everyday_talkers(run), scenarios, progress)
        out.finish()
        writer.close()
        ledger = {"seed": seed, "start": START, **out.ledger.to_dict()}
        ledger_file.write(json.dumps(ledger, indent=2) + "\n")
    return Generated(capture, labels_path, ledger_path, ledger)


def _drive(
    run: Run, talkers: list[Talker], scenarios: Sequence[Scenario], progress: Callable[[int], None] | None
) -> None:
    out = run.out
    stagger = run.rng("start")
    queue: list[tuple[float, int, Talker]] = []
    for order, talker in enumerate(talkers):
        queue.append((run.start + stagger.uniform(0.0, 2.0), order, talker))
    heapq.heapify(queue)
    thresholds = [out.limit * (index + 1) // (len(scenarios) + 1) for index in range(len(scenarios))]
    pending = list(zip(thresholds, scenarios, strict=True))
    order = len(talkers)
    reported = 0
    while queue and not out.full:
        time, position, talker = heapq.heappop(queue)
        while pending and out.ledger.packets + out.queued >= pending[0][0]:
            _, chosen = pending.pop(0)
            order += 1
            instance = f"{chosen.name}-{len(run.out.ledger.attacks) + 1}"
            heapq.heappush(queue, (time, order, AttackRunner(run, chosen, instance)))
        out.release(time)
        following = talker.wake(time)
        if following is not None:
            heapq.heappush(queue, (following, position, talker))
        if progress is not None and out.ledger.packets - reported >= PROGRESS_EVERY:
            reported = out.ledger.packets
            progress(reported)
