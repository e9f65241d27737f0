"""Embedding terms: F(ρ_i) per atom, with the density ρ_i = Σ_j f(r_ij)·fc(r_ij).

The term holds two expressions: F in ``rho`` and the density f in ``r``. Per pair,
dE/dr = (F'(ρ_i) + F'(ρ_j))·(f·fc)'(r). A species-specific embedding term names the
species whose atoms are embedded (any number of them).
"""

from __future__ import annotations

import numpy as np

from evopot.model.terms.base import Bonds, Curve, Prediction, Slot, TermKind, expression_operations, values_and_slopes


class Embedding(TermKind):
    name = "embedding"
    variables = ("rho",)
    label = "F(rho)"
    latex_label = r"F(\rho)"
    density_variables = ("r",)

    def slots(self, form):
        return (Slot("F", ("rho",), True), Slot("f", ("r",), False))

    def from_slots(self, form, linear, shape, constants=()):
        return linear, shape

    def density_curve(self, term, cutoff, r: np.ndarray):
        """f(r)·fc(r) per neighbour and its r-derivative, each shaped like ``r`` (Å)."""
        f, (df,) = values_and_slopes(term, term.density, self.density_variables, r)
        fc, dfc = cutoff.value_and_derivative(r)
        return f * fc, df * fc + f * dfc

    def embedding_curve(self, term, rho: np.ndarray):
        """F(ρ) (eV) and dF/dρ, each shaped like ``rho``."""
        value, (slope,) = values_and_slopes(term, term.expression, self.variables, rho)
        return value, slope

    def inadmissible(self, term):
        # an isolated atom (ρ = 0) must have a finite energy; the frames, whose atoms
        # all have neighbours, never show F there
        value, _ = self.embedding_curve(term, np.zeros(1))
        if not (np.all(np.isfinite(value)) and not np.iscomplexobj(value)):
            return "F(ρ) is not finite at ρ = 0: an isolated atom would have no finite energy"
        return None

    def operations(self, term, cutoff, geometry):
        # F once per embedded atom; f once per bond of an embedded atom
        atoms = geometry.atoms_of(None)
        if term.species is not None:
            atoms = np.any([geometry.atoms_of(s) for s in term.species], axis=0)
        n = geometry.neighbour_counts(cutoff.radius)[atoms]
        return (
            expression_operations(term.expression) * np.count_nonzero(atoms)
            + expression_operations(term.density) * float(np.sum(n))
        ) / max(geometry.n_atoms, 1)

    def curves(self, term, cutoff, r, r0):
        density, _ = self.density_curve(term, cutoff, r)
        rho = np.linspace(0, max(1e-6, 14 * float(np.max(np.abs(density)))), 400)
        with np.errstate(all="ignore"):
            F = self.embedding_curve(term, rho)[0]
        return [
            Curve("embedding term", "ρ", "F(ρ) (eV)", rho, {"": F}),
            Curve("density", "r (Å)", "f(r)·fc(r)", r, {"": density}),
        ]

    def contributions(self, term, cutoff, geometry):
        """Per-atom energies F(ρ_i) (eV, shape ``(n_atoms,)``) and per-pair dE/dr (eV/Å)."""
        f, (df,) = values_and_slopes(term, term.density, self.density_variables, geometry.pair_distances)
        fc, dfc = geometry.cutoff_values(cutoff)
        weight, dweight = f * fc, df * fc + f * dfc
        rho = np.bincount(geometry.pair_i, weight, geometry.n_atoms) + np.bincount(
            geometry.pair_j, weight, geometry.n_atoms
        )
        energy, dF = self.embedding_curve(term, rho)
        if term.species is not None:
            active = np.isin(np.array(geometry.species)[geometry.atom_species], term.species)
            energy, dF = energy * active, dF * active
        return energy, (dF[geometry.pair_i] + dF[geometry.pair_j]) * dweight

    def prediction(self, term, cutoff, geometry):
        atom_energy, slope = self.contributions(term, cutoff, geometry)
        forces = (geometry.force_scatter @ slope).reshape(-1, 3)
        energies = np.bincount(geometry.atom_frame, atom_energy, geometry.n_frames)
        return Prediction(energies, forces, ((geometry.virial_scatter, slope),))

    def slot_energies(self, form, slots, cutoff, species, bonds: Bonds):
        import torch

        near = torch.nonzero(bonds.r < cutoff.radius).squeeze(1)
        r = bonds.r[near]
        rho = bonds.r.new_zeros(bonds.n_atoms).index_add(
            0, bonds.center[near], slots("f", r) * cutoff.value(r, "torch")
        )
        energy = slots("F", rho)
        if species is not None:
            wanted = torch.as_tensor([bonds.index(s) for s in species], device=bonds.species.device)
            energy = energy * torch.isin(bonds.species, wanted)
        return energy

    def kernel(self, term, cutoff, k, context):
        fc = context.cutoff(cutoff)
        f = context.function(f"density_{k}", self.density_variables, term.density, term.constants)
        F = context.function(f"embedding_{k}", self.variables, term.expression, term.constants)
        lines = [
            f"# embedding term {k}: F(ρ_i), ρ_i = Σ_j f(r_ij)·fc(r_ij)",
            f"b = torch.nonzero(r < {cutoff.radius!r}).squeeze(1)",
            f"f, df = {f}(r[b])",
        ]
        if fc:
            lines += [f"c, dc = {fc}(r[b])", "f, df = f * c, df * c + f * dc"]
        lines += [
            "rho = torch.zeros(n_atoms, dtype=r.dtype, device=r.device).index_add(0, center[b], f)",
            f"F, dF = {F}(rho)",
        ]
        if term.species is not None:
            mask = " | ".join(f"(species == {s})" for s in context.species_index(term.species))
            lines += [f"active = ({mask}).to(r.dtype)", "F, dF = F * active, dF * active"]
        lines += ["energy = energy + F.sum()", "slope = slope.index_add(0, b, dF[center[b]] * df)"]
        return "\n".join(lines)


EMBEDDING = Embedding()
