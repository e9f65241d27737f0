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

from evopot.data.neighbors import angle_pairs
from evopot.errors import EvopotError
from evopot.model.evaluate_torch import _value, pair_energy, threebody_energy
from evopot.model.potential import DENSITY_VARIABLES, TERM_VARIABLES, Potential, Term
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
        return torch.stack([self.column(hood, k) for k in range(self.n_features)], dim=1)

    def _index(self, name: str) -> int:
        return self.species.index(name) if name in self.species else -1

    def _term(self, term: Term, d, r, center, neighbor, species, n_atoms) -> torch.Tensor:
        """Atom i's share of ``term``'s energy (n_atoms,) eV."""
        cut = self.potential.cutoff_of(term)
        out = r.new_zeros(n_atoms)
        inside = r < cut.radius
        safe = torch.where(inside, r, torch.full_like(r, 0.5 * cut.radius))  # no inf·0 past the cutoff
        if term.kind == "pair":
            keep = inside
            if term.species is not None:
                a, b = sorted(self._index(s) for s in term.species)
                low, high = (
                    torch.minimum(species[center], species[neighbor]),
                    torch.maximum(species[center], species[neighbor]),
                )
                keep = keep & (low == a) & (high == b)
            return out.index_add(0, center, torch.where(keep, 0.5 * pair_energy(term, cut, safe), torch.zeros_like(r)))
        if term.kind == "embedding":
            weight = torch.where(
                inside,
                _value(term, term.density, DENSITY_VARIABLES, safe) * cut.value(safe, "torch"),
                torch.zeros_like(r),
            )
            energy = _value(term, term.expression, TERM_VARIABLES["embedding"], out.index_add(0, center, weight))
            if term.species is not None:
                energy = energy * torch.isin(
                    species, torch.as_tensor([self._index(s) for s in term.species], device=species.device)
                )
            return energy
        if term.kind == "threebody":
            t1, t2 = angle_pairs(center, r, cut.radius, n_atoms)
            r1, r2 = r[t1], r[t2]
            energy = threebody_energy(term, cut, r1, r2, ((d[t1] * d[t2]).sum(1) / (r1 * r2)).clamp(-1.0, 1.0))
            if term.species is not None:
                c, x, y = (self._index(s) for s in term.species)
                a, b = species[neighbor[t1]], species[neighbor[t2]]
                energy = energy * ((species[center[t1]] == c) & (((a == x) & (b == y)) | ((a == y) & (b == x))))
            return out.index_add(0, center[t1], energy)
        raise EvopotError(
            f"formula inputs: no per-atom energy for a '{term.kind}' term; set correction.formula_inputs: false"
        )
