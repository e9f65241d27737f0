"""Reference data from known potentials, for rediscovery tests and benchmarks.

Random dense periodic cells (random sequential placement with a minimum distance,
cell edges and angles varied) labelled by any ASE calculator: only the energies and
forces go to evopot, never the formula.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from evopot.data.dataset import Frames, labelled


def random_dense_cells(
    n_frames: int,
    n_atoms: int,
    number_density: float,
    min_distance: float,
    seed: int,
    symbol: str = "Ar",
    triclinic: bool = True,
) -> list[Atoms]:
    """``n_frames`` periodic cells of ``n_atoms`` atoms at about ``number_density``
    (atoms/Å³), no two atoms closer than ``min_distance`` (Å). Densities vary by ±20 %
    between frames so that the data covers a range of distances."""
    rng = np.random.default_rng(seed)
    frames = []
    while len(frames) < n_frames:
        density = number_density * rng.uniform(0.8, 1.2)
        edge = (n_atoms / density) ** (1 / 3)
        cell = np.eye(3) * edge
        if triclinic:
            cell = cell + rng.uniform(-0.1, 0.1, (3, 3)) * edge * (1 - np.eye(3))
        atoms = Atoms(symbol, cell=cell, pbc=True)
        placed = []
        for _ in range(200 * n_atoms):
            trial = rng.uniform(0, 1, 3) @ cell
            if placed:
                probe = Atoms(symbol * (len(placed) + 1), positions=placed + [trial], cell=cell, pbc=True)
                if probe.get_distances(len(placed), list(range(len(placed))), mic=True).min() < min_distance:
                    continue
            placed.append(trial)
            if len(placed) == n_atoms:
                break
        if len(placed) == n_atoms:
            atoms = Atoms(symbol * n_atoms, positions=placed, cell=cell, pbc=True)
            frames.append(atoms)
    return frames


def probe_cell(species, shortest: float | None = None, n_atoms: int = 64, seed: int = 0) -> Atoms:
    """A random periodic triclinic cell of ``species`` (chosen at random per atom), no two
    atoms closer than ``shortest`` (Å; 2 Å if None), as dense as random placement readily
    reaches (spheres of that diameter filling 30 % of space): for checking exports."""
    shortest = float(shortest or 2.0)
    atoms = random_dense_cells(1, n_atoms, 0.3 / (np.pi / 6 * shortest**3), shortest, seed)[0]
    atoms.set_chemical_symbols(np.random.default_rng(seed).choice(list(species), len(atoms)))
    return atoms


def label(images: list[Atoms], calculator, config_type: str = "synthetic") -> Frames:
    """Energies, forces and (cells periodic in all three directions, where the
    calculator has them) stresses of ``images`` from ``calculator``, attached the way
    ASE stores DFT results, as :class:`~evopot.data.dataset.Frames`."""
    done = []
    for atoms in images:
        atoms = atoms.copy()
        atoms.calc = calculator
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        stress = None
        if atoms.pbc.all() and "stress" in calculator.implemented_properties:
            stress = atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
        atoms.info["config_type"] = config_type
        done.append(atoms)
    return labelled(done, f"{type(calculator).__name__} reference")
