"""Parallel search on Dask (issue 34): wall time at 1 and 2 workers, side by side.

For the Stillinger–Weber rediscovery problem and the Si three-body search
(``examples/silicon_threebody.yaml``), each for a fixed number of generations, runs the
search at ``workers: 1`` (in one process) and ``workers: 2`` (a LocalCluster), each run in
a new Python process as a user's ``evopot search`` (no cache of an earlier run), checks
the two fronts are identical and prints the speed-up (goal ≥ 1.7× at 2 workers). Then
measures the scheduling overhead per task (a map of a function that does nothing) and
the distribution of per-candidate fit times of the one-worker run, and from them
predicts the speed-up at 16, 64 and 256 workers (Amdahl: the part of the run outside
the fits stays serial; each generation's fits are spread over the workers, one chunk
per worker at the least). A LocalCluster with more workers than cores gives the same
front again. Then the same search with 4 islands (``engine.islands``, each island's
epoch one task: its fits and its serial part on a worker) at 1 and 2 workers, and from
the one-worker run's island tasks (their total and their spread) the speed-up at 16,
64 and 256 workers with as many islands: what stays in this process is the merging of
the islands' archives and the checkpoint.

    .venv/bin/python benchmarks/parallel_search.py [--generations 3] [--problems sw silicon] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from evopot.executor import DaskExecutor
from evopot.search import scoring
from evopot.search.engines import islands
from evopot.search.run import search
from evopot.testing.rediscovery import PROBLEMS, write_problem

ROOT = Path(__file__).resolve().parents[1]
#: islands of the measured island runs
ISLANDS = 4


def config_for(problem: str, folder: Path, generations: int, workers: int, islands: int = 1) -> Path:
    if problem == "sw":
        path = write_problem(PROBLEMS["stillinger-weber"](), folder, seed=1)
        data = yaml.safe_load(path.read_text())
    else:
        data = yaml.safe_load((ROOT / "examples" / "silicon_threebody.yaml").read_text())
        for key in ("train", "test"):
            if key in data["data"]:
                data["data"][key] = str(ROOT / "examples" / data["data"][key])
        path = folder / "silicon.yaml"
    data["engine"] = {**data["engine"], "generations": generations, "workers": workers}
    if islands > 1:
        data["engine"].update(islands=islands, migration={"every": 1, "count": 2})
    data["output"] = str(folder / f"run_{problem}_{workers}_{islands}")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def in_fresh_process(kind: str, config: Path) -> tuple[float, str, list[float]]:
    """``timed_search`` (kind "search") or ``timed_islands`` ("islands") of ``config`` in a
    new Python process, as a user's ``evopot search`` starts: no cache of an earlier run
    (compiled bases, simplified formulas) makes a later one faster."""
    out = config.with_suffix(".timing.json")
    subprocess.run([sys.executable, __file__, "--one", kind, str(config), str(out)], check=True)
    wall, front, durations = json.loads(out.read_text())
    return wall, front, durations


def timed_search(config: Path) -> tuple[float, str, list[float]]:
    """Wall time, front.csv and the duration of every fit made in this process that
    the workers would make (the pruning's fits, with a budget of 0, stay here)."""
    durations = []
    fit = scoring.fit_constants

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fit(*args, **kwargs)
        finally:
            if (args[2] if len(args) > 2 else kwargs.get("max_evaluations", 60)) > 0:
                durations.append(time.perf_counter() - start)

    scoring.fit_constants = timed
    try:
        start = time.perf_counter()
        result = search(config, overwrite=True, progress=False)
        return time.perf_counter() - start, (result.run_directory / "front.csv").read_text(), durations
    finally:
        scoring.fit_constants = fit


def timed_islands(config: Path) -> tuple[float, str, list[float]]:
    """Wall time, front.csv and the duration of every island task (run in this process)."""
    durations = []
    evolve = islands._evolve

    def timed(*args):
        start = time.perf_counter()
        try:
            return evolve(*args)
        finally:
            durations.append(time.perf_counter() - start)

    islands._evolve = timed
    try:
        start = time.perf_counter()
        result = search(config, overwrite=True, progress=False)
        return time.perf_counter() - start, (result.run_directory / "front.csv").read_text(), durations
    finally:
        islands._evolve = evolve


def predicted_with_islands(wall: float, tasks: list[float], count: int, workers: int) -> float:
    """Speed-up at ``workers`` workers with as many islands, from a one-worker run of
    ``count`` islands: the caller's part grows with the islands, like the tasks; each
    epoch lasts as long as its slowest island (the measured max/mean)."""
    serial, total = max(wall - sum(tasks), 0.0), sum(tasks)
    slowest = statistics.fmean(max(tasks[k : k + count]) for k in range(0, len(tasks), count))
    imbalance = slowest / statistics.fmean(tasks)
    return (serial + total) / (serial + total * imbalance / workers)


def nothing(_, item):
    return item


def overhead_per_task(workers: int = 2, tasks: int = 400) -> float:
    """Seconds of scheduling per task: a map of chunks of one item doing nothing."""
    with DaskExecutor(workers=workers) as executor:
        shared = executor.share(0)
        executor.map(nothing, list(range(8)), shared)  # warm up
        start = time.perf_counter()
        for _ in range(tasks // (4 * workers)):
            executor.map(nothing, list(range(4 * workers)), shared)  # chunks of one item
        return (time.perf_counter() - start) / (tasks // (4 * workers) * 4 * workers)


def predicted_speedup(wall: float, fits: list[float], generations: int, workers: int, overhead: float) -> float:
    serial = max(wall - sum(fits), 0.0)
    per_generation = sum(fits) / (generations + 1)
    parallel = (generations + 1) * max(per_generation / workers, max(fits)) + len(fits) * overhead / workers
    return wall / (serial + parallel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--problems", nargs="+", default=["sw", "silicon"], choices=["sw", "silicon"])
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs at 1 and 2 workers, alternating; the medians are compared"
    )
    parser.add_argument("--one", nargs=3, metavar=("KIND", "CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # one timed run, in the process in_fresh_process started
        kind, config, out = args.one
        timed = timed_search if kind == "search" else timed_islands
        Path(out).write_text(json.dumps(timed(Path(config))))
        return
    overhead = overhead_per_task()
    print(f"scheduling overhead: {overhead * 1e3:.2f} ms per task (LocalCluster, 2 workers)")
    with tempfile.TemporaryDirectory() as folder:
        for problem in args.problems:

            def run(workers: int, islands: int = 1, kind: str = "search", problem: str = problem):
                # each config written just before its run: both problems' configs share a path
                return in_fresh_process(kind, config_for(problem, Path(folder), args.generations, workers, islands))

            walls_1, walls_2, fronts = [], [], set()
            for _ in range(args.repeats):  # alternating: a slow spell of this machine hits both
                wall_1, front_1, fits = run(1)
                fits_wall = wall_1  # the run the fit times are of
                wall_2, front_2, _ = run(2)
                walls_1.append(wall_1)
                walls_2.append(wall_2)
                fronts |= {front_1, front_2}
            _, front_4, _ = run(4)
            wall_1, wall_2 = statistics.median(walls_1), statistics.median(walls_2)
            print(
                f"{problem}: {args.generations} generations, workers 1: "
                f"{', '.join(f'{w:.1f}' for w in walls_1)} s, workers 2: {', '.join(f'{w:.1f}' for w in walls_2)} s; "
                f"medians {wall_1:.1f} / {wall_2:.1f} s, speed-up {wall_1 / wall_2:.2f}× (goal 1.7×); fronts "
                f"identical: {len(fronts) == 1}, with 4 workers on 2 cores: {front_4 in fronts and len(fronts) == 1}"
            )
            fits_s = np.array(fits)
            print(
                f"  {len(fits)} fits, {fits_s.sum():.1f} s of {fits_wall:.1f} s; per fit median "
                f"{statistics.median(fits) * 1e3:.1f} ms, 90 % {np.quantile(fits_s, 0.9) * 1e3:.1f} ms, "
                f"max {fits_s.max() * 1e3:.0f} ms"
            )
            predictions = ", ".join(
                f"{n}: {predicted_speedup(fits_wall, fits, args.generations, n, overhead):.1f}×" for n in (16, 64, 256)
            )
            print(f"  predicted speed-up without islands (the rest of the run stays serial): {predictions}")
            wall_i1, front_i1, tasks = run(1, ISLANDS, "islands")
            wall_i2, front_i2, _ = run(2, ISLANDS, "islands")
            print(
                f"  {ISLANDS} islands: workers 1: {wall_i1:.1f} s, workers 2: {wall_i2:.1f} s, speed-up "
                f"{wall_i1 / wall_i2:.2f}× (goal 1.7×); fronts identical: {front_i1 == front_i2}; island tasks "
                f"{sum(tasks):.1f} s of {wall_i1:.1f} s"
            )
            with_islands = ", ".join(
                f"{n}: {predicted_with_islands(wall_i1, tasks, ISLANDS, n):.1f}×" for n in (16, 64, 256)
            )
            print(f"  predicted speed-up with as many islands as workers: {with_islands}")


if __name__ == "__main__":
    main()
