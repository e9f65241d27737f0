"""NVE molecular dynamics with a hybrid potential (formula + neural correction) on a
512-atom diamond silicon cell: total-energy drift over 10 ps, and the speed in
atom-steps/s against the formula alone on the same cell, in the same run.

The hybrid is trained here on the mlearn Si training frames (as `evopot correct` does)
for a front member of a finished run (default: search `examples/silicon_threebody.yaml`
first), or read from a hybrid file (`--hybrid`, what `evopot correct` writes). The
goal (issue 37): drift ≤ 1 meV/atom over 10 ps. Drift here is E_total at the end minus
at the start, per atom; the largest excursion and the slope of a straight line through
the second half are printed beside it.

    .venv/bin/python benchmarks/hybrid_md.py [--run RUN] [--member K] [--hybrid FILE] [--model bpnn]
        [--ensemble 4] [--epochs 200] [--ps 10] [--temperature 1000] [--dt 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase.build import bulk
from run_member import load_member, silicon_run

from evopot.config.schema import CorrectionConfig
from evopot.md.dynamics import MolecularDynamics, thermalized
from evopot.md.forcefield import ForceField
from evopot.neural.correct import descriptor_for, train_hybrid
from evopot.neural.hybrid import Hybrid, formula_only, load_model

GOAL = 1.0  # meV/atom over 10 ps


def hybrid_from_run(args) -> Hybrid:
    run, number, potential, config, dataset = load_member(silicon_run(args.run), args.member)
    settings = CorrectionConfig(ensemble=args.ensemble, epochs=args.epochs, model=args.model, device="cpu")
    start = time.perf_counter()
    correction, _ = train_hybrid(
        potential, dataset.splits(), settings, descriptor_for(potential, settings), config.seed, progress=False
    )
    print(
        f"formula: member {number} of {run.path}: {potential.formula()}\n"
        f"correction: {args.ensemble} × {args.model}, {args.epochs} epochs, trained in "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    return Hybrid(potential, correction)


def run_md(model, atoms, steps: int, dt: float, every: int):
    forcefield = ForceField(model, "cpu", torch.float64)
    dynamics = MolecularDynamics(atoms, forcefield, dt)
    return dynamics.run(steps, every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a finished run directory (default: search examples/silicon_threebody.yaml now)")
    parser.add_argument("--member", type=int, help="front member (default: the lowest validation force MAE)")
    parser.add_argument("--hybrid", help="a trained hybrid file (evopot correct's output) instead of training one")
    parser.add_argument("--model", choices=("bpnn", "interaction"), default="bpnn")
    parser.add_argument("--ensemble", type=int, default=CorrectionConfig().ensemble)
    parser.add_argument("--epochs", type=int, default=200, help="per network (the drift does not need the best fit)")
    parser.add_argument("--ps", type=float, default=10.0, help="length of the NVE run in ps")
    parser.add_argument("--dt", type=float, default=1.0, help="time step in fs")
    parser.add_argument("--temperature", type=float, default=1000.0, help="initial temperature in K")
    parser.add_argument("--repeat", type=int, default=4, help="cubic diamond cells per side (4: 512 atoms)")
    parser.add_argument("--formula-steps", type=int, default=2000, help="steps of the formula-alone speed run")
    args = parser.parse_args()
    torch.set_num_threads(2)

    model = load_model(args.hybrid) if args.hybrid else hybrid_from_run(args)
    if args.hybrid:
        print(f"hybrid: {args.hybrid}: {model.potential.formula()}")
    atoms = thermalized(bulk("Si", "diamond", 5.43, cubic=True).repeat(args.repeat), args.temperature, seed=1)
    steps = round(args.ps * 1000 / args.dt)
    every = max(1, steps // 100)
    print(
        f"NVE, {len(atoms)} atoms of diamond Si (a = 5.43 Å) from {args.temperature:.0f} K, dt {args.dt} fs, "
        f"{steps} steps ({args.ps} ps), float64, CPU {torch.get_num_threads()} threads",
        flush=True,
    )
    hybrid = run_md(model, atoms, steps, args.dt, every)
    total = np.array([t.total for t in hybrid.thermo]) / len(atoms) * 1000  # meV/atom
    times = np.array([t.time_ps for t in hybrid.thermo])
    temperatures = np.array([t.temperature for t in hybrid.thermo])
    change = total - total[0]
    half = times >= times[-1] / 2
    slope = np.polyfit(times[half], total[half], 1)[0]
    formula = run_md(formula_only(model.potential), atoms, args.formula_steps, args.dt, args.formula_steps)
    speed_hybrid = len(atoms) * steps / hybrid.wall_time
    speed_formula = len(atoms) * args.formula_steps / formula.wall_time
    print(
        f"\nhybrid: mean T over the second half {temperatures[half].mean():.0f} K; E_total change over "
        f"{times[-1]:.2f} ps {change[-1]:+.4f} meV/atom (largest excursion {np.abs(change).max():.4f}; "
        f"second half's slope {slope:+.4f} meV/atom/ps); neighbour list built {hybrid.neighbor_builds} times"
    )
    verdict = "met" if abs(change[-1]) <= GOAL else "NOT met"
    print(f"drift / goal {GOAL} meV/atom: {abs(change[-1]) / GOAL:.3f} ({verdict})")
    print(
        f"speed: hybrid {speed_hybrid:.4g} atom-steps/s ({hybrid.wall_time:.0f} s), formula alone "
        f"{speed_formula:.4g} atom-steps/s ({args.formula_steps} steps); formula / hybrid "
        f"{speed_formula / speed_hybrid:.0f}×"
    )


if __name__ == "__main__":
    main()
