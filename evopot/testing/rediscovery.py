"""Rediscovery problems: can the search recover a known potential from its forces?

Each problem labels random dense periodic cells with an ASE calculator, writes them as
extxyz, writes a search config whose cutoff matches the calculator's smoothing, runs
``evopot.search`` and checks the simplest accurate front member against the true
formula with :func:`evopot.testing.equivalence.equivalent`. Used by the tests (one or two
seeds) and by ``benchmarks/rediscovery.py`` (ten seeds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np
import sympy
import yaml

from evopot.data.sampling import label, random_dense_cells
from evopot.model.terms import term_kind
from evopot.testing.equivalence import equivalent

R, RHO = sympy.symbols("r rho")


@dataclass(frozen=True)
class Problem:
    """A known potential: ``truth`` maps term kind to its true expression; ``frames(seed)``
    makes the labelled reference data."""

    name: str
    truth: dict[str, sympy.Expr]
    frames: Callable
    cutoff: dict
    search_space: str = "pair"
    engine: dict = field(
        default_factory=lambda: {"population": 200, "generations": 40, "target_error": 1e-7, "patience": 10}
    )


def dense_cells(
    calculator: Callable, number_density: float, min_distance: float, n_frames: int = 12, n_atoms: int = 32
):
    """Random dense periodic cells labelled by ``calculator()``."""

    def make(seed):
        return label(
            random_dense_cells(n_frames, n_atoms, number_density, min_distance, seed=1000 + seed), calculator()
        )

    return make


def lennard_jones(epsilon: float = 0.0104, sigma: float = 3.4) -> Problem:
    from ase.calculators.lj import LennardJones

    rc, ro = 2.5 * sigma, 2.0 * sigma
    return Problem(
        "lennard-jones",
        {"pair": 4 * epsilon * ((sigma / R) ** 12 - (sigma / R) ** 6)},
        dense_cells(lambda: LennardJones(epsilon=epsilon, sigma=sigma, rc=rc, ro=ro, smooth=True), 0.021, 0.9 * sigma),
        {"radius": rc, "onset": ro, "function": "xplor"},
    )


def morse(epsilon: float = 0.3, rho0: float = 6.0, r0: float = 2.8) -> Problem:
    from ase.calculators.morse import MorsePotential

    rcut1, rcut2 = 1.9, 2.7
    return Problem(
        "morse",
        {"pair": epsilon * (sympy.exp(-2 * rho0 * (R / r0 - 1)) - 2 * sympy.exp(-rho0 * (R / r0 - 1)))},
        dense_cells(
            lambda: MorsePotential(epsilon=epsilon, rho0=rho0, r0=r0, rcut1=rcut1, rcut2=rcut2), 0.04, 0.8 * r0
        ),
        {"radius": rcut2 * r0, "onset": rcut1 * r0, "function": "quintic"},
    )


def silicon_snapshots(seed: int):
    """Stillinger–Weber silicon from matscipy: rattled and strained 64-atom diamond
    cells and liquid-like snapshots of a short 3000 K Langevin run."""
    from ase import units
    from ase.build import bulk
    from ase.md import velocitydistribution
    from ase.md.langevin import Langevin
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms import StillingerWeber
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import Stillinger_Weber_PRB_31_5262_Si

    def calculator():
        return Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))

    rng = np.random.default_rng(2000 + seed)
    images = []
    for k in range(6):
        atoms = bulk("Si", "diamond", 5.431, cubic=True).repeat(2)
        strain = np.eye(3) + (rng.uniform(-0.04, 0.04, (3, 3)) if k >= 3 else 0)
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.rattle(0.15, seed=int(rng.integers(1 << 30)))
        images.append(atoms)
    hot = bulk("Si", "diamond", 5.431, cubic=True).repeat(2)
    hot.calc = calculator()
    # thermalize_momenta (ASE ≥ 3.29) replaces MaxwellBoltzmannDistribution
    thermalize = (
        getattr(velocitydistribution, "thermalize_momenta", None) or velocitydistribution.MaxwellBoltzmannDistribution
    )
    thermalize(hot, temperature_K=3000, rng=rng)
    dynamics = Langevin(hot, 1.0 * units.fs, temperature_K=3000, friction=0.02, rng=rng, fixcm=False)
    for _ in range(4):
        dynamics.run(60)
        images.append(hot.copy())
    return label(images, calculator())


def stillinger_weber() -> Problem:
    from evopot.testing.known import SW_SILICON as c

    radius = c["a"] * c["sig"]
    rij, rik, cos = sympy.symbols("rij rik costheta")
    pair = c["A"] * c["eps"] * (c["B"] * (c["sig"] / R) ** c["p"] - 1) * sympy.exp(c["sig"] / (R - radius))
    angle = (
        c["lam"]
        * c["eps"]
        * (cos - c["cos0"]) ** 2
        * sympy.exp(c["gam"] * c["sig"] / (rij - radius))
        * sympy.exp(c["gam"] * c["sig"] / (rik - radius))
    )
    return Problem(
        "stillinger-weber",
        {"pair": pair, "threebody": angle},
        silicon_snapshots,
        {"radius": radius, "onset": 0.0, "function": "none"},
        search_space="stillinger_weber",
        engine={"population": 200, "generations": 120, "target_error": 1e-6, "restart": 20},
    )


def copper_snapshots(seed: int):
    """Sutton–Chen copper (evopot's own formula of the published form, checked against
    finite differences in the tests): rattled and strained fcc cells of 32 and 108
    atoms, from 8 % compression to 8 % expansion."""
    from ase.build import bulk

    from evopot.md.calculator import EvopotCalculator
    from evopot.testing.known import sutton_chen as published

    rng = np.random.default_rng(3000 + seed)
    images = []
    for k in range(10):
        atoms = bulk("Cu", "fcc", 3.61 * rng.uniform(0.92, 1.08), cubic=True).repeat(2 if k % 2 else 3)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + rng.uniform(-0.03, 0.03, (3, 3))), scale_atoms=True)
        atoms.rattle(0.12, seed=int(rng.integers(1 << 30)))
        images.append(atoms)
    return label(images, EvopotCalculator(published()))


def sutton_chen() -> Problem:
    from evopot.testing.known import SUTTON_CHEN_COPPER as c

    return Problem(
        "sutton-chen",
        {
            "pair": c["eps"] * (c["a"] / R) ** c["n"],
            "embedding": (-c["eps"] * c["c"] * sympy.sqrt(RHO), (c["a"] / R) ** c["m"]),
        },
        copper_snapshots,
        {"radius": 7.0, "onset": 6.0, "function": "quintic"},
        search_space="eam",
        engine={"population": 100, "generations": 120, "target_error": 1e-7, "patience": 10},
    )


PROBLEMS = {
    "lennard-jones": lennard_jones,
    "morse": morse,
    "stillinger-weber": stillinger_weber,
    "sutton-chen": sutton_chen,
}


@dataclass
class Outcome:
    problem: str
    seed: int
    success: bool
    wall_time: float
    found: str
    generations: int


def write_problem(problem: Problem, folder: Path, seed: int, engine: dict | None = None) -> Path:
    """Write the labelled data and a search config for ``problem`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data.extxyz"
    if not data.exists():
        ase.io.write(data, problem.frames(0).atoms, format="extxyz")
    config = {
        "seed": seed,
        "output": f"run_seed{seed}",
        "data": {"train": "data.extxyz", "split": {"by": "fraction", "validation": 0.2}},
        "cutoff": problem.cutoff,
        "search_space": problem.search_space,
        "engine": {"name": "gp", **(engine or problem.engine)},
        "fitness": {"forces": 1.0, "energies": 0.1, "max_evaluations": 40},
    }
    path = folder / f"config_seed{seed}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def recovered(result, truth: dict, rtol: float = 1e-3):
    """The simplest front member whose terms are each equivalent to ``truth``'s, or None.
    ``truth["embedding"]`` is (F(ρ), f(r)): an embedding term is only defined up to
    f → s·f, F(ρ) → F(ρ/s), so f must be s times the true density for some s and F
    equivalent to the true F(ρ/s)."""
    for member in sorted(result.front, key=lambda m: m.complexity):
        found = {}
        for term in member.potential.terms:
            if term.kind == "embedding":
                found["embedding"] = (term.numeric(), term.numeric(term.density))
            else:
                found[term.kind] = found.get(term.kind, 0) + term.numeric()
        if set(found) == set(truth) and all(_same_term(k, found[k], truth[k], rtol) for k in truth):
            return member
    return None


def _same_term(kind: str, found, truth, rtol: float) -> bool:
    if kind != "embedding":
        return equivalent(found, truth, rtol, term_kind(kind).variables)
    (F, f), (F_true, f_true) = found, truth
    scale = sympy.nsimplify(0) + (f / f_true).subs(R, 2.5).evalf()
    if not scale.is_real or scale == 0:
        return False
    return equivalent(f, scale * f_true, rtol, ("r",)) and equivalent(F, F_true.subs(RHO, RHO / scale), rtol, ("rho",))


def run(problem: Problem, folder: Path, seed: int, engine: dict | None = None) -> Outcome:
    """Search ``problem`` with ``seed`` and report whether the true form came back."""
    from evopot.search.run import search

    config = write_problem(problem, Path(folder), seed, engine)
    start = time.perf_counter()
    result = search(config, overwrite=True, progress=False)
    wall = time.perf_counter() - start
    member = recovered(result, problem.truth)
    best = member or min(result.front, key=lambda m: m.search_loss)
    return Outcome(problem.name, seed, member is not None, wall, best.formula, result.generations)
