"""The detectors `sensor run` puts in front of the records plane, built from factories it is given.

Detection sits above monitoring, so the sensor does not import it: the root command puts each
detector's factory in `click.Context.meta` under the keys of `detector_keys.py`, and
`open_detectors` builds the chain the sensor writes into: process models -> baselines -> rules ->
zone check -> records plane. Each detector checks a batch and passes it on unchanged; every
second without traffic, and at the end, each reports what it holds (`flush`, `close`), and prints
one line (`summary`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import click

from plantwarden.core.runtime import Runtime
from plantwarden.monitoring.detector_keys import (
    BASELINE_FACTORY,
    PROCESS_FACTORY,
    RULES_FACTORY,
    ZONE_CHECK_FACTORY,
)
from plantwarden.monitoring.requests import RecordSink


class ClosingSink(RecordSink, Protocol):
    """A record sink to close when the sensor stops (the detector reports what is left)."""

    def close(self) -> None: ...

    def summary(self) -> str: ...

    def flush(self) -> int: ...


@dataclass(frozen=True)
class DetectorChoice:
    """Which detectors a run wants (from `sensor run`'s options)."""

    plant: Path | None = None
    zone_report_seconds: float = 60.0
    rules: bool = True
    rules_dir: Path | None = None
    baselines: bool = True
    process_models: bool = True
    learn_ns: int = 3600 * 1_000_000_000
    baseline_learn_ns: int = 7 * 86_400 * 1_000_000_000
    sensor_name: str = "sensor"


@dataclass
class Detectors:
    """The detectors of one run, outermost first, and the sink the sensor writes into."""

    sink: RecordSink | None
    chain: list[ClosingSink] = field(default_factory=list)

    def __iter__(self) -> Iterator[ClosingSink]:
        return iter(self.chain)

    def flush(self) -> None:
        for detector in self.chain:
            detector.flush()

    def close(self) -> None:
        """Close every detector, outermost first (each may still write into the next)."""
        failures = []
        for detector in self.chain:
            try:
                detector.close()
            except Exception as error:  # close the others, then report
                failures.append(error)
        if failures:
            raise failures[0]

    def summaries(self) -> list[str]:
        return [detector.summary() for detector in reversed(self.chain)]


def open_detectors(
    runtime: Runtime, site: str, writer: RecordSink | None, choice: DetectorChoice
) -> Detectors:
    """The chain `choice` asks for in front of `writer` (see the module's docstring)."""
    meta = click.get_current_context().meta
    steps: list[tuple[str, Callable[[RecordSink | None], Any]]] = []
    if choice.plant is not None:
        plant = choice.plant
        steps.append(
            (
                ZONE_CHECK_FACTORY,
                lambda inner: _factory(meta, ZONE_CHECK_FACTORY)(
                    runtime, plant, site, inner, flush_seconds=choice.zone_report_seconds
                ),
            )
        )
    if choice.rules:
        steps.append(
            (
                RULES_FACTORY,
                lambda inner: _factory(meta, RULES_FACTORY)(
                    runtime, choice.rules_dir, site, inner, choice.plant
                ),
            )
        )
    if choice.baselines:
        steps.append(
            (
                BASELINE_FACTORY,
                lambda inner: _factory(meta, BASELINE_FACTORY)(
                    runtime, site, inner, choice.plant, learning_ns=choice.baseline_learn_ns
                ),
            )
        )
    if choice.process_models and choice.plant is not None:  # telemetry from registers needs the map
        steps.append(
            (
                PROCESS_FACTORY,
                lambda inner: _factory(meta, PROCESS_FACTORY)(
                    runtime,
                    site,
                    inner,
                    learn_ns=choice.learn_ns,
                    trained_by=f"sensor {choice.sensor_name}",
                    plant=choice.plant,
                ),
            )
        )
    detectors = Detectors(writer)
    try:
        for _key, build in steps:
            outer: ClosingSink = build(detectors.sink)
            detectors.chain.insert(0, outer)
            detectors.sink = outer
    except BaseException:
        detectors.close()
        raise
    return detectors


def _factory(meta: dict[str, Any], key: str) -> Callable[..., ClosingSink]:
    factory: Callable[..., ClosingSink] | None = meta.get(key)
    if factory is None:
        raise click.UsageError(f"this command has no {key.rsplit('.', 1)[-1].replace('_', ' ')} to run")
    return factory
