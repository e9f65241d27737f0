"""The run directory of ``evopot search``: what it holds and how it is read back.

    config.yaml          the resolved config (absolute paths, every default filled in)
    log.txt              one line per generation, plus the dataset summary
    checkpoint.json      the engine's state after the last finished generation
    history.csv          best fitness and front size per generation
    front.csv            the Pareto front with train/validation/test errors (and crystal properties)
    potentials/*.json    one Potential per front member
    summary.json         dataset statistics, baselines, the front, timings

Files are written atomically (a temporary file renamed into place), so an interrupted
run never leaves a half-written checkpoint or front.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from evopot.errors import EvopotError, brief
from evopot.model.metrics import simplest_within
from evopot.model.potential import Potential

FRONT_COLUMNS = [
    "member",
    "complexity",
    "search_loss",
    "operations_per_atom",
    "train_force_mae",
    "train_force_rmse",
    "train_energy_mae",
    "train_stress_mae",
    "validation_force_mae",
    "validation_force_rmse",
    "validation_energy_mae",
    "validation_stress_mae",
    "test_force_mae",
    "test_force_rmse",
    "test_energy_mae",
    "test_stress_mae",
    "a0",
    "B",
    "C11",
    "C12",
    "C44",
    "C44_unrelaxed",
    "property_penalty",
    "formula",
    "potential",
]


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    """``rows`` as the CSV file ``path`` with ``columns`` (None as an empty cell), whole or
    not at all."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    write_atomic(path, buffer.getvalue())


@dataclass(frozen=True)
class RunDirectory:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def log(self) -> Path:
        return self.path / "log.txt"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.json"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def front(self) -> Path:
        return self.path / "front.csv"

    @property
    def potentials(self) -> Path:
        return self.path / "potentials"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    def member_path(self, member: int) -> Path:
        return self.potentials / f"member_{member:03d}.json"

    def append_log(self, line: str) -> None:
        with self.log.open("a") as handle:
            handle.write(line.rstrip("\n") + "\n")

    def write_checkpoint(self, state: dict) -> None:
        write_atomic(self.checkpoint, json.dumps(state))

    def read_checkpoint(self) -> dict:
        if not self.checkpoint.is_file():
            raise EvopotError(f"{self.path}: no checkpoint.json to resume from; start the run without --resume")
        try:
            return json.loads(self.checkpoint.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            detail = brief(exc)
            raise EvopotError(
                f"{self.checkpoint}: the checkpoint is damaged ({detail}); restore it or start a new run in another "
                f"output folder"
            ) from None

    def write_rows(self, path: Path, columns: list[str], rows: list[dict]) -> None:
        write_csv(path, columns, rows)

    def read_front(self) -> list[dict]:
        """Rows of front.csv, numbers as floats; clear errors for a missing or corrupt file."""
        if not self.path.is_dir():
            raise EvopotError(f"{self.path}: run directory not found")
        if not self.front.is_file():
            raise EvopotError(
                f"{self.front}: no front file; the search has not finished (continue it with evopot search "
                f"CONFIG --resume)"
            )
        rows = read_csv(self.front, "front file")
        if not rows or "formula" not in rows[0] or "complexity" not in rows[0]:
            raise EvopotError(f"{self.front}: corrupt front file (expected columns {', '.join(FRONT_COLUMNS[:3])}, …)")
        out = []
        for k, row in enumerate(rows):
            parsed = {}
            for key, value in row.items():
                if key in ("formula", "potential"):
                    parsed[key] = value
                elif key is None or value is None:
                    raise EvopotError(f"{self.front}: corrupt front file (row {k + 1} has the wrong number of fields)")
                else:
                    try:
                        parsed[key] = float(value) if value != "" else None
                    except ValueError:
                        raise EvopotError(
                            f"{self.front}: corrupt front file (row {k + 1}, column {key}: {value!r} is not a number)"
                        ) from None
            out.append(parsed)
        return out


def read_csv(path: Path, what: str) -> list[dict]:
    """The rows of the CSV file ``path``; one line naming it when it is not UTF-8 CSV."""
    try:
        text = path.read_bytes().decode("utf-8")
        if "\x00" in text:
            raise ValueError("it holds NUL bytes")
        return list(csv.DictReader(io.StringIO(text)))
    except (UnicodeDecodeError, ValueError, csv.Error) as exc:
        detail = brief(exc)
        raise EvopotError(f"{path}: corrupt {what} ({detail}); it is not the CSV evopot wrote") from None


def member_potential(run_path: str | Path, member: int | None = None) -> tuple[int, Potential]:
    """Front member ``member`` of a run, or when None the recommended one (the simplest
    within 5 % of the lowest validation force MAE, times 1 + its property penalty where
    the run has one), with its Potential."""
    run = RunDirectory(Path(run_path))
    rows = run.read_front()
    numbers = [int(row["member"]) for row in rows]
    if member is None:
        split = "validation" if rows[0].get("validation_force_mae") is not None else "train"
        member = int(
            simplest_within(
                rows,
                lambda row: row[f"{split}_force_mae"] * (1 + (row.get("property_penalty") or 0.0)),
                lambda row: row["complexity"],
            )["member"]
        )
    elif member not in numbers:
        raise EvopotError(
            f"{run.front}: no member {member}; the front has members {numbers[0]}–{numbers[-1]} (see evopot "
            f"show {run.path})"
        )
    return member, Potential.load(run.member_path(member))
