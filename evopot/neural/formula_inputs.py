"""The formula's own terms as inputs of the residual network.

A network trained on DFT minus a formula must learn the formula's shape as well as what
DFT adds to it: its errors on the two add up, and on the Si data the hybrid came out
worse than the network trained on DFT alone (issue 7's notes). Giving the network each
term's energy per atom as one more input column lets it represent the formula exactly
(a linear read-out of the column) and spend itself on the rest.

The column of a term is the share of the formula's energy that belongs to atom i:
½ Σ_j V(r_ij)·fc for a pair term, Σ_{j<k} V3·fc·fc over the angles centred on i for a
three-body term, F(ρ_i) for an embedding term; the columns of all atoms sum to the
formula's energy without its reference energies. Each depends only on atom i's bonds,
so the columns stand next to the symmetry functions: same bond-vector inputs, same
per-column Jacobians in training, same autograd forces in MD.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from evopot.errors import EvopotError
from evopot.model.potential import Potential
from evopot.model.terms import Bonds
from evopot.neural.descriptors import SymmetryFunctions


@dataclass(frozen=True)
class FormulaInputs:
    """``symmetry`` functions followed by one column per term of ``potential``."""

    symmetry: SymmetryFunctions
    potential: Potential

    def __post_init__(self):
        if tuple(self.potential.species) != tuple(self.symmetry.species):
            raise EvopotError(
                f"formula inputs: the formula's species {list(self.potential.species)} differ from the "
                f"symmetry functions' {list(self.symmetry.species)}"
            )
        if self.potential.reach > self.symmetry.cutoff:
            raise EvopotError(
                f"formula inputs: the formula reaches {self.potential.reach} Å, beyond the network's cutoff "
                f"{self.symmetry.cutoff} Å; raise correction.cutoff, or set correction.formula_inputs: false"
            )
        if not self.potential.terms:
            raise EvopotError("formula inputs: the formula has no terms")

    @property
    def species(self) -> tuple[str, ...]:
        return self.symmetry.species

    @property
    def cutoff(self) -> float:
        return self.symmetry.cutoff

    @property
    def angular_cutoff(self) -> float:
        return self.symmetry.angular_cutoff

    @property
    def n_terms(self) -> int:
        return len(self.potential.terms)

    @property
    def n_features(self) -> int:
        return self.symmetry.n_features + self.n_terms

    def to_dict(self) -> dict:
        return {**self.symmetry.to_dict(), "formula_terms": self.n_terms, "formula": self.potential.formula()}

    def neighbourhood(self, d, center, neighbor, species, n_atoms) -> dict:
        hood = self.symmetry.neighbourhood(d, center, neighbor, species, n_atoms)
        hood["formula"] = [
            self._term(term, d, hood["r"], center, neighbor, species, n_atoms) for term in self.potential.terms
        ]
        return hood

    def column(self, hood: dict, k: int) -> torch.Tensor:
        n = self.symmetry.n_features
        return self.symmetry.column(hood, k) if k < n else hood["formula"][k - n]

    def __call__(self, d, center, neighbor, species, n_atoms) -> torch.Tensor:
        hood = self.neighbourhood(d, center, neighbor, species, n_atoms)
        return torch.cat([self.symmetry.features(hood), torch.stack(hood["formula"], dim=1)], dim=1)

    def _term(self, term, d, r, center, neighbor, species, n_atoms) -> torch.Tensor:
        """Atom i's share of ``term``'s energy (n_atoms,) eV."""
        bonds = Bonds(d, r, center, neighbor, species, n_atoms, tuple(self.species))
        return term.spec.atom_energies(term, self.potential.cutoff_of(term), bonds)
