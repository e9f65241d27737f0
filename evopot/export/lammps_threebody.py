"""General three-body terms → ``pair_style threebody/table`` (``.3b`` file + table).

LAMMPS tabulates, on a grid of r_ij, r_ik (N points from rmin to rmax) and θ (2N bin
centres), six force constants and the energy of an angle; at run time it takes the
*nearest* grid point, with no interpolation, and applies the constants to the actual
bond vectors d₁ = x_j − x_i, d₂ = x_k − x_i:
    F_i = f11 d₁ + f12 d₂,  F_j = f21 d₁ + f22 (d₂ − d₁),  F_k = f31 d₂ + f32 (d₂ − d₁).
From W(r₁, r₂, c) = V3·fc(r₁)·fc(r₂) with c = cos θ, F = −∇W gives
    f22 = −W_c/(r₁r₂) = −f32,  f21 = −W_r₁/r₁ + W_c c/r₁² + f22,
    f31 = −W_r₂/r₂ + W_c c/r₂² + f22,  f11 = −f21,  f12 = −f31.
The error of the nearest-grid lookup shrinks only as 1/N, so the exporter measures it:
:func:`table_forces` repeats LAMMPS's lookup in NumPy on probe cells, and the measured
force error is written next to the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from evopot.data.dataset import unlabelled
from evopot.data.geometry import build_geometry
from evopot.errors import EvopotError
from evopot.model.potential import Potential
from evopot.model.terms import THREEBODY


@dataclass(frozen=True)
class AngleGrid:
    """The table grid: N distances from ``rmin`` to ``rmax`` (Å), 2N angle bins."""

    rmin: float
    rmax: float
    n: int

    @property
    def dr(self) -> float:
        return (self.rmax - self.rmin) / (self.n - 1)

    @property
    def dtheta(self) -> float:
        return 180.0 / (2 * self.n)

    def rows(self, symmetric: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(r_ij, r_ik, θ in degrees) of every table row in LAMMPS's order: r_ij
        slowest, θ fastest; r_ik ≥ r_ij only for a symmetric entry."""
        r = self.rmin + self.dr * np.arange(self.n)
        theta = (np.arange(2 * self.n) + 0.5) * self.dtheta
        i, j = np.triu_indices(self.n) if symmetric else np.indices((self.n, self.n)).reshape(2, -1)
        return np.repeat(r[i], 2 * self.n), np.repeat(r[j], 2 * self.n), np.tile(theta, len(i))

    def nearest(self, r1, r2, theta):
        """The grid point LAMMPS looks up (r₁ ≤ r₂), mask of angles inside the grid."""
        inside = (r1 >= self.rmin - 0.5 * self.dr) & (r2 <= self.rmax + 0.5 * self.dr)
        n1 = np.floor((r1 - self.rmin + 0.5 * self.dr - 1e-8) / self.dr).clip(0, self.n - 1)
        n2 = np.floor((r2 - self.rmin + 0.5 * self.dr - 1e-8) / self.dr).clip(0, self.n - 1)
        nt = np.floor((theta - 1e-8) / self.dtheta).clip(0, 2 * self.n - 1)
        return self.rmin + n1 * self.dr, self.rmin + n2 * self.dr, (nt + 0.5) * self.dtheta, inside


def force_constants(potential: Potential, pattern: tuple[str, str, str], r1, r2, theta) -> tuple[np.ndarray, ...]:
    """(f11, f12, f21, f22, f31, f32, energy) of the three-body terms acting on angles of
    species ``pattern`` (centre first) at r₁, r₂ (Å) and θ (degrees)."""
    c = np.cos(np.radians(theta))
    W = W1 = W2 = Wc = np.zeros_like(r1)
    for term in potential.terms:
        if term.kind == THREEBODY.name and THREEBODY.applies(term, pattern):
            cutoff = potential.cutoff_of(term)
            fc1, dfc1 = cutoff.value_and_derivative(r1)
            fc2, dfc2 = cutoff.value_and_derivative(r2)
            w, w1, w2, wc = THREEBODY.angle_energy_and_slopes(term, r1, r2, c, (fc1, dfc1, fc2, dfc2))
            W, W1, W2, Wc = W + w, W1 + w1, W2 + w2, Wc + wc
    f22 = -Wc / (r1 * r2)
    f21 = -W1 / r1 + Wc * c / r1**2 + f22
    f31 = -W2 / r2 + Wc * c / r2**2 + f22
    return -f21, -f31, f21, f22, f31, -f22, W


def threebody_radius(potential: Potential) -> float:
    return max(potential.cutoff_of(t).radius for t in potential.terms if t.kind == "threebody")


