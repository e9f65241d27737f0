"""Rediscovery benchmark: Lennard-Jones and Morse from ASE's calculators, 10 seeds each.

Prints, per problem, the success rate (exact functional form recovered, checked by
evopot.equivalence at 1e-3 relative on constants) and the median wall time of a run.
Goal (issue 2): LJ 10/10, Morse ≥ 8/10.

    .venv/bin/python benchmarks/rediscovery.py [--seeds 10] [--problems lennard-jones morse]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from evopot.rediscovery import PROBLEMS, run

GOALS = {"lennard-jones": 10, "morse": 8, "stillinger-weber": 8, "sutton-chen": 8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for name in args.problems:
            outcomes = []
            for seed in range(args.seeds):
                outcome = run(PROBLEMS[name](), Path(folder) / name, seed)
                outcomes.append(outcome)
                print(f"{name:14s} seed {seed}: {'found' if outcome.success else 'missed'} in {outcome.wall_time:6.1f} s, {outcome.generations} generations: {outcome.found}", flush=True)
            hits = sum(o.success for o in outcomes)
            median = statistics.median(o.wall_time for o in outcomes)
            goal = GOALS.get(name, args.seeds) * args.seeds / 10
            print(f"{name}: {hits}/{args.seeds} recovered (goal ≥ {goal:.0f}, ratio {hits / goal:.2f}); median wall time {median:.1f} s per run", flush=True)


if __name__ == "__main__":
    main()
