"""Pair + embedding terms → an ``eam/alloy`` setfl file.

setfl tabulates, per element, the embedding energy F(ρ) on ρ = 0, dρ, …, and the
density contribution ρ(r) on r = 0, dr, …; then, per element pair (i ≥ j), r·φ(r)
(eV·Å). evopot's embedding term gives F (with the term's species as centre atoms) and
its density f(r)·fc(r) (the same for every neighbour species); the pair terms give φ.
Below the inner limit, where formulas may diverge, the density holds its value at the
inner limit and φ continues as a repulsive wall, φ(i) + A·(exp(−(r − i)/λ) − 1) with
λ = 0.2 Å, matched to φ and φ' at the inner limit i (and pushing atoms apart with at
least 1 eV/Å): no atom should come that close (see ``inner``), but one that does is
pushed back instead of feeling the constant value the tables once held there. LAMMPS
extrapolates F linearly beyond the last tabulated ρ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.data import atomic_masses, atomic_numbers

from evopot.errors import EvopotError
from evopot.model.evaluate import pair_curve
from evopot.model.potential import Potential
from evopot.model.terms import EMBEDDING


def setfl_tables(potential: Potential, inner: float, points: int, rho_max: float | None = None):
    """(r grid, ρ grid, F per species, ρ(r) per species, φ(r) per species pair)."""
    embedding = [t for t in potential.terms if t.kind == "embedding"]
    if len(embedding) != 1:
        raise EvopotError(
            f"eam/alloy holds one embedding function per element with one density; this potential has "
            f"{len(embedding)} embedding terms"
        )
    term = embedding[0]
    radius = potential.reach
    r = np.linspace(0.0, radius, points)
    clamped = np.maximum(r, inner)
    density, _ = EMBEDDING.density_curve(term, potential.cutoff_of(term), clamped)
    if not np.all(np.isfinite(density)) or np.any(density < 0):
        raise EvopotError(
            "the density f(r)·fc(r) is negative or not finite between the inner limit and the cutoff; setfl "
            "tabulates ρ ≥ 0 only (choose a larger --inner, or export another member)"
        )
    if rho_max is None:
        rho_max = _densest_packing_density(density, r, inner)
    rho = np.linspace(0.0, rho_max, points)
    F = {}
    for s in potential.species:
        value = (
            EMBEDDING.embedding_curve(term, rho)[0] if term.species is None or s in term.species else np.zeros_like(rho)
        )
        if not np.all(np.isfinite(value)):
            raise EvopotError(f"F(ρ) is not finite somewhere on [0, {rho_max:.4g}] for {s}")
        F[s] = value
    phi = {}
    for i, a in enumerate(potential.species):
        for b in potential.species[: i + 1]:
            energy, slope = pair_curve(potential, (a, b), clamped)
            if not np.all(np.isfinite(energy)):
                raise EvopotError(
                    f"pair {a}-{b}: energy not finite above the inner limit {inner:.4g} Å (option --inner)"
                )
            phi[(a, b)] = np.where(r < inner, repulsive_wall(r, inner, energy[0], slope[0]), energy)
    return r, rho, F, {s: density for s in potential.species}, phi


#: decay length (Å) of the wall below the inner limit, and its least repulsive force (eV/Å)
WALL_LENGTH = 0.2
WALL_FORCE = 1.0


def repulsive_wall(r: np.ndarray, inner: float, energy: float, slope: float) -> np.ndarray:
    """φ below the inner limit: ``energy`` + A·(exp(−(r − inner)/λ) − 1), equal to the
    pair energy at ``inner`` and, when that pushes atoms apart with at least
    WALL_FORCE, to its slope (eV/Å); rising steeply as r falls."""
    amplitude = WALL_LENGTH * max(-slope, WALL_FORCE)
    return energy + amplitude * np.expm1(-(r - inner) / WALL_LENGTH)


def _densest_packing_density(density: np.ndarray, r: np.ndarray, inner: float) -> float:
    """ρ of an fcc crystal with nearest-neighbour distance ``inner``: about the largest
    host density a simulation can meet without atoms closer than the inner limit."""
    n = int(np.ceil(r[-1] / inner * np.sqrt(2))) + 1
    grid = np.array(np.meshgrid(*[np.arange(-n, n + 1)] * 3)).reshape(3, -1).T
    sites = grid[grid.sum(axis=1) % 2 == 0] * inner / np.sqrt(2)  # fcc: integer points with even sum
    distances = np.linalg.norm(sites, axis=1)
    distances = distances[(distances > 0) & (distances < r[-1])]
    return max(float(np.interp(distances, r, density).sum()), 1e-6) * 1.2


def write_setfl(
    potential: Potential, path: Path, inner: float, points: int, header: list[str], rho_max: float | None = None
) -> float:
    """Write the setfl file; returns the largest tabulated ρ."""
    r, rho, F, density, phi = setfl_tables(potential, inner, points, rho_max)
    comments = ["; ".join(header[:2]), "; ".join(header[2:4]) or "evopot", "; ".join(header[4:]) or "evopot"]
    lines = [c.replace("\n", " ")[:1000] for c in comments]
    lines.append(f"{len(potential.species)} " + " ".join(potential.species))
    lines.append(f"{points} {rho[1] - rho[0]:.16e} {points} {r[1] - r[0]:.16e} {r[-1]:.16e}")
    for s in potential.species:
        number = atomic_numbers.get(s, 0)
        mass = float(atomic_masses[number]) if number else 1.0
        lines.append(f"{number} {mass:.6f} 0.0 none")
        lines += _column(F[s]) + _column(density[s])
    for i, a in enumerate(potential.species):
        for b in potential.species[: i + 1]:
            lines += _column(r * phi[(a, b)])
    path.write_text("\n".join(lines) + "\n")
    return float(rho[-1])


def _column(values: np.ndarray) -> list[str]:
    return [" ".join(f"{v:.16e}" for v in values[k : k + 5]) for k in range(0, len(values), 5)]
