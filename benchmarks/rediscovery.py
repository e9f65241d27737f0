"""Rediscovery benchmark: Lennard-Jones, Morse, Stillinger–Weber and Sutton–Chen, 10 seeds each.

Prints, per problem, the success rate (exact functional form recovered, checked by
evopot.testing.equivalence at 1e-3 relative on constants), the median wall time of a run, and
that of the runs that found it.
Goals: LJ 10/10, Morse ≥ 8/10 (issue 2); Stillinger–Weber and Sutton–Chen ≥ 8/10
(issue 3). ``--time-limit`` caps each run's wall time (the problem's population and
generation limits still hold); ``--first-seed`` lets two processes share the seeds.

    .venv/bin/python benchmarks/rediscovery.py [--seeds 10] [--first-seed 0] [--time-limit S]
        [--problems lennard-jones morse stillinger-weber sutton-chen]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from evopot.testing.rediscovery import PROBLEMS, run

GOALS = {"lennard-jones": 10, "morse": 8, "stillinger-weber": 8, "sutton-chen": 8}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per run")
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for name in args.problems:
            outcomes = []
            problem = PROBLEMS[name]()
            engine = None if args.time_limit is None else {**problem.engine, "time_limit": args.time_limit}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                outcome = run(problem, Path(folder) / name, seed, engine)
                outcomes.append(outcome)
                print(
                    f"{name:14s} seed {seed}: {'found' if outcome.success else 'missed'} in "
                    f"{outcome.wall_time:6.1f} s, {outcome.generations} generations: {outcome.found}",
                    flush=True,
                )
            hits = sum(o.success for o in outcomes)
            median = statistics.median(o.wall_time for o in outcomes)
            found = [o.wall_time for o in outcomes if o.success]
            to_success = f", {statistics.median(found):.1f} s for the found ones" if found else ""
            rate, goal = hits / args.seeds, GOALS.get(name, 10) / 10
            print(
                f"{name}: {hits}/{args.seeds} recovered, rate {rate:.2f} (goal ≥ {goal:.2f}, ratio "
                f"{rate / goal:.2f}); median wall time {median:.1f} s per run{to_success}",
                flush=True,
            )


if __name__ == "__main__":
    main()
