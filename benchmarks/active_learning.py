"""Active learning against random sampling, with EMT copper (ASE) or Stillinger–Weber
silicon (LAMMPS) as the oracle.

Three arms, the same start frames, the same held-out test frames (snapshots of the
oracle's own Langevin MD from the exploration's starts and temperatures: what a user's MD
visits) and the same formula (searched once on the start frames, iteration 0, the same in
every arm); the correction ensemble is retrained on each arm's frames:

- active learning: ``evopot learn`` labelling the snapshots its ensemble disagrees on
  (``select: uncertain``), found by Langevin MD with the current hybrid from a crystal, a
  vacancy and a surface over a temperature ladder;
- random picks of the same MD: ``evopot learn`` with ``select: random``, as many snapshots
  of the same kind of exploration drawn blind (what the selection adds to the exploration);
- random sampling: no model at all, as ANI-1 sampled and as a user of ``evopot data``
  alone would: rattled and strained crystals, vacancies, surfaces and random disorder,
  labelled by the oracle and added in a random order.

Prints each arm's learning curve (held-out force MAE of the hybrid against training
frames) per seed, and the ratio: training frames active learning needs to reach a
baseline's best error, over the frames the baseline took to reach it (goal ≤ 0.5 against
random sampling; ANI-1x: ~0.25).

    .venv/bin/python benchmarks/active_learning.py [--oracle emt-cu|sw-si] [--seeds 0 1] [--iterations 5]
        [--per-iteration 4] [--threshold 0.1]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml


def ase_frames(path):
    import ase.io

    return ase.io.read(path, ":")


#: Stillinger–Weber silicon (Stillinger & Weber 1985), LAMMPS's Si.sw: element triple, ε, σ, a, λ, γ, cos θ0,
#: A, B, p, q, tol
SW_SILICON = "Si Si Si 2.1683 2.0951 1.80 21.0 1.20 -0.333333333333 7.049556277 0.6022245584 4.0 0.0 0.0\n"


@dataclass(frozen=True)
class Oracle:
    """What an arm learns: the species, the reference calculator's config section, the
    crystal the starts are cut from, the explored (and held-out) temperatures and the
    search's settings."""

    species: str
    reference: dict
    crystal: dict
    surface: tuple[int, int, int]
    temperatures: tuple[float, ...]
    search: dict
    #: the random-disorder sampler of the model-free arm (atoms, density, min_distance)
    disorder: dict

    def calculator(self, folder: Path):
        """The oracle as an ASE calculator (for the held-out MD)."""
        if self.reference["calculator"] == "emt":
            from ase.calculators.emt import EMT

            return EMT()
        from evopot.config.generation import LammpsReference
        from evopot.learn.reference import calculator

        settings = LammpsReference(**{**self.reference, "files": [folder / f for f in self.reference["files"]]})
        lammps = calculator(settings, self.start("bulk"))
        # one LAMMPS for the whole run (the labelling makes one per frame; ASE's LAMMPSlib cannot move the
        # atoms of a LAMMPS it closed)
        lammps.parameters.keep_alive = True
        return lammps

    def start(self, kind: str):
        from evopot.config.generation import CrystalSampler, SurfaceSampler, VacancySampler
        from evopot.data.structures import crystal, sample

        lattice = {k: v for k, v in self.crystal.items() if k != "kind"}
        if kind == "bulk":
            return crystal(CrystalSampler(kind="crystal", frames=1, **lattice), [self.species])
        if kind == "vacancy":
            return sample(VacancySampler(kind="vacancy", frames=1, rattle=0, **lattice), [self.species], 0, 0)
        return sample(
            SurfaceSampler(kind="surface", frames=1, rattle=0, miller=self.surface, **lattice), [self.species], 0, 0
        )


