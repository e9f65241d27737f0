"""What the hybrid benchmarks start from: a finished run's front member, its config
and its dataset."""

from __future__ import annotations

import tempfile
from pathlib import Path

from evopot.config.schema import load_config
from evopot.data.dataset import dataset_from_config
from evopot.search.rundir import RunDirectory, member_potential


def silicon_run(run_path: str | Path | None) -> str | Path:
    """``run_path``, or when None a new search of examples/silicon_threebody.yaml (into a
    temporary folder): the run the hybrid benchmarks use by default."""
    if run_path is not None:
        return run_path
    from evopot.search.run import search

    config = load_config(Path(__file__).resolve().parents[1] / "examples" / "silicon_threebody.yaml")
    config = config.model_copy(update={"output": Path(tempfile.mkdtemp()) / "run"})
    print(f"searching with examples/silicon_threebody.yaml into {config.output} …", flush=True)
    return search(config, progress=False).run_directory


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
