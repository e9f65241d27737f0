"""Does a many-body bond-order formula make a better hybrid? Issue 7's probe.

The hybrid loses to the network alone on the Si Surface frames, where the searched
formulas (SW-style pair + three-body, with or without an embedding) are worse than the
network alone. Tersoff's bond-order form (PRB 39, 5566), E = ½ Σ_ij fc(r_ij)·[A e^(−λ1 r)
− b_ij B e^(−λ2 r)], b_ij = (1 + (β ζ_ij)^n)^(−1/2n), ζ_ij = Σ_k fc(r_ik) g(θ_ijk)
exp(λ3³ (r_ij − r_ik)³), is the classic form made for coordination-dependent bonding
(surfaces included). The form is evopot's bond-order term kind (its energies, LAMMPS
export and the network's formula inputs are evopot's own). This benchmark fits its
eleven constants (and an energy per atom) to the run's training split (torch
autograd, L-BFGS on the squared force and energy-per-atom errors, optionally with the
Surface frames weighted more), checks its forces against real LAMMPS (``pair_style
tersoff`` with the fitted file) and finite differences, prints its test errors per
config type, and then trains the hybrid on it (DFT minus Tersoff, with Tersoff's energy
per atom as one more network input, through ``formula_inputs`` as for a searched formula)
and compares it with the network alone of the same seed from ``hybrid_sweep``'s cache.

    .venv/bin/python benchmarks/hybrid_sweep.py --run RUN --member 5 --epochs 600 --cache DIR "alone seed=5"
    .venv/bin/python benchmarks/hybrid_bond_order.py --run RUN --member 5 --seed 5 --cache DIR [--surface-weight
    30] [--fit-only]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from hybrid_sweep import Variant, cache_file
from paired import paired_gap, verdict
from run_member import load_member

from evopot.config.schema import CorrectionConfig
from evopot.data.geometry import build_geometry
from evopot.export.lammps import export_lammps
from evopot.export.lammps_run import run_lammps
from evopot.model.cutoff import Cutoff
from evopot.model.potential import Potential, Term
from evopot.model.terms import BONDORDER
from evopot.model.terms import Bonds as TermBonds
from evopot.model.terms.bondorder import tersoff_expressions, tersoff_term
from evopot.neural.correct import symmetry_functions, training_settings
from evopot.neural.formula_inputs import FormulaInputs
from evopot.neural.residual import ensemble_prediction, residual_data, train_correction

#: the constants in LAMMPS's order (A, B, λ1, λ2 in eV and Å⁻¹; h = cos θ0) and Tersoff's
#: Si(C) values, the fit's start; E0 is the energy per atom of the DFT reference
NAMES = ("A", "B", "lambda1", "lambda2", "beta", "n", "c", "d", "h", "lambda3", "E0")
POSITIVE = ("A", "B", "lambda1", "lambda2", "beta", "n", "c", "d")  # fitted as logarithms
SI_C = {
    "A": 1830.8,
    "B": 471.18,
    "lambda1": 2.4799,
    "lambda2": 1.7322,
    "beta": 1.1e-6,
    "n": 0.78734,
    "c": 1.0039e5,
    "d": 16.217,
    "h": -0.59825,
    "lambda3": 1.0,
    "E0": 0.0,
}


class Tersoff:
    """Tersoff's form as evopot's bond-order term kind (:mod:`evopot.model.terms.bondorder`,
    γ = 1, m = 3) with its cosine cutoff between R − D and R + D; ``theta`` holds the
    fitted constants (the positive ones as logarithms) and E0."""

    def __init__(self, values: dict, radius: float = 3.2, width: float = 0.2):
        self.radius, self.width = radius, width
        self.cutoff = Cutoff(radius + width, radius - width, "cosine")
        self.theta = torch.tensor(
            [math.log(values[k]) if k in POSITIVE else values[k] for k in NAMES], dtype=torch.float64
        )

    @property
    def values(self) -> dict:
        return {k: float(v) for k, v in zip(NAMES, self._constants(self.theta.detach()))}

    @staticmethod
    def _constants(theta):
        return [t.exp() if k in POSITIVE else t for k, t in zip(NAMES, theta)]

    def term(self) -> Term:
        """The bond-order term with the constants as tensors: differentiable in ``theta``."""
        constants = dict(zip(NAMES, self._constants(self.theta)))
        del constants["E0"]
        v, xi = tersoff_expressions(3)
        return Term("bondorder", v, {**constants, "gamma": torch.tensor(1.0, dtype=torch.float64)}, None, xi)

    def potential(self) -> Potential:
        """The fitted potential (floats): what LAMMPS and the hybrid's formula inputs read."""
        values = self.values
        term = tersoff_term({**{k: v for k, v in values.items() if k != "E0"}, "gamma": 1.0})
        return Potential((term,), self.cutoff, ("Si",), {"Si": values["E0"]})

    def atom_energies(self, d, center, neighbor, n_atoms):
        """Each atom's energy (n_atoms,) eV, without E0, from the bond vectors ``d`` of a
        full neighbour list sorted by ``center``; differentiable in ``d`` and the constants."""
        bonds = TermBonds(d, d.norm(dim=1), center, neighbor, center.new_zeros(n_atoms), n_atoms, ("Si",))
        return BONDORDER.atom_energies(self.term(), self.cutoff, bonds)