ORACLES = {
    # EMT copper and a pair formula: the formula alone is already good (0.06-0.07 eV/Å)
    "emt-cu": Oracle(
        "Cu",
        {"calculator": "emt"},
        {"kind": "crystal", "structure": "fcc", "a": 3.61},
        (1, 1, 1),
        (300, 900, 1500),
        {"cutoff": {"radius": 5.0}, "search_space": "pair"},
        {"atoms": [16, 32], "density": [0.070, 0.082], "min_distance": 2.0},  # fcc Cu: 0.085 atoms/Å³
    ),
    # Stillinger–Weber silicon and a pair formula: the three-body part, the covalent bonding, is the
    # correction's to learn; the top of the ladder melts the surface (SW's melting point ~1690 K)
    "sw-si": Oracle(
        "Si",
        {"calculator": "lammps", "pair_style": "sw", "pair_coeff": ["* * Si.sw Si"], "files": ["Si.sw"]},
        {"kind": "crystal", "structure": "diamond", "a": 5.431, "repeat": [2, 2, 1]},
        (1, 0, 0),
        (300, 1200, 2100),
        {"cutoff": {"radius": 4.0}, "search_space": "pair"},
        {"atoms": [16, 32], "density": [0.045, 0.055], "min_distance": 2.0},  # diamond 0.050, liquid 0.055
    ),
}
#: the arms: the loop labelling what its ensemble disagrees on; the loop labelling snapshots of the same
#: exploration drawn blind (what the selection adds); the samplers alone, no model (what ANI-1 did)
ARMS = {
    "uncertain": "active learning",
    "random": "random picks of the same MD",
    "sampled": "random sampling (samplers)",
}
#: the search and correction settings both oracles share
SEARCH = {
    "engine": {"population": 32, "generations": 4, "workers": 1},
    "correction": {"ensemble": 4, "epochs": 120, "hidden": [16, 16], "moment_channels": 2, "angular_shells": 2},
}


def learn_config(
    oracle: Oracle, seed: int, select: str, iterations: int, per_iteration: int, steps: int, threshold: float
) -> dict:
    crystal = oracle.crystal
    return {
        "seed": seed,
        "output": f"{select}_{seed}",
        "species": [oracle.species],
        "reference": oracle.reference,
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
                {**crystal, "kind": "surface", "name": "surface", "frames": 1, "miller": list(oracle.surface)},
            ],
            "temperatures": list(oracle.temperatures),
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


def oracle_md(oracle: Oracle, folder: Path, steps: int, every: int) -> Path:
    """The held-out frames: snapshots of Langevin MD with the oracle itself from the
    exploration's starts over its temperature ladder: what the user's MD will visit."""
    import ase.io
    from ase import units
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    frames = []
    for name in ("bulk", "vacancy", "surface"):
        for temperature in oracle.temperatures:
            atoms = oracle.start(name)
            atoms.calc = oracle.calculator(folder)
            MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=np.random.default_rng(int(temperature)))
            md = Langevin(atoms, 1.0 * units.fs, temperature_K=temperature, friction=0.02, rng=np.random.default_rng(1))
            for _ in range(steps // every):
                md.run(every)
                snapshot = atoms.copy()
                snapshot.calc = SinglePointCalculator(
                    snapshot, energy=atoms.get_potential_energy(), forces=atoms.get_forces()
                )
                snapshot.info["config_type"] = f"oracle_md_{name}_{temperature:g}K"
                frames.append(snapshot)
    path = folder / "test.extxyz"
    ase.io.write(path, frames)
    return path


def sampled_arm(oracle: Oracle, folder: Path, learned: Path, seed: int, sizes: list[int]) -> list[tuple[int, float]]:
    """Random sampling without a model, as ANI-1 sampled and as a user of ``evopot data``
    alone would: rattled and strained crystals, vacancies, surfaces and random disorder,
    labelled by the oracle, drawn in a random order; the correction of the formula the
    loops searched (iteration 0 of ``learned``, on the same start frames) trained on the
    start frames plus the first ``size - start`` drawn, for each of ``sizes``."""
    import ase.io

    from evopot.config.schema import load_config
    from evopot.learn.generate import generate
    from evopot.neural.correct import correct_potential
    from evopot.search.rundir import member_potential

    crystal = {**oracle.crystal, "rattle": 0.1}
    per = max(sizes) - min(sizes)
    samplers = [
        {**crystal, "name": "crystal", "frames": per, "strain": 0.03},
        {**crystal, "kind": "vacancy", "name": "vacancy", "frames": per},
        {**crystal, "kind": "surface", "name": "surface", "frames": per, "miller": list(oracle.surface)},
        {"kind": "random", "name": "disorder", "frames": per, **oracle.disorder},
    ]
    config = folder / f"sampled_{seed}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "seed": seed,
                "output": f"sampled_{seed}.extxyz",
                "species": [oracle.species],
                "reference": oracle.reference,
                "sampling": samplers,
                "isolated_atoms": False,
                "workers": 1,
            }
        )
    )
    pool = ase.io.read(generate(config, progress=False).path, ":")
    order = np.random.default_rng(seed).permutation(len(pool))
    start = [a for a in ase.io.read(learned / "train.extxyz", ":") if a.info["evopot_key"].startswith("start/")]
    curve = []
    for size in sizes:
        train = folder / f"sampled_{seed}_{size}.extxyz"
        ase.io.write(train, start + [pool[k] for k in order[: size - len(start)]])
        search = load_config(
            folder / "search.yaml",
            {
                "data.train": str(train),
                "data.test": str(folder / "test.extxyz"),
                "output": str(learned / "iteration_0" / "search"),
                "seed": seed,
            },
        )
        _, potential = member_potential(search.output, search.correction.member)
        corrected = correct_potential(
            potential, search, search.correction, folder / f"sampled_{seed}_{size}.json", {}, False
        )
        curve.append((size, corrected.errors["test"]["hybrid"]["force_mae"]))
    return curve


