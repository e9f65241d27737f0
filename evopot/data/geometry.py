"""Geometry: the pairs of a whole dataset within a cutoff, as flat arrays.

Computed once per dataset and cutoff with vesin's neighbour list (each unordered pair
once, periodic images included). Everything the evaluator needs is here: distances,
unit vectors, which atoms and frame each pair belongs to, and sparse matrices that
scatter per-pair quantities onto atoms (forces) and frames (energies).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse

from evopot.data.dataset import Frames
from evopot.errors import EvopotError


@dataclass(frozen=True)
class Geometry:
    """Pairs (i < j, or i == j for periodic self-images) of every frame within ``cutoff``.

    Shapes: ``positions (n_atoms, 3)`` Å, all frames stacked; ``atom_frame (n_atoms,)``;
    ``atom_species (n_atoms,)`` indices into ``species``; ``cells (n_frames, 3, 3)`` Å;
    ``pair_i, pair_j, pair_frame (n_pairs,)``; ``pair_shifts (n_pairs, 3)`` integer cell
    shifts so that the pair vector is ``positions[j] - positions[i] + shifts @ cell``;
    ``pair_vectors (n_pairs, 3)`` Å; ``pair_distances (n_pairs,)`` Å.
    """

    cutoff: float
    species: tuple[str, ...]
    positions: np.ndarray
    atom_frame: np.ndarray
    atom_species: np.ndarray
    cells: np.ndarray
    atoms_per_frame: np.ndarray
    pair_i: np.ndarray
    pair_j: np.ndarray
    pair_frame: np.ndarray
    pair_shifts: np.ndarray
    pair_vectors: np.ndarray
    pair_distances: np.ndarray

    @property
    def n_atoms(self) -> int:
        return len(self.positions)

    @property
    def n_frames(self) -> int:
        return len(self.cells)

    @property
    def n_pairs(self) -> int:
        return len(self.pair_distances)

    @cached_property
    def pair_unit_vectors(self) -> np.ndarray:
        """(n_pairs, 3) unit vectors from atom i towards atom j."""
        return self.pair_vectors / self.pair_distances[:, None]

    @cached_property
    def pair_species(self) -> np.ndarray:
        """(n_pairs, 2) species indices of (i, j), sorted within each pair."""
        both = np.stack([self.atom_species[self.pair_i], self.atom_species[self.pair_j]], axis=1)
        return np.sort(both, axis=1)

    def pair_mask(self, species_pair: tuple[str, ...] | None) -> np.ndarray | None:
        """Boolean (n_pairs,) mask of pairs of ``species_pair``; ``None`` means all pairs."""
        if species_pair is None:
            return None
        wanted = sorted(self.species.index(s) if s in self.species else -1 for s in species_pair)
        return (self.pair_species[:, 0] == wanted[0]) & (self.pair_species[:, 1] == wanted[1])

    @cached_property
    def force_scatter(self) -> scipy.sparse.csr_matrix:
        """Sparse (3·n_atoms, n_pairs): ``force_scatter @ dE_dr`` gives the forces,
        flattened atom-major, for per-pair derivatives dE/dr (eV/Å)."""
        unit = self.pair_unit_vectors
        rows = np.concatenate([3 * self.pair_i[:, None] + np.arange(3), 3 * self.pair_j[:, None] + np.arange(3)])
        cols = np.concatenate([np.repeat(np.arange(self.n_pairs)[:, None], 3, axis=1)] * 2)
        vals = np.concatenate([unit, -unit])
        return scipy.sparse.csr_matrix(
            (vals.ravel(), (rows.ravel(), cols.ravel())), shape=(3 * self.n_atoms, self.n_pairs)
        )

    @cached_property
    def virial_scatter(self) -> scipy.sparse.csc_matrix:
        """Sparse (6·n_frames, n_pairs): ``virial_scatter @ dE_dr``, reshaped (n_frames, 6),
        is each frame's virial W = ∂E/∂ε (eV, Voigt order xx yy zz yz xz xy; W / volume
        is ASE's stress) for per-pair derivatives dE/dr (eV/Å)."""
        unit = self.pair_unit_vectors
        return virial_matrix(self.pair_frame, voigt_outer(unit, unit) * self.pair_distances[:, None], self.n_frames)

    @cached_property
    def energy_scatter(self) -> scipy.sparse.csr_matrix:
        """Sparse (n_frames, n_pairs) of ones: sums per-pair energies into frames."""
        return scipy.sparse.csr_matrix(
            (np.ones(self.n_pairs), (self.pair_frame, np.arange(self.n_pairs))), shape=(self.n_frames, self.n_pairs)
        )

    @cached_property
    def bonds(self) -> Bonds:
        """Every pair in both directions (the full neighbour list), see :class:`Bonds`."""
        n = self.n_pairs
        return Bonds(
            center=np.concatenate([self.pair_i, self.pair_j]),
            neighbor=np.concatenate([self.pair_j, self.pair_i]),
            pair=np.concatenate([np.arange(n), np.arange(n)]),
            sign=np.concatenate([np.ones(n), -np.ones(n)]),
        )

    @cached_property
    def centre_order(self) -> np.ndarray:
        """The order (stable) that sorts :attr:`bonds` by centre atom."""
        return np.argsort(self.bonds.center, kind="stable")

    def centred_bonds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The full neighbour list sorted by centre atom (stable): ``center``,
        ``neighbor`` (n_bonds,) and the bond vectors (n_bonds, 3) Å from centre to
        neighbour, the layout atom-centred functions read."""
        bonds, order = self.bonds, self.centre_order
        return (
            bonds.center[order],
            bonds.neighbor[order],
            self.pair_vectors[bonds.pair[order]] * bonds.sign[order, None],
        )

    def cutoff_values(self, cutoff) -> tuple[np.ndarray, np.ndarray]:
        """fc and dfc/dr of a :class:`~evopot.model.cutoff.Cutoff` at every pair distance,
        ``(n_pairs,)`` each; cached per cutoff, since every candidate needs them."""
        return self.memo(("cutoff values", cutoff), lambda: cutoff.value_and_derivative(self.pair_distances))

    def memo(self, key, build):
        """``build()``, computed once per geometry and ``key``: for derived arrays that
        every candidate of a search needs (cutoff values, angle tables)."""
        cache = self.__dict__.setdefault("_memo", {})
        if key not in cache:
            cache[key] = build()
        return cache[key]

    def triplets(self, cutoff: float) -> Triplets:
        """Angles j–i–k at every atom i between two bonds shorter than ``cutoff`` (Å),
        each unordered pair of bonds once. Cached per cutoff."""
        return self.memo(("triplets", cutoff), lambda: build_triplets(self, cutoff))

    def neighbour_counts(self, radius: float, species: str | None = None) -> np.ndarray:
        """(n_atoms,) how many neighbours each atom has within ``radius`` Å (periodic
        images included; of ``species`` only, when given)."""
        keep = self.pair_distances < radius
        i, j = self.pair_i[keep], self.pair_j[keep]
        if species is None:
            return np.bincount(i, minlength=self.n_atoms) + np.bincount(j, minlength=self.n_atoms)
        wanted = self.species.index(species) if species in self.species else -1
        return np.bincount(i, weights=self.atom_species[j] == wanted, minlength=self.n_atoms) + np.bincount(
            j, weights=self.atom_species[i] == wanted, minlength=self.n_atoms
        )

    def atoms_of(self, species: str | None) -> np.ndarray:
        """Boolean (n_atoms,) mask of the atoms of ``species`` (None: all)."""
        if species is None:
            return np.ones(self.n_atoms, dtype=bool)
        return self.atom_species == (self.species.index(species) if species in self.species else -1)

    @cached_property
    def species_counts(self) -> np.ndarray:
        """(n_frames, n_species) number of atoms of each species in each frame."""
        counts = np.zeros((self.n_frames, len(self.species)))
        np.add.at(counts, (self.atom_frame, self.atom_species), 1)
        return counts


def build_geometry(frames: Frames, cutoff: float, species: tuple[str, ...] | list[str] | None = None) -> Geometry:
    """One pass of vesin's neighbour list over ``frames`` with radius ``cutoff`` (Å).

    ``species`` fixes the order of species indices (default: sorted species present).
    Raises :class:`EvopotError` for a species not in ``species``, a non-positive
    cutoff, or a periodic frame whose cell is degenerate.
    """
    if not cutoff > 0:
        raise EvopotError(f"cutoff radius must be > 0 Å, got {cutoff}")
    species = tuple(species) if species is not None else tuple(frames.species)
    index = {s: k for k, s in enumerate(species)}
    import vesin  # imports torch: only where a geometry is built, not in every process that reads one

    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=False)
    positions, atom_frame, atom_species, cells, counts = [], [], [], [], []
    pair_i, pair_j, pair_frame, pair_shifts, pair_vectors, pair_distances = [], [], [], [], [], []
    offset = 0
    for k, atoms in enumerate(frames.atoms):
        symbols = atoms.get_chemical_symbols()
        unknown = sorted(set(symbols) - set(index))
        if unknown:
            raise EvopotError(
                f"{frames.source}: frame {k} contains species {unknown} that are not among the potential's "
                f"species {list(species)}; add them to 'species' in the config or drop those frames"
            )
        pbc = [bool(p) for p in atoms.pbc]
        cell = np.asarray(atoms.cell.array, dtype=float)
        if any(pbc) and abs(np.linalg.det(cell)) < 1e-9:
            raise EvopotError(f"{frames.source}: frame {k} is periodic but its cell has zero volume")
        points = np.asarray(atoms.positions, dtype=float)
        i, j, shifts, vectors, distances = calculator.compute(
            points, cell if any(pbc) else np.zeros((3, 3)), pbc, quantities="ijSDd"
        )
        positions.append(points)
        atom_frame.append(np.full(len(atoms), k))
        atom_species.append(np.array([index[s] for s in symbols], dtype=np.int64))
        cells.append(cell)
        counts.append(len(atoms))
        pair_i.append(np.asarray(i, dtype=np.int64) + offset)
        pair_j.append(np.asarray(j, dtype=np.int64) + offset)
        pair_frame.append(np.full(len(i), k))
        pair_shifts.append(np.asarray(shifts, dtype=np.int64).reshape(-1, 3))
        pair_vectors.append(np.asarray(vectors, dtype=float).reshape(-1, 3))
        pair_distances.append(np.asarray(distances, dtype=float))
        offset += len(atoms)
    if not frames.atoms:
        raise EvopotError(f"{frames.source}: no frames to build the geometry from")
    return Geometry(
        cutoff=float(cutoff),
        species=species,
        positions=np.concatenate(positions),
        atom_frame=np.concatenate(atom_frame),
        atom_species=np.concatenate(atom_species),
        cells=np.stack(cells),
        atoms_per_frame=np.array(counts),
        pair_i=np.concatenate(pair_i),
        pair_j=np.concatenate(pair_j),
        pair_frame=np.concatenate(pair_frame),
        pair_shifts=np.concatenate(pair_shifts),
        pair_vectors=np.concatenate(pair_vectors),
        pair_distances=np.concatenate(pair_distances),
    )


def voigt_outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The symmetric part of the outer products a ⊗ b of rows of ``a`` and ``b``
    (n, 3), in Voigt order (xx, yy, zz, yz, xz, xy): shape (n, 6)."""
    return np.stack(
        [
            a[:, 0] * b[:, 0],
            a[:, 1] * b[:, 1],
            a[:, 2] * b[:, 2],
            0.5 * (a[:, 1] * b[:, 2] + a[:, 2] * b[:, 1]),
            0.5 * (a[:, 0] * b[:, 2] + a[:, 2] * b[:, 0]),
            0.5 * (a[:, 0] * b[:, 1] + a[:, 1] * b[:, 0]),
        ],
        axis=1,
    )