class Bonds:
    """One split's full neighbour list within Tersoff's cutoff, sorted by centre, and its labels."""

    def __init__(self, frames, reach: float):
        geometry = build_geometry(frames, reach, ("Si",))
        self.center, self.neighbor, self.d = (torch.as_tensor(a) for a in geometry.centred_bonds())
        self.atom_frame = torch.as_tensor(geometry.atom_frame)
        self.n_atoms, self.n_frames = geometry.n_atoms, geometry.n_frames
        self.counts = torch.as_tensor(geometry.atoms_per_frame, dtype=torch.float64)
        self.energies, self.forces = torch.as_tensor(frames.energies), torch.as_tensor(np.concatenate(frames.forces))
        self.atom_types = np.repeat(np.array(frames.config_types), geometry.atoms_per_frame)

    def predict(self, model: Tersoff, create_graph: bool = False):
        """Energies (n_frames,) eV and forces (n_atoms, 3) eV/Å."""
        with torch.enable_grad():
            d = self.d.clone().requires_grad_(True)
            atoms = model.atom_energies(d, self.center, self.neighbor, self.n_atoms) + model.theta[NAMES.index("E0")]
            (gradient,) = torch.autograd.grad(atoms.sum(), d, create_graph=create_graph)  # ∂E/∂d per bond
        forces = (
            torch.zeros_like(self.forces).index_add(0, self.center, gradient).index_add(0, self.neighbor, -gradient)
        )
        energies = atoms.new_zeros(self.n_frames).index_add(0, self.atom_frame, atoms)
        return (energies, forces) if create_graph else (energies.detach(), forces.detach())


def fit(model: Tersoff, data: Bonds, surface_weight: float, energy_weight: float = 1.0) -> float:
    """L-BFGS on the mean squared force component error (per-atom weights) plus
    ``energy_weight`` times the mean squared energy-per-atom error; returns the loss."""
    weight = torch.as_tensor(np.where(data.atom_types == "Surface", surface_weight, 1.0))
    with torch.no_grad():  # start E0 at the mean offset
        energies, _ = data.predict(model)
        model.theta[NAMES.index("E0")] += ((data.energies - energies) / data.counts).mean()
    model.theta.requires_grad_(True)

    def loss():
        energies, forces = data.predict(model, create_graph=True)
        force = (((forces - data.forces) ** 2).sum(1) * weight).sum() / (3 * weight.sum())
        return force + energy_weight * (((energies - data.energies) / data.counts) ** 2).mean()

    optimiser = torch.optim.LBFGS(
        [model.theta], max_iter=2000, line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-14
    )

    def closure():
        optimiser.zero_grad()
        value = loss()
        value.backward()
        return value

    optimiser.step(closure)
    model.theta.requires_grad_(False)
    return float(loss().detach())


