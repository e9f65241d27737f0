"""The torch evaluator: the same energies as :mod:`evopot.evaluate`, forces by autograd.

Pair vectors are rebuilt from positions and cells (``r_j − r_i + shift·cell``) so that
forces are exactly −∂E/∂positions by automatic differentiation. Runs on any torch
device (``"cpu"``, ``"cuda"``); the tests use it as an independent check of the
symbolic forces.
"""

from __future__ import annotations

import numpy as np
import torch

from evopot.evaluate import Prediction, compile_pair_function
from evopot.geometry import Geometry
from evopot.potential import Potential


def evaluate_torch(potential: Potential, geometry: Geometry, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64) -> Prediction:
    """Energies ``(n_frames,)`` and autograd forces ``(n_atoms, 3)`` as NumPy arrays."""
    as_tensor = lambda a, dt=dtype: torch.as_tensor(np.asarray(a), dtype=dt, device=device)  # noqa: E731
    positions = as_tensor(geometry.positions).requires_grad_(True)
    cells = as_tensor(geometry.cells)
    pair_i = as_tensor(geometry.pair_i, torch.long)
    pair_j = as_tensor(geometry.pair_j, torch.long)
    pair_frame = as_tensor(geometry.pair_frame, torch.long)
    shifts = as_tensor(geometry.pair_shifts)
    vectors = positions[pair_j] - positions[pair_i] + torch.einsum("pk,pkl->pl", shifts, cells[pair_frame])
    distances = torch.linalg.norm(vectors, dim=1)
    pair_energy = torch.zeros_like(distances)
    for term in potential.terms:
        names = tuple(term.constants)
        value, _ = compile_pair_function(term.expression, names, "torch")
        mask = geometry.pair_mask(term.species)
        selected = torch.ones_like(distances, dtype=torch.bool) if mask is None else as_tensor(mask, torch.bool)
        r = distances[selected]
        v = value(r, *[term.constants[n] for n in names]) + 0 * r
        pair_energy = pair_energy.index_add(0, torch.nonzero(selected).squeeze(1), v * potential.cutoff.value(r, "torch"))
    energies = torch.zeros(geometry.n_frames, dtype=dtype, device=device).index_add(0, pair_frame, pair_energy)
    per_species = as_tensor([potential.reference_energies.get(s, 0.0) for s in geometry.species])
    energies = energies + as_tensor(geometry.species_counts) @ per_species
    (gradient,) = torch.autograd.grad(energies.sum(), positions)
    return Prediction(energies.detach().cpu().numpy(), -gradient.cpu().numpy())
