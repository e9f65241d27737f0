"""``evopot show RUN``: the Pareto front of a finished run as a table."""

from __future__ import annotations

import json
from pathlib import Path

from evopot.rundir import RunDirectory


def front_table(run_path: str | Path) -> str:
    """The front of ``run_path`` as an aligned plain-text table, simplest member first."""
    run = RunDirectory(Path(run_path))
    rows = run.read_front()
    splits = [s for s in ("train", "validation", "test") if rows[0].get(f"{s}_force_mae") is not None]
    header = ["#", "nodes"] + [f"{s[:5]} F-MAE" for s in splits] + [f"{s[:5]} E-MAE" for s in splits] + ["formula"]
    lines = [header]
    for row in rows:
        cells = [f"{int(row['member'])}", f"{int(row['complexity'])}"]
        cells += [f"{row[f'{s}_force_mae']:.4f}" for s in splits]
        cells += [f"{row[f'{s}_energy_mae']:.1f}" for s in splits]
        cells.append(row["formula"])
        lines.append(cells)
    widths = [max(len(line[k]) for line in lines) for k in range(len(header) - 1)]
    out = [f"Pareto front of {run.path}  (forces eV/Å, energies meV/atom)"]
    for line in lines:
        out.append("  ".join(cell.rjust(w) for cell, w in zip(line[:-1], widths)) + "  " + line[-1])
    summary = _summary(run)
    if summary:
        baselines = summary.get("baselines", {})
        zero = ", ".join(f"{s} {v['force_mae']:.4f}" for s, v in baselines.items())
        out.append(f"zero-force baseline F-MAE: {zero}")
    return "\n".join(out)


def _summary(run: RunDirectory) -> dict | None:
    try:
        return json.loads(run.summary.read_text())
    except (OSError, json.JSONDecodeError):
        return None
