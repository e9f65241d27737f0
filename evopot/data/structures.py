"""The structures ``evopot data`` labels: rattled and strained crystals, crystals with
vacancies, surface slabs, and random disorder (atoms placed at random with a minimum
distance, at a density in a range, in a periodic cell with random edges and angles).

Frame ``k`` of a sampler depends only on the seed, the sampler's name and ``k``: a rerun,
or a config with more frames, makes the same structures again.
"""

from __future__ import annotations

import zlib

import numpy as np
from ase import Atoms
from ase.build import bulk, surface
from ase.geometry import cellpar_to_cell, find_mic

from evopot.config.generation import (
    CrystalSampler,
    RandomSampler,
    SurfaceSampler,
    VacancySampler,
    _Lattice,
    sampler_name,
)
from evopot.errors import EvopotError

#: placement attempts per atom before a random cell is given up as too dense
ATTEMPTS = 2000


def generator(seed: int, sampler, k: int) -> np.random.Generator:
    """The random numbers of frame ``k`` of ``sampler``."""
    return np.random.default_rng([seed, zlib.crc32(sampler_name(sampler).encode()), k])


def crystal(sampler: _Lattice, species: list[str]) -> Atoms:
    """The sampler's perfect crystal: ASE's ``bulk`` (its cubic cell when there is one),
    repeated."""
    element = sampler.element or species[0]
    try:
        try:
            cell = bulk(element, sampler.structure, a=sampler.a, cubic=True)
        except (ValueError, RuntimeError):
            cell = bulk(element, sampler.structure, a=sampler.a, orthorhombic=True)
    except (ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
        raise EvopotError(
            f"sampler {sampler_name(sampler)}: ASE cannot build {sampler.structure} {element} "
            f"({exc}); give structure (sc, fcc, bcc, hcp, diamond, …) and a"
        ) from None
    return cell.repeat(sampler.repeat)


def _rattled(atoms: Atoms, sigma: float, rng: np.random.Generator) -> Atoms:
    atoms.positions = atoms.positions + rng.normal(0.0, sigma, atoms.positions.shape)
    atoms.wrap()
    return atoms


def strained_crystal(sampler: CrystalSampler, species: list[str], rng: np.random.Generator) -> Atoms:
    atoms = crystal(sampler, species)
    strain = np.diag(rng.uniform(-sampler.strain, sampler.strain, 3))
    shear = np.triu(rng.uniform(-sampler.strain / 2, sampler.strain / 2, (3, 3)), 1)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain + shear + shear.T), scale_atoms=True)
    return _rattled(atoms, sampler.rattle, rng)


def vacancy_crystal(sampler: VacancySampler, species: list[str], rng: np.random.Generator) -> Atoms:
    atoms = crystal(sampler, species)
    if sampler.vacancies >= len(atoms):
        raise EvopotError(
            f"sampler {sampler_name(sampler)}: {sampler.vacancies} vacancies in a crystal of {len(atoms)} atoms "
            f"leave none; lower vacancies or raise repeat"
        )
    del atoms[rng.choice(len(atoms), sampler.vacancies, replace=False).tolist()]
    return _rattled(atoms, sampler.rattle, rng)


def slab(sampler: SurfaceSampler, species: list[str], rng: np.random.Generator) -> Atoms:
    element = sampler.element or species[0]
    lattice = bulk(element, sampler.structure, a=sampler.a)
    try:
        atoms = surface(lattice, sampler.miller, sampler.layers, vacuum=sampler.vacuum, periodic=True)
    except (ValueError, ZeroDivisionError, np.linalg.LinAlgError) as exc:
        raise EvopotError(
            f"sampler {sampler_name(sampler)}: cannot cut the {list(sampler.miller)} surface ({exc})"
        ) from None
    atoms = atoms.repeat(sampler.repeat)
    atoms.pbc = True  # a slab in a periodic box with vacuum, as plane-wave DFT sees it
    return _rattled(atoms, sampler.rattle, rng)


def _counts(composition: dict[str, float], n: int) -> dict[str, int]:
    """Whole numbers of atoms per species closest to ``composition`` (largest remainders)."""
    total = sum(composition.values())
    exact = {s: n * share / total for s, share in composition.items()}
    counts = {s: int(np.floor(x)) for s, x in exact.items()}
    for s in sorted(exact, key=lambda s: counts[s] - exact[s])[: n - sum(counts.values())]:
        counts[s] += 1
    return counts


def random_cell(sampler: RandomSampler, species: list[str], rng: np.random.Generator) -> Atoms:
    """Atoms at random in the smallest periodic box that holds them at a density drawn from
    the sampler's range, its edges (ratio ≤ aspect) and angles random, no two atoms
    closer than min_distance (random sequential placement)."""
    n = int(rng.integers(sampler.atoms[0], sampler.atoms[1] + 1))
    density = rng.uniform(*sampler.density)
    ratios = rng.uniform(1.0, sampler.aspect, 3)
    while True:
        angles = rng.uniform(*sampler.angles, 3)
        unit = cellpar_to_cell([*ratios, *angles])
        if abs(np.linalg.det(unit)) > 0.2 * np.prod(ratios):  # not a nearly flat cell
            break
    cell = unit * (n / density / abs(np.linalg.det(unit))) ** (1 / 3)
    composition = sampler.composition or dict.fromkeys(species, 1.0)
    symbols = [s for s, c in _counts(composition, n).items() for _ in range(c)]
    rng.shuffle(symbols)
    placed = np.zeros((0, 3))
    for _ in range(ATTEMPTS * n):
        trial = rng.uniform(0, 1, 3) @ cell
        if len(placed):
            _, distances = find_mic(placed - trial, cell, pbc=True)
            if distances.min() < sampler.min_distance:
                continue
        placed = np.vstack([placed, trial])
        if len(placed) == n:
            return Atoms(symbols, positions=placed, cell=cell, pbc=True)
    raise EvopotError(
        f"sampler {sampler_name(sampler)}: could not place {n} atoms {sampler.min_distance} Å apart at "
        f"{density:.4f} atoms/Å³ (placed {len(placed)}); lower density or min_distance"
    )


SAMPLERS = {"crystal": strained_crystal, "vacancy": vacancy_crystal, "surface": slab, "random": random_cell}


def sample(sampler, species: list[str], seed: int, k: int) -> Atoms:
    """Frame ``k`` of ``sampler`` (any kind of this module), its config_type set."""
    atoms = SAMPLERS[sampler.kind](sampler, species, generator(seed, sampler, k))
    atoms.info["config_type"] = sampler_name(sampler)
    return atoms