def virial_matrix(frame: np.ndarray, values: np.ndarray, n_frames: int) -> scipy.sparse.csc_matrix:
    """Sparse (6·n_frames, n_columns) with column c's six Voigt ``values[c]`` in the rows
    of its ``frame[c]``: it turns per-column derivatives of the energy into virials."""
    n = len(frame)
    rows = (6 * np.asarray(frame)[:, None] + np.arange(6)).ravel()
    return scipy.sparse.csc_matrix(
        (np.asarray(values, dtype=float).ravel(), rows, np.arange(0, 6 * n + 1, 6)), shape=(6 * n_frames, n)
    )


@dataclass(frozen=True)
class Bonds:
    """The full neighbour list as directed bonds, shape ``(2·n_pairs,)`` each: bond b
    goes from ``center[b]`` to ``neighbor[b]`` along ``sign[b] · pair_vectors[pair[b]]``."""

    center: np.ndarray
    neighbor: np.ndarray
    pair: np.ndarray
    sign: np.ndarray


@dataclass(frozen=True)
class Triplets:
    """Angles j–i–k as flat arrays, shape ``(n_triplets,)``: ``center`` is atom i,
    ``bond_ij`` and ``bond_ik`` index :attr:`Geometry.bonds`; ``r_ij``, ``r_ik`` in Å,
    ``cos_theta`` the cosine of the angle at i."""

    cutoff: float
    center: np.ndarray
    bond_ij: np.ndarray
    bond_ik: np.ndarray
    r_ij: np.ndarray
    r_ik: np.ndarray
    cos_theta: np.ndarray

    def __len__(self) -> int:
        return len(self.center)