def write_threebody_table(potential: Potential, folder: Path, grid: AngleGrid, header: list[str]) -> list[str]:
    """Write ``evopot.3b`` and ``evopot_3b.table``; return the file names."""
    cut = threebody_radius(potential)
    entries = [f"# {line}" for line in header]
    entries.append("# element1(centre) element2 element3 cut table-file keyword style N")
    table = [f"# {line}" for line in header]
    for pattern in product(potential.species, repeat=3):
        keyword = "EVOPOT_" + "_".join(pattern)
        symmetric = pattern[1] == pattern[2]
        r1, r2, theta = grid.rows(symmetric)
        values = force_constants(potential, pattern, r1, r2, theta)
        if not all(np.all(np.isfinite(v)) for v in values):
            raise EvopotError(
                f"the three-body term is not finite on the table grid of {keyword} (from {grid.rmin:.4g} Å); "
                f"choose a larger --inner"
            )
        entries.append(f"{' '.join(pattern)} {cut:.12g} evopot_3b.table {keyword} linear {grid.n}")
        table += ["", keyword, f"N {grid.n} rmin {grid.rmin:.12g} rmax {grid.rmax:.12g}", ""]
        columns = np.column_stack([r1, r2, theta, *values])
        table += [f"{k + 1} " + " ".join(f"{x:.10e}" for x in row) for k, row in enumerate(columns)]
    (folder / "evopot.3b").write_text("\n".join(entries) + "\n")
    (folder / "evopot_3b.table").write_text("\n".join(table) + "\n")
    return ["evopot.3b", "evopot_3b.table"]


def table_forces(potential: Potential, grid: AngleGrid, atoms) -> tuple[np.ndarray, np.ndarray]:
    """Three-body forces on ``atoms`` (eV/Å, ``(n_atoms, 3)``) as LAMMPS computes them from
    the table (nearest grid point), and exactly (evopot); for measuring the table error."""
    geometry = build_geometry(unlabelled([atoms]), threebody_radius(potential), potential.species)
    t, bonds = geometry.triplets(threebody_radius(potential)), geometry.bonds
    d1 = geometry.pair_vectors[bonds.pair[t.bond_ij]] * bonds.sign[t.bond_ij, None]
    d2 = geometry.pair_vectors[bonds.pair[t.bond_ik]] * bonds.sign[t.bond_ik, None]
    names = np.array(geometry.species)
    patterns = np.stack(
        [
            names[geometry.atom_species[t.center]],
            names[geometry.atom_species[bonds.neighbor[t.bond_ij]]],
            names[geometry.atom_species[bonds.neighbor[t.bond_ik]]],
        ],
        axis=1,
    )
    theta = np.degrees(np.arccos(np.clip(t.cos_theta, -1, 1)))
    swapped = t.r_ij > t.r_ik
    short, long = np.minimum(t.r_ij, t.r_ik), np.maximum(t.r_ij, t.r_ik)
    g1, g2, gt, inside = grid.nearest(short, long, theta)
    table = np.zeros((len(t), 6))
    exact = np.zeros((len(t), 6))
    for pattern in {tuple(p) for p in patterns}:
        rows = np.all(patterns == pattern, axis=1)
        table[rows] = np.column_stack(force_constants(potential, pattern, g1[rows], g2[rows], gt[rows])[:6])
        exact[rows] = np.column_stack(force_constants(potential, pattern, t.r_ij[rows], t.r_ik[rows], theta[rows])[:6])
    # LAMMPS looks up (short, long) and swaps back: f11↔f12, f21↔f31, f22 → −f32, f32 → −f22
    table[swapped] = table[swapped][:, [1, 0, 4, 5, 2, 3]] * np.array([1, 1, 1, -1, 1, -1])
    table[~inside] = 0.0
    return _apply(table, d1, d2, t, bonds, len(atoms)), _apply(exact, d1, d2, t, bonds, len(atoms))


def _apply(constants, d1, d2, t, bonds, n_atoms) -> np.ndarray:
    f11, f12, f21, f22, f31, f32 = constants.T
    fi = f11[:, None] * d1 + f12[:, None] * d2
    fj = f21[:, None] * d1 + f22[:, None] * (d2 - d1)
    fk = f31[:, None] * d2 + f32[:, None] * (d2 - d1)
    forces = np.zeros((n_atoms, 3))
    np.add.at(forces, t.center, fi)
    np.add.at(forces, bonds.neighbor[t.bond_ij], fj)
    np.add.at(forces, bonds.neighbor[t.bond_ik], fk)
    return forces