def frames_to_reach(curve: list[tuple[int, float]], error: float) -> int | None:
    """The fewest training frames at which ``curve`` is at or below ``error``."""
    return next((frames for frames, e in curve if e <= error), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracle", choices=sorted(ORACLES), default="emt-cu")
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

    ratios = {"sampled": [], "random": []}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        oracle = ORACLES[args.oracle]
        (folder / "search.yaml").write_text(yaml.safe_dump({**oracle.search, **SEARCH}))
        (folder / "Si.sw").write_text(SW_SILICON)
        test = oracle_md(oracle, folder, 2 * args.steps, args.steps // 5)
        print(
            f"oracle {args.oracle}; held-out: {len(ase_frames(test))} snapshots of the oracle's own Langevin MD "
            f"(bulk, vacancy, {oracle.surface} surface at {', '.join(f'{t:g}' for t in oracle.temperatures)} K)",
            flush=True,
        )
        for seed in args.seeds:
            curves = {}
            for select in ("uncertain", "random"):
                path = folder / f"{select}_{seed}.yaml"
                path.write_text(
                    yaml.safe_dump(
                        learn_config(
                            oracle, seed, select, args.iterations, args.per_iteration, args.steps, args.threshold
                        )
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
                    f"seed {seed} {ARMS[select]:>28}: "
                    + "  ".join(f"{f} fr {e:.4f}" for f, e in curves[select])
                    + f"   (eV/Å; {added} frames added; snapshots above the threshold per iteration: "
                    + ", ".join(f"{r['uncertain']}/{r['explored']}" for r in rows)
                    + f"; {seconds:.0f} s)",
                    flush=True,
                )
            sizes = [f for f, _ in curves["random"]]
            start = time.perf_counter()
            curves["sampled"] = sampled_arm(oracle, folder, folder / f"uncertain_{seed}", seed, sizes)
            print(
                f"seed {seed} {ARMS['sampled']:>28}: "
                + "  ".join(f"{f} fr {e:.4f}" for f, e in curves["sampled"])
                + f"   (eV/Å; {time.perf_counter() - start:.0f} s)",
                flush=True,
            )
            for baseline in ("sampled", "random"):
                ratio = compare(curves["uncertain"], curves[baseline], seed, ARMS[baseline])
                ratios[baseline].append(ratio)
    for baseline in ("sampled", "random"):
        reached = [r for r in ratios[baseline] if r is not None]
        print(
            f"active learning / {ARMS[baseline]}, frames to the same error: "
            + ", ".join("not reached" if r is None else f"{r:.2f}" for r in ratios[baseline])
            + (f"; mean {sum(reached) / len(reached):.2f}" if reached else "")
            + " (goal ≤ 0.5 against random sampling; ANI-1x vs ANI-1 ~0.25)"
        )


def compare(active: list[tuple[int, float]], baseline: list[tuple[int, float]], seed: int, name: str) -> float | None:
    """Frames active learning needs to reach ``baseline``'s best error (its curve need
    not fall steadily) over the frames the baseline took; printed."""
    final_frames, final_error = min(baseline, key=lambda point: (point[1], point[0]))
    needed = frames_to_reach(active, final_error)
    ratio = None if needed is None else needed / final_frames
    start = baseline[0][0]  # the start frames, common to every arm
    shown = (
        "not reached"
        if ratio is None
        else f"{needed} frames, ratio {ratio:.2f} ({needed - start} / {final_frames - start} = "
        f"{(needed - start) / max(final_frames - start, 1):.2f} counting only the frames added to the start)"
    )
    print(f"seed {seed}: {name}'s best error {final_error:.4f} eV/Å at {final_frames} frames; active learning: {shown}")
    # the other way round, for a loop that stopped before the budget (no snapshot above
    # its threshold): the frames the baseline needs to reach active learning's best error
    own_frames, own_error = min(active, key=lambda point: (point[1], point[0]))
    theirs = frames_to_reach(baseline, own_error)
    print(
        f"seed {seed}: active learning's best error {own_error:.4f} eV/Å at {own_frames} frames; {name}: "
        + ("not reached" if theirs is None else f"{theirs} frames, ratio {own_frames / theirs:.2f}")
    )
    return ratio


if __name__ == "__main__":
    main()