def build_triplets(geometry: Geometry, cutoff: float) -> Triplets:
    """All unordered pairs of bonds sharing a centre atom, both shorter than ``cutoff``.

    Vectorised: bonds are sorted by centre; a bond at position p in a group of n bonds
    pairs with the n − 1 − p bonds after it.
    """
    if cutoff > geometry.cutoff + 1e-12:
        raise EvopotError(f"three-body cutoff {cutoff} Å exceeds the geometry's cutoff {geometry.cutoff} Å")
    bonds = geometry.bonds
    distance = geometry.pair_distances[bonds.pair]
    short = np.nonzero(distance < cutoff)[0]
    order = short[np.argsort(bonds.center[short], kind="stable")]
    centers = bonds.center[order]
    group_start = np.searchsorted(centers, centers, side="left")
    group_size = np.searchsorted(centers, centers, side="right") - group_start
    position = np.arange(len(order)) - group_start
    partners = group_size - 1 - position
    first = np.repeat(np.arange(len(order)), partners)
    offset = np.arange(len(first)) - np.repeat(np.cumsum(partners) - partners, partners)
    second = first + 1 + offset
    bond_ij, bond_ik = order[first], order[second]
    unit = geometry.pair_unit_vectors
    u_ij = unit[bonds.pair[bond_ij]] * bonds.sign[bond_ij, None]
    u_ik = unit[bonds.pair[bond_ik]] * bonds.sign[bond_ik, None]
    return Triplets(
        cutoff=float(cutoff),
        center=bonds.center[bond_ij],
        bond_ij=bond_ij,
        bond_ik=bond_ik,
        r_ij=distance[bond_ij],
        r_ik=distance[bond_ik],
        cos_theta=np.clip(np.einsum("td,td->t", u_ij, u_ik), -1.0, 1.0),
    )
