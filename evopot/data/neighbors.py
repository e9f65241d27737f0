"""Verlet neighbour lists on the device for MD and the ASE calculator.

vesin (its torch interface) builds a full list with radius cutoff + skin; the list is
kept until some atom has moved more than half the skin since the build (or the cell
changed), so between rebuilds only the bond vectors are recomputed:
d = x[neighbor] − x[center] + shift · cell, which stays valid without wrapping
positions. Triclinic and partly periodic cells are handled by vesin.
"""

from __future__ import annotations

import torch
from vesin_torch import NeighborList as VesinList


class VerletList:
    """Full neighbour list (every pair both ways, sorted by centre) with a skin (Å)."""

    def __init__(self, cutoff: float, skin: float = 0.5):
        self.cutoff, self.skin = float(cutoff), float(skin)
        self._vesin = VesinList(cutoff=self.cutoff + self.skin, full_list=True, sorted=True)
        self._reference = None
        self._cell = None
        self.builds = 0

    def _stale(self, positions: torch.Tensor, cell: torch.Tensor) -> bool:
        if self._reference is None or self._reference.shape != positions.shape or not torch.equal(cell, self._cell):
            return True
        return bool(((positions - self._reference) ** 2).sum(1).max() > (0.5 * self.skin) ** 2)

    def bonds(
        self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(d (n_bonds, 3) Å, center, neighbor) for ``positions`` (n_atoms, 3) Å in
        ``cell`` (3, 3) Å with periodicity ``pbc`` (3,) bool."""
        if self._stale(positions, cell):
            box = cell if bool(pbc.any()) else torch.zeros_like(cell)
            i, j, shifts = self._vesin.compute(positions.to(torch.float64), box.to(torch.float64), pbc, "ijS")
            self._center, self._neighbor = i.to(torch.long), j.to(torch.long)
            self._offsets = shifts.to(positions.dtype) @ cell  # Cartesian; a new cell means a new list
            self._reference, self._cell = positions.detach().clone(), cell.detach().clone()
            self.builds += 1
        d = positions.index_select(0, self._neighbor) - positions.index_select(0, self._center) + self._offsets
        return d, self._center, self._neighbor


def angle_pairs(
    center: torch.Tensor, r: torch.Tensor, radius: float, n_atoms: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every angle j–i–k as a pair of bond indices (t1, t2), t1 < t2, from one centre,
    both bonds shorter than ``radius`` (Å); ``center`` (n_bonds,) must be sorted."""
    near = torch.nonzero(r < radius).squeeze(1)
    owner = center.index_select(0, near)
    count = torch.bincount(owner, minlength=n_atoms)
    start = (torch.cumsum(count, 0) - count).index_select(0, owner)  # first bond of each bond's centre
    index = torch.arange(len(near), device=r.device)
    partners = count.index_select(0, owner) - (index - start) - 1  # later bonds of the same centre
    first = torch.repeat_interleave(index, partners)
    second = (
        first
        + 1
        + torch.arange(len(first), device=r.device)
        - (torch.cumsum(partners, 0) - partners).index_select(0, first)
    )
    if len(near) == len(r):  # every bond is inside: near is the identity
        return first, second
    return near.index_select(0, first), near.index_select(0, second)
