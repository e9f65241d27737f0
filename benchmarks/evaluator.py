"""Evaluator throughput on the bundled Si training set (214 frames, 13,233 atoms).

A population of random pair formulas from search_spaces/pair.yaml is evaluated
(energies of every frame and forces on every atom, symbolic derivatives, NumPy) on all
pairs within the cutoff. Prints node×pair evaluations per second, and the same for
the full constant fit that the search runs per candidate, without and with the DFT
stresses as fit targets (``fitness.stresses``).

    .venv/bin/python benchmarks/evaluator.py [--population 200] [--cutoff 5.0]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from pathlib import Path

import numpy as np
from deap import gp

from evopot.data.dataset import read_frames
from evopot.data.geometry import build_geometry
from evopot.model.cutoff import Cutoff
from evopot.model.evaluate import evaluate
from evopot.model.potential import Potential
from evopot.search.candidate import TermShape, decompose
from evopot.search.engines.expression import build_primitive_set, tree_to_sympy
from evopot.search.engines.space import load_search_space, resolve_search_space_path
from evopot.search.fitting import FitProblem
from evopot.search.scoring import Scorer

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=200)
    parser.add_argument("--cutoff", type=float, default=5.0)
    args = parser.parse_args()
    frames = read_frames(ROOT / "examples/data/Si/training.extxyz")
    start = time.perf_counter()
    geometry = build_geometry(frames, args.cutoff)
    print(
        f"geometry: {geometry.n_frames} frames, {geometry.n_atoms} atoms, {geometry.n_pairs} pairs within "
        f"{args.cutoff} Å, built in {time.perf_counter() - start:.2f} s"
    )

    space = load_search_space(resolve_search_space_path("pair"))
    pset = build_primitive_set(space.operators, ("r",), space.constants.low, space.constants.high)
    random.seed(0)
    cutoff = Cutoff(args.cutoff, args.cutoff - 1.0)

    potentials, nodes = [], []
    while len(potentials) < args.population:
        expression, values = tree_to_sympy(gp.PrimitiveTree(gp.genHalfAndHalf(pset, 1, 4)))
        candidate = decompose([[expression]], [TermShape("pair")], values)
        if not candidate.bases or not np.all(np.isfinite(candidate.initial)):
            continue
        terms = candidate.terms(np.ones(len(candidate.bases)), candidate.initial)
        potentials.append(Potential(tuple(terms), cutoff, ("Si",)))
        nodes.append(candidate.complexity)
    for p in potentials[:5]:  # compile once outside the timing, as the search does
        evaluate(p, geometry)
    start = time.perf_counter()
    for p in potentials:
        evaluate(p, geometry)
    elapsed = time.perf_counter() - start
    rate = sum(nodes) * geometry.n_pairs / elapsed
    print(
        f"evaluate (energies + forces): {len(potentials)} formulas, mean {np.mean(nodes):.1f} nodes, {elapsed:.2f} s "
        f"→ {rate:.3g} node×pair evaluations/s, {len(potentials) / elapsed:.1f} formulas/s (compilation included)"
    )

    problem = FitProblem(geometry, frames.energies, np.concatenate(frames.forces), cutoff)
    candidates = []
    for _ in range(args.population // 4):
        expression, values = tree_to_sympy(gp.PrimitiveTree(gp.genHalfAndHalf(pset, 1, 4)))
        candidates.append(decompose([[expression]], [TermShape("pair")], values))

    def fits_per_second(problem, label):
        scorer = Scorer(problem, max_evaluations=40)  # a new one each time: no cached scores
        start = time.perf_counter()
        for c in candidates:
            scorer.score_candidate(c)
        elapsed = time.perf_counter() - start
        print(
            f"full constant fits (linear + nonlinear refinement{label}): {len(candidates)} candidates in "
            f"{elapsed:.2f} s → {len(candidates) / elapsed:.2f} fits/s on all {geometry.n_pairs} pairs"
        )
        return len(candidates) / elapsed

    fits_per_second(problem, "")  # compiles every basis
    plain = fits_per_second(problem, ", compiled")
    stressed = dataclasses.replace(problem, stresses=frames.stresses, stress_weight=0.1)
    with_stresses = fits_per_second(stressed, f", compiled, stresses of {len(stressed.stress_frames)} frames fitted")
    print(f"fitting the stresses too costs {plain / with_stresses:.2f}× the time of a fit without them")


if __name__ == "__main__":
    main()
