"""Active learning against random sampling, with EMT (ASE) as the oracle on copper.

Both arms run ``evopot learn`` with the same start frames, the same held-out test frames
(snapshots of EMT's own Langevin MD from the exploration's starts and temperatures: what
a user's MD visits), the same exploration
(Langevin MD with the current hybrid from a crystal, a vacancy and a surface over a
temperature ladder) and the same number of frames labelled per iteration; they differ
only in which explored snapshots are labelled: the most uncertain (``select: uncertain``)
or as many drawn at random (``select: random``). The formula is searched once (iteration
0, the same in both arms); the correction ensemble is retrained every iteration.

Prints each arm's learning curve (held-out force MAE of the hybrid against training
frames) per seed, and the ratio: training frames active learning needs to reach random
sampling's best error, over the frames random sampling took to reach it (goal ≤ 0.5;
ANI-1x: ~0.25).

    .venv/bin/python benchmarks/active_learning.py [--seeds 0 1] [--iterations 5] [--per-iteration 4] [--threshold 0.1]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml


def ase_frames(path):
    import ase.io

    return ase.io.read(path, ":")


SEARCH = {
    "cutoff": {"radius": 5.0},
    "search_space": "pair",
    "engine": {"population": 32, "generations": 4, "workers": 1},
    "correction": {"ensemble": 4, "epochs": 120, "hidden": [16, 16], "moment_channels": 2, "angular_shells": 2},
}


def learn_config(seed: int, select: str, iterations: int, per_iteration: int, steps: int, threshold: float) -> dict:
    crystal = {"kind": "crystal", "structure": "fcc", "a": 3.61}
    return {
        "seed": seed,
        "output": f"{select}_{seed}",
        "species": ["Cu"],
        "reference": {"calculator": "emt"},
        "workers": 1,
        "search": "search.yaml",
        "search_every": 1000,
        "isolated_atoms": False,  # free reference energies: a pair formula of EMT copper fits forces 4x better
        "start": {"sampling": [{**crystal, "frames": 4, "rattle": 0.05, "strain": 0.02}]},
        "test": {"data": "test.extxyz"},
        "explore": {
            "starts": [
                {**crystal, "name": "bulk", "frames": 1},
                {**crystal, "kind": "vacancy", "name": "vacancy", "frames": 1},
                {**crystal, "kind": "surface", "name": "surface", "frames": 1, "miller": [1, 1, 1]},
            ],
            "temperatures": [300, 900, 1500],
            "steps": steps,
            "every": 10,
            # a fixed bar: the ensemble's own 95th percentile on 4 near-equilibrium frames is ~0.02 eV/Å,
            # which every MD snapshot exceeds at once
            "threshold": threshold,
            "per_iteration": per_iteration,
            "select": select,
        },
        "stop": {"iterations": iterations, "budget": 10_000},
    }


def oracle_md(folder: Path, steps: int, every: int) -> Path:
    """The held-out frames: snapshots of Langevin MD with EMT itself (the oracle) from the
    exploration's starts over its temperature ladder: what the user's MD will visit."""
    import ase.io
    from ase import units
    from ase.build import bulk, surface
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    crystal = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    vacancy = crystal.copy()
    del vacancy[0]
    slab = surface(bulk("Cu", "fcc", a=3.61), (1, 1, 1), 4, vacuum=6.0, periodic=True).repeat((2, 2, 1))
    frames = []
    for name, start in (("bulk", crystal), ("vacancy", vacancy), ("surface", slab)):
        for temperature in (300, 900, 1500):
            atoms = start.copy()
            atoms.calc = EMT()
            MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=np.random.default_rng(temperature))
            md = Langevin(atoms, 1.0 * units.fs, temperature_K=temperature, friction=0.02, rng=np.random.default_rng(1))
            for _ in range(steps // every):
                md.run(every)
                snapshot = atoms.copy()
                snapshot.calc = SinglePointCalculator(
                    snapshot, energy=atoms.get_potential_energy(), forces=atoms.get_forces()
                )
                snapshot.info["config_type"] = f"emt_md_{name}_{temperature}K"
                frames.append(snapshot)
    path = folder / "test.extxyz"
    ase.io.write(path, frames)
    return path


def frames_to_reach(curve: list[tuple[int, float]], error: float) -> int | None:
    """The fewest training frames at which ``curve`` is at or below ``error``."""
    return next((frames for frames, e in curve if e <= error), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--per-iteration", type=int, default=4)
    parser.add_argument("--steps", type=int, default=200, help="MD steps of each exploration run")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.1,
        help="ensemble force spread (eV/Å) past which a snapshot is untrusted; a loop stops when no run passes it",
    )
    args = parser.parse_args()

    from evopot.learn.loop import learn

    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "search.yaml").write_text(yaml.safe_dump(SEARCH))
        test = oracle_md(folder, 2 * args.steps, args.steps // 5)
        print(
            f"held-out: {len(ase_frames(test))} snapshots of EMT's own Langevin MD (bulk, vacancy, (111) surface "
            f"at 300, 900, 1500 K)",
            flush=True,
        )
        for seed in args.seeds:
            curves = {}
            for select in ("uncertain", "random"):
                path = folder / f"{select}_{seed}.yaml"
                path.write_text(
                    yaml.safe_dump(
                        learn_config(seed, select, args.iterations, args.per_iteration, args.steps, args.threshold)
                    )
                )
                start = time.perf_counter()
                result = learn(path, progress=False)
                seconds = time.perf_counter() - start
                rows = list(csv.DictReader((result.folder / "learning.csv").open()))
                curves[select] = [(int(r["frames"]), float(r["test_force_mae_hybrid"])) for r in rows]
                added = sum(int(r["added"]) for r in rows)
                # the frames labelled by the last iteration are used by no model: curves end at the last trained one
                print(
                    f"seed {seed} {select:>9}: "
                    + "  ".join(f"{f} fr {e:.4f}" for f, e in curves[select])
                    + f"   (eV/Å; {added} frames added; {seconds:.0f} s)"
                )
            # random sampling's best error (its curve need not fall steadily) and the frames it took
            final_frames, final_error = min(curves["random"], key=lambda point: (point[1], point[0]))
            needed = frames_to_reach(curves["uncertain"], final_error)
            ratio = None if needed is None else needed / final_frames
            ratios.append(ratio)
            start = curves["random"][0][0]  # the start frames, common to both arms
            shown = (
                "not reached"
                if ratio is None
                else f"{needed} frames, ratio {ratio:.2f} ({needed - start} / {final_frames - start} = "
                f"{(needed - start) / max(final_frames - start, 1):.2f} counting only the frames the loops added)"
            )
            print(
                f"seed {seed}: random sampling's best error {final_error:.4f} eV/Å at {final_frames} frames; "
                f"active learning reaches it with {shown}"
            )
    reached = [r for r in ratios if r is not None]
    print(
        "active learning / random sampling frames to the same error: "
        + ", ".join("not reached" if r is None else f"{r:.2f}" for r in ratios)
        + (f"; mean {sum(reached) / len(reached):.2f}" if reached else "")
        + " (goal ≤ 0.5; ANI-1x vs ANI-1 ~0.25)"
    )


if __name__ == "__main__":
    main()
