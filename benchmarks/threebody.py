"""Three-body evaluator throughput: Stillinger–Weber silicon written as an evopot formula.

Part 1: the bundled Si training set (214 frames, 13,233 atoms): triplets built, the
angle table (cutoff values and force scatter, built once per dataset and reused by
every candidate of a search), and triplet evaluations (energy and forces of the
three-body term) per second once both exist: the cost of one candidate's column.
Part 2: how the cost grows with system size, diamond supercells from ~1k to ~100k
atoms (perturbed), geometry + triplets + angle table + full SW energy and forces.

    .venv/bin/python benchmarks/threebody.py [--max-atoms 100000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ase.build import bulk

from evopot.data.dataset import read_frames, unlabelled
from evopot.data.geometry import build_geometry, build_triplets
from evopot.model.evaluate import evaluate, term_prediction
from evopot.model.terms.threebody import build_angle_table
from evopot.testing.known import stillinger_weber

ROOT = Path(__file__).resolve().parents[1]


def timed(function, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-atoms", type=int, default=100_000)
    args = parser.parse_args()
    sw = stillinger_weber()
    angle = sw.terms[1]
    frames = read_frames(ROOT / "examples/data/Si/training.extxyz")
    geometry = build_geometry(frames, sw.cutoff.radius)
    build, triplets = timed(lambda: build_triplets(geometry, sw.cutoff.radius))
    geometry.triplets(sw.cutoff.radius)
    table, _ = timed(lambda: build_angle_table(geometry, sw.cutoff, None))
    term_prediction(angle, sw.cutoff, geometry)  # compile once, build the table once
    seconds, _ = timed(lambda: term_prediction(angle, sw.cutoff, geometry))
    print(
        f"Si training set: {geometry.n_atoms} atoms, {geometry.n_pairs} pairs, {len(triplets)} triplets "
        f"within {sw.cutoff.radius:.3f} Å"
    )
    print(
        f"  triplets built in {build:.3f} s, angle table in {table:.3f} s; three-body energy+forces in "
        f"{seconds:.4f} s → {len(triplets) / seconds:.3g} triplet evaluations/s"
    )
    print(
        f"{'atoms':>8s} {'triplets':>10s} {'pairs s':>8s} {'triplets s':>10s} {'table s':>8s} "
        f"{'SW E+F s':>9s} {'triplets/s':>11s} {'µs/atom':>8s}   (E+F with triplets and table built)"
    )
    for repeat in (3, 5, 8, 12, 15, 19, 23):
        atoms = bulk("Si", "diamond", 5.431, cubic=True).repeat(repeat)
        if len(atoms) > args.max_atoms:
            break
        atoms.rattle(0.05, seed=1)
        labelled = unlabelled([atoms])
        build_time, g = timed(lambda labelled=labelled: build_geometry(labelled, sw.cutoff.radius), repeat=2)
        triplet_time, _ = timed(lambda g=g: build_triplets(g, sw.cutoff.radius), repeat=2)
        table_time, _ = timed(lambda g=g: build_angle_table(g, sw.cutoff, None), repeat=2)
        evaluate(sw, g)
        seconds, _ = timed(lambda g=g: evaluate(sw, g), repeat=2)
        n = len(g.triplets(sw.cutoff.radius))
        print(
            f"{len(atoms):8d} {n:10d} {build_time:8.3f} {triplet_time:10.3f} {table_time:8.3f} "
            f"{seconds:9.3f} {n / seconds:11.3g} {1e6 * seconds / len(atoms):8.2f}"
        )


if __name__ == "__main__":
    main()