def check(model: Tersoff, frames) -> tuple[float, float, float]:
    """Largest |F − F_LAMMPS| (eV/Å), |E − E_LAMMPS| (eV) and |F − finite differences| on
    the first frame of ``frames``."""
    one = frames.subset([0])
    energy, forces = Bonds(one, model.radius + model.width).predict(model)
    with tempfile.TemporaryDirectory() as folder:
        export_lammps(model.potential(), folder)  # pair_style tersoff, evopot_energy = pe + E0
        lammps = run_lammps(one.atoms[0], folder, ["Si"])
    worst_fd, step = 0.0, 1e-5
    for atom, axis in ((0, 0), (0, 2), (len(one.atoms[0]) // 2, 1)):
        moved = []
        for sign in (1, -1):
            atoms = one.atoms[0].copy()
            atoms.positions[atom, axis] += sign * step
            moved.append(
                float(
                    Bonds(
                        type(one)([atoms], one.energies, one.forces, one.config_types), model.radius + model.width
                    ).predict(model)[0][0]
                )
            )
        worst_fd = max(worst_fd, abs(-(moved[0] - moved[1]) / (2 * step) - float(forces[atom, axis])))
    return float(np.abs(forces.numpy() - lammps.forces).max()), abs(float(energy[0]) - lammps.energy), worst_fd


def by_type(errors: np.ndarray, types: np.ndarray) -> str:
    return " ".join(f"{t} {errors[types == t].mean():.3f}" for t in sorted(set(types)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run", required=True, help="a finished run directory (its splits; the member sets the network's descriptor)"
    )
    parser.add_argument(
        "--member",
        type=int,
        help="front member whose network alone to compare with (default: lowest validation force MAE)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=600)
    parser.add_argument(
        "--surface-weight", type=float, default=1.0, help="weight of the Surface frames' atoms in the Tersoff fit"
    )
    parser.add_argument(
        "--cache", type=Path, help="hybrid_sweep's cache, where the network alone of this seed is found"
    )
    parser.add_argument("--fit-only", action="store_true", help="fit and check the Tersoff form, train no network")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run, number, potential, _, dataset = load_member(args.run, args.member)
    splits = dataset.splits()
    model = Tersoff(SI_C)
    bonds = {split: Bonds(frames, model.radius + model.width) for split, frames in splits.items()}
    start = time.perf_counter()
    loss = fit(model, bonds["train"], args.surface_weight)
    print(
        f"Tersoff fitted on {len(splits['train'])} training frames (Surface atoms weighted {args.surface_weight:g}) in "
        f"{time.perf_counter() - start:.0f} s, loss {loss:.5f}: "
        + ", ".join(f"{k} {v:.6g}" for k, v in model.values.items())
    )
    print(
        "  against LAMMPS pair_style tersoff (first test frame): |ΔF| ≤ {:.1e} eV/Å, |ΔE| {:.1e} eV; finite "
        "differences |ΔF| ≤ {:.1e} eV/Å".format(*check(model, splits["test"]))
    )
    for split in ("train", "validation", "test"):
        energies, forces = bonds[split].predict(model)
        errors = (forces - bonds[split].forces).abs().mean(1).numpy()
        energy = float(((energies - bonds[split].energies).abs() / bonds[split].counts).mean()) * 1000
        print(
            f"  {split}: force MAE {errors.mean():.4f} eV/Å, energy MAE {energy:.1f} meV/atom | "
            f"{by_type(errors, bonds[split].atom_types)}"
        )
    if args.fit_only:
        return

    fields = CorrectionConfig(
        epochs=args.epochs, patience=150, ensemble=1, device="cpu", batch_frames=8
    ).model_dump()  # hybrid_sweep's defaults
    symmetry = symmetry_functions(potential, CorrectionConfig(**fields))
    descriptor = FormulaInputs(symmetry, model.potential())  # the fitted Tersoff energy per atom as an input
    data = {}
    for split, frames in splits.items():
        energies, forces = bonds[split].predict(model)
        data[split] = residual_data(
            frames, descriptor, frames.energies - energies.numpy(), np.concatenate(frames.forces) - forces.numpy()
        )
    start = time.perf_counter()
    correction, log = train_correction(
        descriptor,
        data["train"],
        data["validation"],
        training_settings(CorrectionConfig(**fields), args.seed),
        progress=sys.stderr.isatty(),
    )
    seconds = time.perf_counter() - start
    test, counts = bonds["test"], np.array([len(a) for a in splits["test"].atoms])
    energies, forces = ensemble_prediction(correction, data["test"])
    tersoff_energies, tersoff_forces = test.predict(model)
    hybrid = (forces.mean(0) + tersoff_forces - test.forces).abs().mean(1).numpy()
    energy = float(((energies.mean(0) + tersoff_energies - test.energies).abs() / test.counts).mean()) * 1000
    print(
        f"hybrid on Tersoff, seed {args.seed}: test force MAE {hybrid.mean():.4f} eV/Å, energy MAE "
        f"{energy:.2f} meV/atom, "
        f"best epoch {log.networks[0]['best_epoch']}, {seconds:.0f} s | {by_type(hybrid, test.atom_types)}"
    )
    path = cache_file(
        args.cache, run.path, potential, number, Variant(f"alone seed={args.seed}", "alone", args.seed, 1.0, fields)
    )
    if path is None or not path.exists():
        print(
            f"no network alone of seed {args.seed} in the cache ({path}); train it with hybrid_sweep.py "
            f"--run {args.run} "
            f'--member {number} --epochs {args.epochs} --cache DIR "alone seed={args.seed}"'
        )
        return
    alone = np.abs(np.load(path)["forces"] - test.forces.numpy()).mean(1)
    print(
        f"network alone, seed {args.seed}: test force MAE {alone.mean():.4f} eV/Å | {by_type(alone, test.atom_types)}"
    )
    gap, low, high = paired_gap(hybrid, alone, counts)
    print(
        f"hybrid on Tersoff minus network alone: {gap:+.4f} eV/Å, 95 % interval {low:+.4f} … {high:+.4f}: "
        f"{verdict(gap, low, high)}"
    )


if __name__ == "__main__":
    main()
