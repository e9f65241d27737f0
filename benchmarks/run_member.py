"""What the hybrid benchmarks start from: a finished run's front member, its config
and its dataset."""

from __future__ import annotations

from pathlib import Path

from evopot.config.schema import load_config
from evopot.data.dataset import dataset_from_config
from evopot.search.rundir import RunDirectory, member_potential


def load_member(run_path: str | Path, member: int | None):
    """(run, member number, its Potential, the run's config, its dataset) of front
    member ``member`` of the run at ``run_path``; when None, the member with the lowest
    validation force MAE (the benchmarks compare accuracy, not the recommended member)."""
    run = RunDirectory(Path(run_path))
    if member is None:
        member = int(min(run.read_front(), key=lambda row: row["validation_force_mae"])["member"])
    number, potential = member_potential(run.path, member)
    config = load_config(run.config)
    return run, number, potential, config, dataset_from_config(config, str(run.config))
