"""A compiled potential with its neighbour list: energy, forces and virial of a
structure as torch tensors on one device. The ASE calculator and the MD engine both
call this; it holds no state but the Verlet list. A hybrid's residual network adds its
energy, with forces and virial by autograd through the symmetry functions."""

from __future__ import annotations

import copy
import ctypes
import sys
from functools import cache

import torch

from evopot.data.neighbors import VerletList
from evopot.devices import resolve_device
from evopot.errors import EvopotError
from evopot.md.kernels import compile_kernel
from evopot.model.potential import Model


@cache
def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed blocks for reuse (mmap threshold 32 MiB, the most it
    takes; trim threshold 1 GiB) instead of returning every block above 128 KiB to the
    system: each MD step allocates the same temporaries of a few hundred KiB, which
    otherwise come back as fresh, page-faulting memory (on Si with 4,096 atoms the kernel
    runs ~30 % faster). The process keeps up to that much memory. Once per process; False
    where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))


class ForceField:
    """``model`` (a formula, or a formula with a correction: any
    :class:`~evopot.model.potential.Model`) compiled for ``device`` and ``dtype``
    (float64 or float32)."""

    def __init__(
        self,
        model: Model,
        device=None,
        dtype: torch.dtype = torch.float64,
        skin: float = 0.5,
        optimize: bool = False,
    ):
        if dtype not in (torch.float64, torch.float32):
            raise EvopotError(f"dtype {dtype} not supported; use float64 or float32")
        potential = model.potential
        if potential.metadata.get("correction") and model.correction is None:
            raise EvopotError(
                "this potential names a neural correction; load it with evopot.neural.hybrid.load_model to "
                "use the network, "
                "or drop the correction with evopot.neural.hybrid.formula_only to run the formula alone"
            )
        self.potential, self.device, self.dtype = potential, resolve_device(device), dtype
        if self.device.type == "cpu":
            reuse_freed_memory()
        self.kernel = compile_kernel(potential, optimize)
        # a copy: dtype casts stay local
        self.correction = None if model.correction is None else copy.deepcopy(model.correction).to(self.device, dtype)
        radius = (
            self.kernel.reach if self.correction is None else max(self.kernel.reach, self.correction.descriptor.cutoff)
        )
        self.neighbors = VerletList(radius, skin)
        self.reference = torch.tensor(
            [potential.reference_energies.get(s, 0.0) for s in potential.species], dtype=dtype, device=self.device
        )

    def species_indices(self, symbols: list[str]) -> torch.Tensor:
        unknown = sorted(set(symbols) - set(self.potential.species))
        if unknown:
            raise EvopotError(
                f"the structure has species {unknown} that the potential "
                f"({', '.join(self.potential.species)}) does not describe"
            )
        order = {s: k for k, s in enumerate(self.potential.species)}
        return torch.tensor([order[s] for s in symbols], dtype=torch.long, device=self.device)

    def tensors(self, atoms) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """positions, cell, pbc and species indices of an ASE ``Atoms`` on the device."""
        return (
            torch.as_tensor(atoms.positions, dtype=self.dtype, device=self.device),
            torch.as_tensor(atoms.cell.array, dtype=self.dtype, device=self.device),
            torch.as_tensor(atoms.pbc, device=self.device),
            self.species_indices(atoms.get_chemical_symbols()),
        )

    def closest_pair(self, positions, cell, pbc) -> tuple[float, int, int] | None:
        """(distance Å, i, j) of the closest two atoms within the neighbour list's reach,
        or None when no two atoms are that close."""
        d, center, neighbor = self.neighbors.bonds(positions, cell, pbc)
        if len(d) == 0:
            return None
        r = torch.linalg.norm(d, dim=1)
        k = int(torch.argmin(r))
        return float(r[k]), int(center[k]), int(neighbor[k])

    def __call__(self, positions, cell, pbc, species):
        """(energy eV incl. reference energies, forces (n, 3) eV/Å, virial (3, 3) eV)."""
        d, center, neighbor = self.neighbors.bonds(positions, cell, pbc)
        energy, forces, virial = self.kernel.compute(d, center, neighbor, species, len(positions))
        if self.correction is not None:
            extra, gradient, _ = self.correction.bond_energies(d, center, neighbor, species, len(positions))
            forces = forces.index_add(0, center, gradient).index_add(0, neighbor, -gradient)
            energy, virial = energy + extra, virial + d.T @ gradient
        return energy + self.reference[species].sum(), forces, virial
