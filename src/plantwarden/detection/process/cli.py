"""`plantwarden detect evaluate`: run a benchmark's published protocol on the process model."""

from __future__ import annotations

import json
from pathlib import Path

import click

from plantwarden.core.cli_values import IntegerRange, given_flag, output_file_option, time_ns
from plantwarden.core.errors import InvalidInput
from plantwarden.core.parsing import NotUtf8Text, utf8_text
from plantwarden.detection.process import config as configs
from plantwarden.detection.process.config import ModelConfig
from plantwarden.detection.process.evaluate import (
    Run,
    evaluate_batadal,
    evaluate_csv,
    evaluate_skab,
    write_predictions,
)
from plantwarden.detection.process.report import table

DEFAULTS = {"skab": configs.SKAB, "batadal": configs.BATADAL, "csv": ModelConfig()}


@click.group("detect")
def detect_group() -> None:
    """Process anomaly models: evaluate them on public benchmarks or your own CSV."""


@detect_group.command("evaluate")
@click.option("--dataset", type=click.Choice(sorted(DEFAULTS)), required=True, help="Which protocol to run.")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@output_file_option(
    "--predictions-out",
    help="Write every test point's score, threshold, prediction, label and top variable (CSV).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON object of model settings (default: the committed configuration of the dataset).",
)
@click.option(
    "--file", "files", multiple=True, metavar="FOLDER/NAME.csv", help="SKAB: only these files (repeatable)."
)
@click.option(
    "--anomaly-free", is_flag=True, help="SKAB: add anomaly-free/anomaly-free.csv to every training set."
)
@click.option(
    "--time-column",
    default="time",
    show_default=True,
    help="CSV: the time column (ISO 8601 or --time-format).",
)
@click.option("--time-format", help="CSV: strptime format of the time column (default ISO 8601).")
@click.option("--label-column", help="CSV: 0/1 label column (metrics are printed when given).")
@click.option(
    "--delimiter",
    default=",",
    show_default=True,
    callback=lambda _ctx, _param, value: _delimiter(value),
    help="CSV: field separator (one character; \\t for a tab).",
)
@click.option("--train-rows", type=IntegerRange(min=1), help="CSV: the first N rows (in time order) train.")
@click.option(
    "--train-until",
    "train_until_ns",
    callback=time_ns,
    help="CSV: rows before this ISO 8601 time train (UTC unless it has an offset).",
)
def evaluate_command(
    dataset: str,
    path: Path,
    predictions_out: Path | None,
    config_file: Path | None,
    files: tuple[str, ...],
    anomaly_free: bool,
    time_column: str,
    time_format: str | None,
    label_column: str | None,
    delimiter: str,
    train_rows: int | None,
    train_until_ns: int | None,
) -> None:
    """Run DATASET's protocol on PATH (the SKAB or BATADAL folder, or a CSV file) and print its metrics."""
    _check_options(click.get_current_context(), dataset)
    config = _config(config_file, DEFAULTS[dataset])
    progress = _progress
    if dataset == "skab":
        run = evaluate_skab(path, config, files=files or None, anomaly_free=anomaly_free, progress=progress)
    elif dataset == "batadal":
        run = evaluate_batadal(path, config, progress=progress)
    else:
        run = evaluate_csv(
            path,
            config,
            time_column=time_column,
            time_format=time_format,
            label_column=label_column,
            delimiter=delimiter,
            train_rows=train_rows,
            train_until_ns=train_until_ns,
        )
    _report(run, predictions_out)


ONLY_FOR = {
    "files": "skab",
    "anomaly_free": "skab",
    "time_column": "csv",
    "time_format": "csv",
    "label_column": "csv",
    "delimiter": "csv",
    "train_rows": "csv",
    "train_until_ns": "csv",
}
"""The options that one dataset's protocol reads: given with another, they would change nothing."""


def _check_options(ctx: click.Context, dataset: str) -> None:
    """Refuse, before any work, an option the dataset's protocol does not read, and a CSV run
    without its one training split."""
    for name, only in ONLY_FOR.items():
        flag = given_flag(ctx, name)
        if flag is not None and dataset != only:
            raise click.UsageError(f"{flag} is for --dataset {only}, not {dataset}")
    if dataset == "csv" and (ctx.params["train_rows"] is None) == (ctx.params["train_until_ns"] is None):
        raise click.UsageError("--dataset csv takes one of --train-rows N and --train-until TIME")


def _report(run: Run, predictions_out: Path | None) -> None:
    click.echo(table(run))
    for note in run.notes:
        click.echo(f"# {note}")
    if predictions_out is not None:
        rows = write_predictions(predictions_out, run.predictions)
        click.echo(f"# predictions: {rows} rows in {predictions_out}")


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _config(path: Path | None, default: ModelConfig) -> ModelConfig:
    if path is None:
        return default
    try:
        data = json.loads(utf8_text(path.read_bytes()))
    except NotUtf8Text as error:
        raise InvalidInput(f"{path}: {error}") from None
    except ValueError as error:
        raise InvalidInput(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: a JSON object of model settings is expected")
    try:
        return ModelConfig.from_dict({**default.to_dict(), **data})
    except InvalidInput as error:  # an unknown setting, one of the wrong type or out of range
        raise InvalidInput(f"{path}: {error.message}") from None


def _delimiter(value: str) -> str:
    delimiter = "\t" if value == "\\t" else value
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise click.BadParameter(
            f"{value!r}: one character other than a quote or a line break (\\t for a tab)",
            param_hint="--delimiter",
        )
    return delimiter
