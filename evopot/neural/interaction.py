"""The interaction-network correction (``correction.model: interaction``): message
passing on the atoms' neighbour graph, after Battaglia et al. (2016), where relations
between atoms are reasoned about by one function and the atoms themselves by another.

Each atom starts from an embedding of its species plus a linear map of its
standardised descriptor (the same symmetry functions and formula term energies the
Behler–Parrinello network reads). Each of T rounds then

- computes a message on every bond i→j with the relation function φ_R of
  (h_i, h_j, radial basis of r_ij), times the smooth cutoff f_c(r_ij);
- sums the messages per atom, and also their first and second moments along the bond
  directions: v_i = Σ_j m_ij u_ij and T_i = Σ_j m_ij (u_ij u_ijᵀ − I/3) for the first
  ``channels`` message channels, whose squared norms are three-body invariants (they
  contain cos θ_jik and its square for every pair of bonds of atom i) at the cost of a
  pass over bonds, not over bond pairs; this is the angular information, exactly
  invariant under rotations, without enumerating triplets;
- updates the atom with the object function φ_O of (h_i, Σ_j m_ij, |v_i|², |T_i|²),
  residually.

A readout MLP gives each atom's energy (scaled and shifted per species as in the
Behler–Parrinello network). The energy is a smooth function of the bond vectors, so
forces by autograd are exact gradients: energy-conserving MD.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from evopot.errors import EvopotError

#: the defaults of ``correction.interaction``
DEFAULTS = {"width": 32, "rounds": 2, "radial": 8, "channels": 8}


def _mlp(widths: list[int], activation) -> nn.Sequential:
    layers = []
    for a, b in zip(widths[:-2], widths[1:-1]):
        layers += [nn.Linear(a, b), activation()]
    return nn.Sequential(*layers, nn.Linear(widths[-2], widths[-1]))


class InteractionNetwork(nn.Module):
    """Atomic energies (n_atoms,) eV from descriptor features and the bonds of a full
    neighbour list (vectors ``d`` from centre to neighbour, within ``cutoff`` Å)."""

    reads_bonds = True

    def __init__(
        self,
        n_species: int,
        n_features: int,
        cutoff: float,
        width: int = 32,
        rounds: int = 2,
        radial: int = 8,
        channels: int = 8,
        hidden: tuple[int, ...] = (32,),
        activation: str = "silu",
    ):
        super().__init__()
        from evopot.neural.network import ACTIVATIONS

        if activation not in ACTIVATIONS:
            raise EvopotError(f"activation '{activation}' unknown; choose one of {sorted(ACTIVATIONS)}")
        if not (width >= 1 and rounds >= 1 and radial >= 1 and 0 <= channels <= width):
            raise EvopotError(
                f"interaction network: width {width}, rounds {rounds}, radial {radial} must be ≥ 1 and channels "
                f"{channels} between 0 and width"
            )
        act = ACTIVATIONS[activation]
        self.cutoff, self.channels = float(cutoff), channels
        self.embedding = nn.Embedding(n_species, width)
        self.inputs = nn.Linear(n_features, width)
        self.relations = nn.ModuleList(_mlp([2 * width + radial, *hidden, width], act) for _ in range(rounds))
        self.objects = nn.ModuleList(_mlp([2 * width + 2 * channels, *hidden, width], act) for _ in range(rounds))
        self.readout = _mlp([width, *hidden, 1], act)
        self.register_buffer("centres", torch.linspace(0.0, cutoff, radial, dtype=torch.float64))
        self.register_buffer("feature_mean", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("feature_std", torch.ones(n_features, dtype=torch.float64))
        self.register_buffer("energy_shift", torch.zeros(n_species, dtype=torch.float64))
        self.register_buffer("energy_scale", torch.ones((), dtype=torch.float64))

    def forward(self, features, species, d, center, neighbor) -> torch.Tensor:
        n_atoms = len(features)
        h = self.embedding(species) + self.inputs((features - self.feature_mean) / self.feature_std)
        r = torch.linalg.norm(d, dim=1)
        u = d / r.clamp_min(1e-9)[:, None]
        # cosine cutoff: smooth (C¹) to zero at the cutoff, so every message fades out
        fc = torch.where(r < self.cutoff, 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1), torch.zeros_like(r))
        width = self.cutoff / max(len(self.centres) - 1, 1)
        basis = torch.exp(-(((r[:, None] - self.centres) / width) ** 2)) * fc[:, None]
        outer = u[:, :, None] * u[:, None, :] - torch.eye(3, dtype=d.dtype, device=d.device) / 3
        c = self.channels
        for relation, update in zip(self.relations, self.objects):
            message = _relation(relation, h, basis, center, neighbor) * fc[:, None]
            summed = h.new_zeros(n_atoms, h.shape[1]).index_add(0, center, message)
            parts = [h, summed]
            if c:
                weights = message[:, :c]
                vector = h.new_zeros(n_atoms, c, 3).index_add(0, center, weights[:, :, None] * u[:, None, :])
                tensor = h.new_zeros(n_atoms, c, 3, 3).index_add(
                    0, center, weights[:, :, None, None] * outer[:, None, :, :]
                )
                parts += [vector.pow(2).sum(2), tensor.pow(2).sum((2, 3))]
            h = h + update(torch.cat(parts, dim=1))
        return self.readout(h).squeeze(1) * self.energy_scale + self.energy_shift[species]


def _relation(relation: nn.Sequential, h, basis, center, neighbor) -> torch.Tensor:
    """``relation`` of the bonds' (h_centre, h_neighbour, radial basis), its first layer
    applied to each atom's h once and gathered per bond: the same map as on the
    concatenated (n_bonds, 2·width + radial) inputs, without building them, and with
    a width × hidden product per atom instead of per bond."""
    first, width = relation[0], h.shape[1]
    weight = first.weight
    pre = (h @ weight[:, :width].T)[center] + (h @ weight[:, width : 2 * width].T)[neighbor]
    pre = pre + basis @ weight[:, 2 * width :].T + first.bias
    return relation[1:](pre)


def atomic_energies(network, features, species, d=None, center=None, neighbor=None) -> torch.Tensor:
    """Atomic energies of either kind of network: the interaction network also reads the
    bonds, the Behler–Parrinello network only the features."""
    if getattr(network, "reads_bonds", False):
        return network(features, species, d, center, neighbor)
    return network(features, species)
