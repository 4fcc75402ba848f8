"""`plantwarden sim`: the simulated plant: generate its traffic, list and run attack scenarios."""

from __future__ import annotations

import time
from pathlib import Path

import click

from plantwarden.sim.attacks import SCENARIOS
from plantwarden.sim.traffic.generator import generate


@click.group("sim")
def sim_group() -> None:
    """The simulated plant: its traffic as captures, its attacks, the running plant."""


@sim_group.command("scenarios")
def list_scenarios() -> None:
    """The attack scenarios, with their ATT&CK technique."""
    for scenario in SCENARIOS.values():
        click.echo(f"{scenario.name:24} {scenario.technique:6} {scenario.description}")


def _attack_names(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[str]:
    if not value:
        return []
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == ["all"]:
        return list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise click.BadParameter(
            f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}, or all"
        )
    return names


@sim_group.command("generate")
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Same seed, same capture, byte for byte."
)
@click.option(
    "--packets", type=click.IntRange(1), default=100_000, show_default=True, help="Frames to write."
)
@click.option(
    "--attacks",
    callback=_attack_names,
    metavar="NAME,...",
    help="Attack scenarios to mix in (comma-separated, or 'all'); see `plantwarden sim scenarios`.",
)
@click.option("--nanoseconds", is_flag=True, help="Nanosecond timestamps (default: microseconds).")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
def generate_command(seed: int, packets: int, attacks: list[str], nanoseconds: bool, output: Path) -> None:
    """Write the plant's traffic to OUTPUT (.pcap or .pcapng), with labels and a ledger beside it."""
    started = time.monotonic()

    def progress(written: int) -> None:
        elapsed = time.monotonic() - started
        click.echo(f"  {written:,} of {packets:,} packets ({written / elapsed:,.0f}/s)", err=True)

    result = generate(
        output, seed=seed, packets=packets, attacks=attacks, nanoseconds=nanoseconds, progress=progress
    )
    ledger = result.ledger
    elapsed = time.monotonic() - started
    size = f"{ledger['packets']:,} packets ({ledger['bytes']:,} bytes)"
    click.echo(f"wrote {size} to {result.capture} in {elapsed:.1f} s")
    shared, split = ledger["share_of_pdus_in_shared_segments"], ledger["share_of_pdus_split"]
    click.echo(
        f"  Modbus PDUs: {ledger['modbus_pdus']:,}; in shared segments: {shared:.1%}; split: {split:.1%}; "
        f"retransmissions: {ledger['retransmissions']:,}"
    )
    for attack in ledger["attacks"]:
        sources = ", ".join(attack["sources"])
        actions = len(attack["actions"])
        click.echo(f"  attack {attack['instance']} ({attack['technique']}) from {sources}: {actions} actions")
    click.echo(f"  labels: {result.labels} ({ledger['attack_packets']:,} attack packets)")
    click.echo(f"  ledger: {result.ledger_path}")
