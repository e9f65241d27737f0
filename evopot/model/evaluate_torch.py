"""The torch evaluator: the same energies as :mod:`evopot.model.evaluate`, forces by autograd.

Pair vectors are rebuilt from positions and cells (``r_j − r_i + shift·cell``) and
every distance and angle from them, so forces are exactly −∂E/∂positions by
automatic differentiation. Runs on any torch device (``"cpu"``, ``"cuda"``); the tests
use it as an independent check of the symbolic forces.
"""

from __future__ import annotations

import numpy as np
import torch

from evopot.data.geometry import Geometry
from evopot.model.evaluate import Prediction, _symmetric, _triplet_species_mask, compile_function
from evopot.model.potential import DENSITY_VARIABLES, TERM_VARIABLES, Potential, Term


def _value(term: Term, expression, variables, *tensors):
    names = tuple(term.constants)
    value = compile_function(expression, variables, names, "torch")
    # constants as tensors: torch.pow refuses two plain numbers, as in (s/r)**12 → pow(s, 12)/pow(r, 12)
    constants = [torch.as_tensor(term.constants[n], dtype=tensors[0].dtype, device=tensors[0].device) for n in names]
    return value(*tensors, *constants) + 0 * tensors[0]


def pair_energy(term: Term, cutoff, r: torch.Tensor) -> torch.Tensor:
    """V(r)·fc(r) of a pair term for distances ``r`` inside the cutoff."""
    return _value(term, term.expression, ("r",), r) * cutoff.value(r, "torch")


def threebody_energy(term: Term, cutoff, r1: torch.Tensor, r2: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """V3(r_ij, r_ik, cos θ)·fc(r_ij)·fc(r_ik) of a three-body term per angle, symmetrised
    in its two bonds."""
    names = TERM_VARIABLES["threebody"]
    energy = _value(term, term.expression, names, r1, r2, cos)
    if not _symmetric(term.expression):
        energy = (energy + _value(term, term.expression, names, r2, r1, cos)) / 2
    return energy * cutoff.value(r1, "torch") * cutoff.value(r2, "torch")


def evaluate_torch(
    potential: Potential, geometry: Geometry, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64
) -> Prediction:
    """Energies ``(n_frames,)`` and autograd forces ``(n_atoms, 3)`` as NumPy arrays."""

    def tensor(a, dt=dtype):
        return torch.as_tensor(np.asarray(a), dtype=dt, device=device)

    positions = tensor(geometry.positions).requires_grad_(True)
    cells = tensor(geometry.cells)
    pair_i, pair_j = tensor(geometry.pair_i, torch.long), tensor(geometry.pair_j, torch.long)
    vectors = (
        positions[pair_j]
        - positions[pair_i]
        + torch.einsum("pk,pkl->pl", tensor(geometry.pair_shifts), cells[tensor(geometry.pair_frame, torch.long)])
    )
    distances = torch.linalg.norm(vectors, dim=1)
    atom_energy = torch.zeros(geometry.n_atoms, dtype=dtype, device=device)
    pair_energies = torch.zeros_like(distances)
    for term in potential.terms:
        cutoff = potential.cutoff_of(term)
        if term.kind == "pair":
            mask = geometry.pair_mask(term.species)
            selected = tensor(np.arange(geometry.n_pairs) if mask is None else np.nonzero(mask)[0], torch.long)
            r = distances[selected]
            pair_energies = pair_energies.index_add(0, selected, pair_energy(term, cutoff, r))
        elif term.kind == "embedding":
            weight = _value(term, term.density, DENSITY_VARIABLES, distances) * cutoff.value(distances, "torch")
            rho = torch.zeros_like(atom_energy).index_add(0, pair_i, weight).index_add(0, pair_j, weight)
            energy = _value(term, term.expression, TERM_VARIABLES["embedding"], rho)
            if term.species is not None:
                energy = energy * tensor(np.isin(np.array(geometry.species)[geometry.atom_species], term.species))
            atom_energy = atom_energy + energy
        elif term.kind == "threebody":
            t = geometry.triplets(cutoff.radius)
            keep = (
                np.arange(len(t))
                if term.species is None
                else np.nonzero(_triplet_species_mask(geometry, t, term.species))[0]
            )
            bonds = geometry.bonds
            bond_vectors = vectors[tensor(bonds.pair, torch.long)] * tensor(bonds.sign)[:, None]
            v1 = bond_vectors[tensor(t.bond_ij[keep], torch.long)]
            v2 = bond_vectors[tensor(t.bond_ik[keep], torch.long)]
            r1, r2 = torch.linalg.norm(v1, dim=1), torch.linalg.norm(v2, dim=1)
            energy = threebody_energy(term, cutoff, r1, r2, (v1 * v2).sum(dim=1) / (r1 * r2))
            atom_energy = atom_energy.index_add(0, tensor(t.center[keep], torch.long), energy)
    energies = torch.zeros(geometry.n_frames, dtype=dtype, device=device).index_add(
        0, tensor(geometry.pair_frame, torch.long), pair_energies
    )
    energies = energies.index_add(0, tensor(geometry.atom_frame, torch.long), atom_energy)
    energies = energies + tensor(geometry.species_counts) @ tensor(
        [potential.reference_energies.get(s, 0.0) for s in geometry.species]
    )
    (gradient,) = torch.autograd.grad(energies.sum(), positions)
    return Prediction(energies.detach().cpu().numpy(), -gradient.cpu().numpy())
