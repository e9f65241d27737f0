"""The torch evaluator: the same energies as :mod:`evopot.model.evaluate`, forces by autograd.

Bond vectors are rebuilt from positions and cells (``r_j − r_i + shift·cell``) into a
full neighbour list (:class:`~evopot.model.terms.Bonds`), and every term kind adds its
per-atom energies over it, so forces are exactly −∂E/∂positions by automatic
differentiation. Runs on any torch device (``"cpu"``, ``"cuda"``); the tests use it as
an independent check of the symbolic forces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from evopot.data.geometry import Geometry
from evopot.model.potential import Potential
from evopot.model.terms import Bonds, Prediction


@dataclass(frozen=True)
class BondIndex:
    """What a geometry's full neighbour list needs besides positions, as tensors on one
    device, built once (a training loop evaluates the same frames many times):
    :meth:`bonds` gives the :class:`Bonds` at given positions."""

    pair_i: torch.Tensor
    pair_j: torch.Tensor
    shifts: torch.Tensor  # Cartesian periodic shift of each pair, Å
    bond_pair: torch.Tensor
    bond_sign: torch.Tensor
    center: torch.Tensor
    neighbor: torch.Tensor
    species: torch.Tensor
    n_atoms: int
    order: tuple[str, ...]

    @classmethod
    def of(cls, geometry: Geometry, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64):
        def tensor(a, dt=dtype):
            return torch.as_tensor(np.asarray(a), dtype=dt, device=device)

        cells = tensor(geometry.cells)
        shifts = torch.einsum(
            "pk,pkl->pl", tensor(geometry.pair_shifts), cells[tensor(geometry.pair_frame, torch.long)]
        )
        bonds, order = geometry.bonds, geometry.centre_order
        return cls(
            pair_i=tensor(geometry.pair_i, torch.long),
            pair_j=tensor(geometry.pair_j, torch.long),
            shifts=shifts,
            bond_pair=tensor(bonds.pair[order], torch.long),
            bond_sign=tensor(bonds.sign[order])[:, None],
            center=tensor(bonds.center[order], torch.long),
            neighbor=tensor(bonds.neighbor[order], torch.long),
            species=tensor(geometry.atom_species, torch.long),
            n_atoms=geometry.n_atoms,
            order=tuple(geometry.species),
        )

    def bonds(self, positions: torch.Tensor) -> Bonds:
        """The neighbour list sorted by centre, its bond vectors computed from
        ``positions`` (n_atoms, 3) so that they carry its gradient."""
        vectors = positions[self.pair_j] - positions[self.pair_i] + self.shifts
        pair_r = torch.linalg.norm(vectors, dim=1)
        d = vectors[self.bond_pair] * self.bond_sign
        r = pair_r[self.bond_pair]
        return Bonds(d, r, self.center, self.neighbor, self.species, self.n_atoms, self.order, self.bond_pair, pair_r)


def geometry_bonds(geometry: Geometry, positions: torch.Tensor) -> Bonds:
    """The full neighbour list of ``geometry`` sorted by centre, with bond vectors
    computed from ``positions`` (n_atoms, 3) so that they carry its gradient."""
    return BondIndex.of(geometry, positions.device, positions.dtype).bonds(positions)


def evaluate_torch(
    potential: Potential, geometry: Geometry, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64
) -> Prediction:
    """Energies ``(n_frames,)`` and autograd forces ``(n_atoms, 3)`` as NumPy arrays."""
    positions = torch.as_tensor(geometry.positions, dtype=dtype, device=device).requires_grad_(True)
    bonds = geometry_bonds(geometry, positions)
    atom_energy = torch.zeros(geometry.n_atoms, dtype=dtype, device=device)
    for term in potential.terms:
        atom_energy = atom_energy + term.spec.atom_energies(term, potential.cutoff_of(term), bonds)
    frame = torch.as_tensor(geometry.atom_frame, dtype=torch.long, device=device)
    energies = torch.zeros(geometry.n_frames, dtype=dtype, device=device).index_add(0, frame, atom_energy)
    reference = [potential.reference_energies.get(s, 0.0) for s in geometry.species]
    counts = torch.as_tensor(geometry.species_counts, dtype=dtype, device=device)
    energies = energies + counts @ torch.as_tensor(reference, dtype=dtype, device=device)
    (gradient,) = torch.autograd.grad(energies.sum(), positions)
    return Prediction(energies.detach().cpu().numpy(), -gradient.cpu().numpy())
