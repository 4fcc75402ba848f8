"""The printed table of an evaluation run: one line per subset, the dataset's standard metrics."""

from __future__ import annotations

from plantwarden.detection.process.evaluate import Run, Summary


def table(run: Run) -> str:
    """Aligned plain-text table (the figures docs/detection.md quotes)."""
    header, lines = _columns(run), []
    for summary in run.summaries:
        lines.append(_cells(run.dataset, summary))
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *lines]
    )


def _columns(run: Run) -> list[str]:
    base = ["subset", "files", "points", "F1", "FAR %", "MAR %"]
    if run.dataset == "skab":
        return [*base, "NAB", "NAB LowFP", "NAB LowFN", "missed CPs", "FPs"]
    if run.dataset == "batadal":
        return [*base, "S", "S_TTD", "S_CM", "TPR", "TNR", "TTD h (per attack)"]
    return [*base, "precision", "recall"]


def _cells(dataset: str, s: Summary) -> list[str]:
    b = s.binary
    cells = [s.subset, str(s.files), str(s.points)]
    cells += ["-", "-", "-"] if b is None else [f"{b.f1:.4f}", f"{b.far:.2f}", f"{b.mar:.2f}"]
    if dataset == "skab" and s.nab is not None:
        nab = s.nab.normalised()
        cells += [
            f"{nab['standard']:.2f}",
            f"{nab['low_fp']:.2f}",
            f"{nab['low_fn']:.2f}",
            str(s.nab.missed),
            str(s.nab.false_positives),
        ]
    elif dataset == "batadal" and s.batadal is not None:
        r = s.batadal
        ttd = " ".join("-" if t is None else f"{t:.0f}" for t in r.ttd_hours)
        cells += [f"{r.s:.3f}", f"{r.s_ttd:.3f}", f"{r.s_cm:.3f}", f"{r.tpr:.3f}", f"{r.tnr:.3f}", ttd]
    elif dataset == "csv":
        cells += ["-", "-"] if b is None else [f"{b.precision:.4f}", f"{b.recall:.4f}"]
    return cells
