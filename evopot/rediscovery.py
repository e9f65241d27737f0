"""Rediscovery problems: can the search recover a known potential from its forces?

Each problem labels random dense periodic cells with an ASE calculator, writes them as
extxyz, writes a search config whose cutoff matches the calculator's smoothing, runs
``evopot.search`` and checks the simplest accurate front member against the true
formula with :func:`evopot.equivalence.equivalent`. Used by the tests (one or two
seeds) and by ``benchmarks/rediscovery.py`` (ten seeds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import ase.io
import sympy
import yaml

from evopot.equivalence import equivalent
from evopot.synthetic import label, random_dense_cells

R = sympy.Symbol("r")


@dataclass(frozen=True)
class Problem:
    name: str
    truth: sympy.Expr
    calculator: Callable
    cutoff: dict
    number_density: float
    min_distance: float
    search_space: str = "pair"


def lennard_jones(epsilon: float = 0.0104, sigma: float = 3.4) -> Problem:
    from ase.calculators.lj import LennardJones

    rc, ro = 2.5 * sigma, 2.0 * sigma
    return Problem(
        "lennard-jones",
        4 * epsilon * ((sigma / R) ** 12 - (sigma / R) ** 6),
        lambda: LennardJones(epsilon=epsilon, sigma=sigma, rc=rc, ro=ro, smooth=True),
        {"radius": rc, "onset": ro, "function": "xplor"},
        number_density=0.021,
        min_distance=0.9 * sigma,
    )


def morse(epsilon: float = 0.3, rho0: float = 6.0, r0: float = 2.8) -> Problem:
    from ase.calculators.morse import MorsePotential

    rcut1, rcut2 = 1.9, 2.7
    return Problem(
        "morse",
        epsilon * (sympy.exp(-2 * rho0 * (R / r0 - 1)) - 2 * sympy.exp(-rho0 * (R / r0 - 1))),
        lambda: MorsePotential(epsilon=epsilon, rho0=rho0, r0=r0, rcut1=rcut1, rcut2=rcut2),
        {"radius": rcut2 * r0, "onset": rcut1 * r0, "function": "quintic"},
        number_density=0.04,
        min_distance=0.8 * r0,
    )


PROBLEMS = {"lennard-jones": lennard_jones, "morse": morse}


@dataclass
class Outcome:
    problem: str
    seed: int
    success: bool
    wall_time: float
    found: str
    generations: int


def write_problem(problem: Problem, folder: Path, seed: int, engine: dict, n_frames: int = 12, n_atoms: int = 32) -> Path:
    """Write the labelled data and a search config for ``problem`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.extxyz"
    if not data.exists():
        images = random_dense_cells(n_frames, n_atoms, problem.number_density, problem.min_distance, seed=1000 + seed)
        frames = label(images, problem.calculator())
        ase.io.write(data, frames.atoms, format="extxyz")
    config = {
        "seed": seed,
        "output": f"run_seed{seed}",
        "data": {"train": "data.extxyz", "split": {"by": "fraction", "validation": 0.2}},
        "cutoff": problem.cutoff,
        "search_space": problem.search_space,
        "engine": {"name": "gp", **engine},
        "fitness": {"forces": 1.0, "energies": 0.1, "max_evaluations": 40},
    }
    path = folder / f"config_seed{seed}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def recovered(result, truth: sympy.Expr, rtol: float = 1e-3):
    """The simplest front member equivalent to ``truth``, or None."""
    for member in sorted(result.front, key=lambda m: m.complexity):
        expr = sympy.Add(*[t.numeric() for t in member.potential.terms]).subs("r", R)
        if equivalent(expr, truth, rtol):
            return member
    return None


def run(problem: Problem, folder: Path, seed: int, engine: dict | None = None) -> Outcome:
    """Search ``problem`` with ``seed`` and report whether the true form came back."""
    from evopot.api import search

    engine = engine or {"population": 200, "generations": 40, "target_error": 1e-7}
    config = write_problem(problem, Path(folder), seed, engine)
    start = time.perf_counter()
    result = search(config, overwrite=True, progress=False)
    wall = time.perf_counter() - start
    member = recovered(result, problem.truth)
    best = member or min(result.front, key=lambda m: m.search_loss)
    return Outcome(problem.name, seed, member is not None, wall, best.formula, result.generations)
