"""`plantwarden events`: the embedded event log, its consumers, and the JetStream relay."""

from __future__ import annotations

import asyncio
import json
import signal

import click

from plantwarden.cli.options import format_option, text_table
from plantwarden.cli.state import CliState
from plantwarden.core import eventlog
from plantwarden.core.cli_values import IntegerRange
from plantwarden.core.config import NatsSettings


@click.group("events")
def events_group() -> None:
    """Domain events: the embedded log, its consumers, and the JetStream relay."""


@events_group.command("list")
@click.option("--limit", type=IntegerRange(1, 10_000), default=20, show_default=True, help="How many.")
@format_option
@click.pass_obj
def list_events(state: CliState, limit: int, output: str) -> None:
    """The most recent events of the embedded log, oldest first."""
    with state.runtime().ready_store().transaction() as session:
        events = eventlog.latest(session, limit)
    if output == "json":
        documents = [{"position": position, **json.loads(event.to_json())} for position, event in events]
        click.echo(json.dumps(documents, indent=2))
        return
    if not events:
        click.echo("no events yet")
        return
    rows = [
        (str(p), e.occurred_at.isoformat(timespec="seconds"), e.type, e.site or "-", e.source)
        for p, e in events
    ]
    click.echo(text_table(("position", "time", "type", "site", "source"), rows))


@events_group.command("consumers")
@format_option
@click.pass_obj
def list_consumers(state: CliState, output: str) -> None:
    """Each consumer of the embedded log: its cursor, and how far behind the head it is."""
    with state.runtime().ready_store().transaction() as session:
        head = eventlog.head_position(session)
        cursors = [(c.name, c.position, c.updated_at) for c in eventlog.consumers(session)]
    if output == "json":
        documents = [
            {"name": n, "position": p, "head": head, "behind": head - p, "updated_at": u.isoformat()}
            for n, p, u in cursors
        ]
        click.echo(json.dumps(documents, indent=2))
        return
    if not cursors:
        click.echo(f"no consumers yet (log head at {head})")
        return
    rows = [(n, str(p), str(head), str(head - p), u.isoformat(timespec="seconds")) for n, p, u in cursors]
    click.echo(text_table(("consumer", "position", "head", "behind", "updated"), rows))


@events_group.command("relay")
@click.option(
    "--batch-size", type=IntegerRange(1, 10_000), default=200, show_default=True, help="Events per batch."
)
@click.option(
    "--replay-after",
    type=IntegerRange(min=0),
    help="Publish again every event after this log position first (recovery; see docs/events.md).",
)
@click.pass_obj
def relay(state: CliState, batch_size: int, replay_after: int | None) -> None:
    """Publish the event log to the JetStream stream until Ctrl-C or SIGTERM."""
    from plantwarden.core import jetstream  # noqa: PLC0415 - keeps other commands' start-up fast

    runtime = state.runtime()
    store = runtime.ready_store()
    settings = runtime.settings[NatsSettings]
    if replay_after is not None:
        with store.transaction() as session:
            eventlog.set_cursor(session, jetstream.relay_cursor(settings), replay_after, clock=runtime.clock)
        click.echo(f"relaying again the events after position {replay_after}", err=True)

    async def main() -> None:
        stop = stop_on_signals()
        await jetstream.run_relay(store, settings, stop, batch_size=batch_size, clock=runtime.clock)

    try:
        asyncio.run(main())
    finally:
        runtime.close()


def stop_on_signals() -> asyncio.Event:
    """An event the running loop sets on SIGINT or SIGTERM (so that a batch finishes cleanly)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    return stop
