"""An experiment for issue 7, not (yet) an evopot option: does the hybrid's network do
better when it also sees the formula's own per-atom terms?

On the Si DFT splits of a run (or of examples/silicon_threebody.yaml with --sw), with the
`correction:` defaults and one network each, it trains: the network alone on DFT; the
hybrid's network on DFT minus the formula; and the same with one more input column per
formula term, the term's energy per atom (½ Σ_j V(r_ij) for a pair term, Σ_{j<k} V3 at
centre i for a three-body term). Both depend only on atom i's bonds, so their Jacobians
enter training exactly like the symmetry functions'. Prints the test force and energy
MAE of each (this machine, noisy).

    .venv/bin/python benchmarks/hybrid_formula_columns.py --run RUN [--member K] [--seed S]
    .venv/bin/python benchmarks/hybrid_formula_columns.py --sw     # classical Stillinger–Weber
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evopot.api import dataset_from_config
from evopot.config import CorrectionConfig, load_config
from evopot.correct import descriptor_for, residual_for, training_settings
from evopot.evaluate_torch import pair_energy, threebody_energy
from evopot.geometry import build_geometry
from evopot.known import stillinger_weber
from evopot.neighbors import angle_pairs
from evopot.potential import Potential
from evopot.residual import ResidualData, ensemble_prediction, train_correction
from evopot.rundir import member_potential

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Inputs:
    """What :class:`evopot.network.Correction` reads of a descriptor."""

    species: tuple[str, ...]
    n_features: int


def term_columns(potential: Potential, frames, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-atom energy of each pair and three-body term (n_atoms, n_terms) and its
    Jacobian (n_bonds, n_terms, 3), bonds in :func:`residual_data`'s order."""
    geometry = build_geometry(frames, cutoff, potential.species)
    bonds = geometry.bonds
    order = np.argsort(bonds.center, kind="stable")
    center = torch.as_tensor(bonds.center[order])
    d = torch.as_tensor(geometry.pair_vectors[bonds.pair[order]] * bonds.sign[order, None]).requires_grad_(True)
    r = torch.linalg.norm(d, dim=1)
    columns = []
    for term in potential.terms:
        if term.species is not None or term.kind not in ("pair", "threebody"):
            raise SystemExit("this experiment handles unrestricted pair and three-body terms only")
        cut = potential.cutoff_of(term)
        if term.kind == "pair":
            inside = r < cut.radius
            safe = torch.where(inside, r, torch.full_like(r, 0.5 * cut.radius))  # no inf·0 past the cutoff
            energy = torch.where(inside, 0.5 * pair_energy(term, cut, safe), torch.zeros_like(r))
            columns.append(r.new_zeros(geometry.n_atoms).index_add(0, center, energy))
        else:
            t1, t2 = angle_pairs(center, r, cut.radius, geometry.n_atoms)
            r1, r2 = r[t1], r[t2]
            energy = threebody_energy(term, cut, r1, r2, ((d[t1] * d[t2]).sum(1) / (r1 * r2)).clamp(-1.0, 1.0))
            columns.append(r.new_zeros(geometry.n_atoms).index_add(0, center[t1], energy))
    jacobians = [torch.autograd.grad(column.sum(), d, retain_graph=True)[0] for column in columns]
    return torch.stack([c.detach() for c in columns], 1), torch.stack(jacobians, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", help="a finished run directory (its splits and a front member)")
    parser.add_argument("--member", type=int, help="front member (default: the recommended one)")
    parser.add_argument("--sw", action="store_true", help="classical Stillinger–Weber (matscipy's parameters) as the formula")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1500)
    parser.add_argument("--patience", type=int, default=150)
    args = parser.parse_args()
    if bool(args.run) == args.sw:
        parser.error("give --run RUN or --sw")
    torch.set_num_threads(2)
    if args.sw:
        config_path = ROOT / "examples" / "silicon_threebody.yaml"
        config, potential, name = load_config(config_path), stillinger_weber(), "Stillinger–Weber"
    else:
        config_path = Path(args.run) / "config.yaml"
        config = load_config(config_path)
        number, potential = member_potential(args.run, args.member)
        name = f"member {number} of {args.run}"
    splits = dataset_from_config(config, str(config_path)).splits()
    settings = CorrectionConfig(ensemble=1, epochs=args.epochs, patience=args.patience, device="cpu")
    descriptor = descriptor_for(potential, settings)
    training = training_settings(settings, args.seed)
    print(f"formula: {name}: {potential.formula()}")

    def data(frames, formula: Potential | None, columns: bool) -> ResidualData:
        out = residual_for(formula, frames, descriptor)
        if columns:
            features, jacobian = term_columns(formula, frames, descriptor.cutoff)
            out.features, out.jacobian = torch.cat([out.features, features], 1), torch.cat([out.jacobian, jacobian], 1)
        return out

    rows = []
    for label, formula, columns in (("network alone", None, False), ("hybrid", potential, False), ("hybrid + term columns", potential, True)):
        train, validation, test = (data(splits[s], formula, columns) for s in ("train", "validation", "test"))
        start = time.perf_counter()
        correction, log = train_correction(Inputs(descriptor.species, train.features.shape[1]), train, validation, training, progress=False)
        energies, forces = ensemble_prediction(correction, test)
        rows.append((label, float((forces[0] - test.forces).abs().mean()),
                     float(((energies[0] - test.energies) / test.atoms_per_frame).abs().mean()) * 1000, time.perf_counter() - start, log.networks[0]["best_epoch"]))
        print(f"  {label}: {rows[-1][1]:.4f} eV/Å in {rows[-1][3]:.0f} s", flush=True)
    print(f"\nSi test set ({len(splits['test'])} frames), seed {args.seed}, {descriptor.n_features} symmetry functions; this machine (2 cores, noisy)")
    print(f"{'model':<22} {'force MAE eV/Å':>15} {'energy MAE meV/atom':>20} {'training s':>11} {'best epoch':>11}")
    for label, force, energy, seconds, epoch in rows:
        print(f"{label:<22} {force:15.4f} {energy:20.2f} {seconds:11.0f} {epoch:11d}")


if __name__ == "__main__":
    main()
