"""The neural-guided engine against plain GP with the same wall-clock budget (issue 8).

Each seed is searched twice, once per engine, with the same population and the same
``engine.time_limit`` (the guided engine's network training and distillation count
against it; the search stops after the generation that passes it):

- ``stillinger-weber``: evopot.testing.rediscovery's problem (Si snapshots labelled by
  matscipy's Stillinger–Weber, ``stillinger_weber.yaml``). Success: the exact SW form on
  the front (evopot.testing.equivalence, constants to 1e-3). Time to success: the run's wall
  time (a run stops ``patience`` generations after reaching the target error).
- ``silicon``: ``examples/silicon_threebody.yaml`` on the bundled mlearn Si DFT data. The
  test force MAE of the front member with the lowest validation error.

Prints one line per run, then per problem and engine the successes, the median time to
success and the best and median test force MAE, with the ratios guided/GP (goal: median
time to success ≤ 0.5× GP's, test MAE ≤ 1× GP's).

    .venv/bin/python benchmarks/guided_vs_gp.py [--seeds 10] [--budget 900] [--problems stillinger-weber
    silicon] [--engines gp guided]

``--engines`` runs one engine alone (to run the two side by side as separate processes);
the ratios need both.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import evopot
from evopot.config.schema import load_config
from evopot.testing.rediscovery import PROBLEMS, run

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("gp", "guided")


def stillinger_weber_run(engine: str, seed: int, budget: float, folder: Path) -> dict:
    problem = PROBLEMS["stillinger-weber"]()
    settings = {**problem.engine, "name": engine, "generations": 10_000, "time_limit": budget}
    outcome = run(problem, folder / engine, seed, settings)
    return {
        "success": outcome.success,
        "time": outcome.wall_time,
        "generations": outcome.generations,
        "formula": outcome.found,
    }


def silicon_run(engine: str, seed: int, budget: float, folder: Path) -> dict:
    path = ROOT / "examples/silicon_threebody.yaml"
    config = load_config(
        path, {"engine.name": engine, "engine.generations": 10_000, "engine.time_limit": budget, "seed": seed}
    )
    config = config.model_copy(update={"output": folder / f"silicon_{engine}_{seed}"})
    start = time.perf_counter()
    result = evopot.search(config, progress=False, config_path=str(path))
    best = result.best("validation")
    return {
        "mae": best.errors["test"]["force_mae"],
        "time": time.perf_counter() - start,
        "generations": result.generations,
        "formula": best.formula,
    }


def summary(problem: str, engine: str, runs: list[dict]) -> dict:
    if problem == "stillinger-weber":
        hits = [r["time"] for r in runs if r["success"]]
        median = statistics.median(hits) if hits else float("inf")
        print(
            f"{problem:16s} {engine:6s}: {len(hits)}/{len(runs)} recovered; median time to success {median:.0f} s",
            flush=True,
        )
        return {"median": median}
    maes = [r["mae"] for r in runs]
    print(
        f"{problem:16s} {engine:6s}: test force MAE best {min(maes):.4f}, median {statistics.median(maes):.4f} eV/Å",
        flush=True,
    )
    return {"best": min(maes), "median": statistics.median(maes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--budget", type=float, default=900.0, help="wall-clock seconds per run, the same for both engines"
    )
    parser.add_argument(
        "--problems", nargs="+", choices=["stillinger-weber", "silicon"], default=["stillinger-weber", "silicon"]
    )
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    args = parser.parse_args()
    runner = {"stillinger-weber": stillinger_weber_run, "silicon": silicon_run}
    print(f"budget {args.budget:g} s per run, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for problem in args.problems:
            results = {engine: [] for engine in args.engines}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for engine in args.engines:
                    r = runner[problem](engine, seed, args.budget, Path(folder) / problem)
                    results[engine].append(r)
                    outcome = (
                        ("found" if r["success"] else "missed") if "success" in r else f"test MAE {r['mae']:.4f} eV/Å"
                    )
                    print(
                        f"{problem:16s} {engine:6s} seed {seed}: {outcome} in {r['time']:.0f} s, "
                        f"{r['generations']} generations: {r['formula']}",
                        flush=True,
                    )
            summaries = {engine: summary(problem, engine, results[engine]) for engine in args.engines}
            if len(summaries) < 2:
                continue
            gp, guided = summaries["gp"], summaries["guided"]
            if problem == "stillinger-weber":
                ratio = guided["median"] / gp["median"] if gp["median"] < float("inf") else float("nan")
                print(
                    f"{problem}: median time to success guided/GP {ratio:.2f} (goal ≤ 0.5; nan: GP never succeeded)",
                    flush=True,
                )
            else:
                print(
                    f"{problem}: test force MAE guided/GP best {guided['best'] / gp['best']:.2f}, median "
                    f"{guided['median'] / gp['median']:.2f} (goal ≤ 1)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
