"""Where a rediscovery search spends its time: wall time of the first population plus
N generations, and the share of the stages that dominate it.

Runs one problem of ``evopot.testing.rediscovery`` (default Stillinger–Weber, seed 3,
2 generations) under cProfile and prints the cumulative time of: fitting constants,
three-body columns, compiling formulas to NumPy, and building candidates from trees
(sympy: decompose and tidy). cProfile slows sympy-heavy code more than NumPy-heavy
code, so the shares are upper bounds for the sympy stages; the wall time without the
profiler is printed first, with the share of ``formula.tidy`` calls its cache
answered. The stages nest (three-body columns and compiling happen
inside fitting), so the shares do not add up.

    .venv/bin/python benchmarks/search_cost.py [--problem stillinger-weber] [--seed 3] [--generations 2]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
from pathlib import Path

from evopot.model.formula import tidy
from evopot.model.terms.base import compile_function, compile_with_slopes
from evopot.testing.rediscovery import PROBLEMS, run

STAGES = {
    "fitting constants": ("fitting.py", "fit_constants"),
    "  three-body columns": ("threebody.py", "prediction"),
    "  compiling formulas": ("base.py", "compile_with_slopes"),
    "building candidates (sympy)": ("candidate.py", "decompose"),
    "  of which tidy": ("formula.py", "tidy"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="stillinger-weber", choices=list(PROBLEMS))
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--generations", type=int, default=2)
    args = parser.parse_args()
    problem = PROBLEMS[args.problem]()
    engine = {**problem.engine, "generations": args.generations, "target_error": 0.0}
    with tempfile.TemporaryDirectory() as folder:
        plain = run(problem, Path(folder) / "plain", args.seed, engine)
        repeats = tidy.cache_info()
        for cache in (tidy, compile_function, compile_with_slopes):
            cache.cache_clear()  # the profiled run starts as cold as the first
        profile = cProfile.Profile()
        profile.enable()
        profiled = run(problem, Path(folder) / "profiled", args.seed, engine)
        profile.disable()
    print(
        f"{args.problem}, seed {args.seed}, population {engine['population']}: first population + "
        f"{plain.generations} generations in {plain.wall_time:.1f} s without the profiler, "
        f"{profiled.wall_time:.1f} s with it"
    )
    print(
        f"  formula.tidy: {repeats.hits + repeats.misses} calls in the plain run, "
        f"{repeats.hits / max(1, repeats.hits + repeats.misses):.0%} of them repeats answered by its cache"
    )
    stats = pstats.Stats(profile).stats
    for label, (module, name) in STAGES.items():
        seconds = sum(
            row[3] for (path, _, function), row in stats.items() if path.endswith(module) and function == name
        )
        print(f"  {label:30s} {seconds:7.1f} s  ({seconds / profiled.wall_time:5.1%} of the profiled run)")


if __name__ == "__main__":
    main()
