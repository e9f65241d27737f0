"""Far from the data: the network alone and the hybrid on compressed silicon.

The reason to keep a formula under the network is that the formula stays physical
where the DFT frames say nothing. This trains the network alone (raw DFT labels) and
the hybrid (formula + network on the residual) exactly as `benchmarks/hybrid.py`
does, then follows both, and the formula alone, along two paths that leave the
training data: diamond silicon compressed until the nearest neighbours are 1.2 Å apart
(the training frames' closest pair is printed), and an Si–Si dimer in vacuum. It
prints the energy per atom along each path relative to its last (widest) point,
marking the points closer than any training pair, and counts, among those, the steps
where the energy falls as the atoms are pushed together (a collapse an MD run would
fall into).

    .venv/bin/python benchmarks/hybrid_extrapolation.py --run RUN [--member K] [--epochs N] [--ensemble M]
        [--model interaction]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list
from run_member import load_member

from evopot.config.schema import CorrectionConfig
from evopot.data.dataset import Frames
from evopot.neural.correct import descriptor_for, symmetry_functions, train_hybrid
from evopot.neural.hybrid import Hybrid, predict

#: nearest-neighbour distances (Å) of the probes: diamond's equilibrium is 2.35
DISTANCES = np.round(np.arange(1.2, 2.61, 0.1), 2)


def probes() -> dict[str, list[Atoms]]:
    """Diamond Si with nearest neighbours at each of DISTANCES; an Si₂ dimer in a 20 Å box."""
    diamond = [bulk("Si", "diamond", a=d * 4 / np.sqrt(3), cubic=True) for d in DISTANCES]
    dimer = [Atoms("Si2", positions=[[10, 10, 10], [10 + d, 10, 10]], cell=[20, 20, 20], pbc=True) for d in DISTANCES]
    return {"diamond": diamond, "dimer": dimer}


def closest_pair(frames: Frames) -> float:
    """The shortest interatomic distance (Å) in ``frames`` (inf when no two atoms are
    within 3 Å)."""
    return min(
        (float(d.min()) for d in (neighbor_list("d", atoms, 3.0) for atoms in frames.atoms) if len(d)), default=np.inf
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run", required=True, help="a finished run directory (e.g. from examples/silicon_threebody.yaml)"
    )
    parser.add_argument(
        "--member", type=int, help="front member (default: the one with the lowest validation force MAE)"
    )
    defaults = CorrectionConfig()
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--ensemble", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--model", choices=("bpnn", "interaction"), default=defaults.model, help="the networks' kind (correction.model)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    run, number, potential, config, dataset = load_member(args.run, args.member)
    splits = dataset.splits()
    settings = CorrectionConfig(ensemble=args.ensemble, epochs=args.epochs, device=args.device, model=args.model)
    print(f"formula: member {number} of {run.path}: {potential.formula()}; networks: {args.model}", flush=True)
    nearest = min(closest_pair(splits[s]) for s in ("train", "validation"))
    print(f"closest pair in the training and validation frames: {nearest:.3f} Å", flush=True)

    models = {"formula": potential}
    for name, formula, inputs in (
        ("alone", None, symmetry_functions(potential, settings)),
        ("hybrid", potential, descriptor_for(potential, settings)),
    ):
        start = time.perf_counter()
        correction, _ = train_hybrid(formula, splits, settings, inputs, config.seed, progress=False)
        base = potential if formula is not None else replace(potential, terms=(), reference_energies={})
        models[name] = Hybrid(base, correction)
        print(
            f"  trained the {'network alone' if formula is None else 'hybrid'} in {time.perf_counter() - start:.0f} s",
            flush=True,
        )

    for path, structures in probes().items():
        frames = Frames(
            structures, np.zeros(len(structures)), [np.zeros((len(a), 3)) for a in structures], [path] * len(structures)
        )
        counts = np.array([len(a) for a in structures])
        energies = {name: predict(model, frames).energies / counts for name, model in models.items()}
        print(f"\n{path}: energy per atom (eV) relative to d = {DISTANCES[-1]} Å; * closer than any training pair")
        print(f"{'d Å':>6}  " + "  ".join(f"{name:>9}" for name in energies))
        for k, d in enumerate(DISTANCES):
            print(
                f"{d:6.2f}{'*' if d < nearest else ' '} " + "  ".join(f"{e[k] - e[-1]:9.3f}" for e in energies.values())
            )
        outside = np.flatnonzero(DISTANCES[:-1] < nearest)  # steps that start closer than any training pair
        falls = {
            name: int(np.sum(e[outside + 1] > e[outside])) for name, e in energies.items()
        }  # lower at the shorter distance
        print(
            f"steps below {nearest:.2f} Å where the energy falls as the atoms come closer: "
            + ", ".join(f"{name} {n}" for name, n in falls.items())
            + f" (of {len(outside)})"
        )


if __name__ == "__main__":
    main()
