"""Shared fixtures: small cells, the bundled Si data, random pair potentials."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from evopot.data.dataset import unlabelled  # noqa: F401  (tests import it from here)
from evopot.model.cutoff import Cutoff
from evopot.model.formula import parse_formula
from evopot.model.potential import Potential, Term

# workers: auto means one process in the tests (set before anything reads it); the tests
# of parallel search name their workers
os.environ.setdefault("EVOPOT_WORKERS", "1")

ROOT = Path(__file__).resolve().parents[1]
SI_TRAIN = ROOT / "examples" / "data" / "Si" / "training.extxyz"
SI_TEST = ROOT / "examples" / "data" / "Si" / "test.extxyz"


def periodic_cell(seed: int = 0, species=("Si",), triclinic: bool = True) -> Atoms:
    """Rattled 64-atom diamond cell, sheared (triclinic) unless ``triclinic`` is False,
    species assigned at random."""
    return _disturbed(bulk("Si", "diamond", 5.43, cubic=True).repeat(2), seed, species, triclinic, 0.05, 0.15)


def _disturbed(atoms: Atoms, seed: int, species, triclinic: bool, strain: float, rattle: float) -> Atoms:
    """``atoms`` strained by up to ``strain`` (shear too when ``triclinic``), rattled by
    ``rattle`` Å, species assigned at random, all from ``seed``."""
    rng = np.random.default_rng(seed)
    deformation = rng.uniform(-strain, strain, (3, 3))
    atoms.set_cell(
        atoms.cell.array @ (np.eye(3) + (deformation if triclinic else np.diag(np.diag(deformation)))), scale_atoms=True
    )
    atoms.rattle(rattle, seed=seed)
    atoms.set_chemical_symbols(list(rng.choice(species, len(atoms))))
    return atoms


def cluster(seed: int = 0, species=("Si",)) -> Atoms:
    """Non-periodic 20-atom cluster with no two atoms closer than 2 Å."""
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < 20:
        p = rng.uniform(0, 7, 3)
        if all(np.linalg.norm(p - q) > 2.0 for q in points):
            points.append(p)
    return Atoms(list(rng.choice(species, 20)), positions=points, pbc=False)


PAIR_FORMULAS = [
    ("A*exp(-b*r) - C/r**6", {"A": 300.0, "b": 2.2, "C": 8.0}),
    ("A*(exp(-2*b*(r - d)) - 2*exp(-b*(r - d)))", {"A": 0.4, "b": 1.3, "d": 2.4}),
    ("A/r**p + B*tanh(r) + C*r**2", {"A": 40.0, "p": 3.7, "B": -0.3, "C": 0.01}),
]


def pair_potential(formula: str, constants: dict, species=("Si",), cutoff=Cutoff(5.0, 4.0)) -> Potential:
    expr = parse_formula(formula, ["r", *constants])
    return Potential(
        (Term("pair", expr, constants),), cutoff, tuple(species), {s: -0.5 * (k + 1) for k, s in enumerate(species)}
    )


@pytest.fixture
def si_frames():
    from evopot.data.dataset import read_frames

    return read_frames(SI_TRAIN)


def finite_difference_forces(energy, atoms: Atoms, h: float = 1e-5) -> np.ndarray:
    """−∂E/∂positions by central differences of ``energy(atoms)``, shape (n_atoms, 3)."""
    numeric = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for d in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, d] += h
            minus.positions[i, d] -= h
            numeric[i, d] = -(energy(plus) - energy(minus)) / (2 * h)
    return numeric


def copper_cell(seed=0, species=("Cu",), triclinic=True) -> Atoms:
    """Rattled, strained 108-atom fcc copper cell, species assigned at random."""
    return _disturbed(bulk("Cu", "fcc", 3.61, cubic=True).repeat(3), seed, species, triclinic, 0.04, 0.1)


def _term(kind, formula, constants, species=None):
    names = ["r", "rij", "rik", "costheta", *constants]
    return Term(kind, parse_formula(formula, names), constants, species)


#: Species-specific pair terms on two species, with reference energies.
TWO_SPECIES_PAIRS = Potential(
    (
        _term("pair", "A*exp(-2*(r - 2.3)) - C/r**6", {"A": 0.3, "C": 20.0}, species=("Si", "Si")),
        _term("pair", "A*exp(-1.5*(r - 2.5))", {"A": 0.5}, species=("Si", "Ge")),
        _term("pair", "A/r**4", {"A": 8.0}, species=("Ge", "Ge")),
    ),
    Cutoff(5.0, 4.0),
    ("Ge", "Si"),
    {"Si": -3.1, "Ge": -2.7},
)


#: A pair term and a general (not separable, not symmetric) three-body term.
GENERAL_THREEBODY = Potential(
    (
        _term("pair", "A*exp(-r)", {"A": 3.0}),
        _term("threebody", "B*exp(-rij - rik)*(costheta - c)**2 + 0.1*rij*costheta", {"B": 5.0, "c": -0.3}),
    ),
    Cutoff(3.8, 3.0),
    ("Si",),
    {},
    {"shortest_distance": 2.0},
)


class Hang(Exception):
    """A call ran past its time limit (see :func:`within`)."""


class within:
    """``with within(seconds):`` raises :class:`Hang` inside the block once ``seconds``
    pass (SIGALRM), so a hang fails one test instead of stopping the suite."""

    def __init__(self, seconds: int, what: str = "the call"):
        self.seconds, self.what = seconds, what

    def _expired(self, *_):
        raise Hang(f"{self.what} ran past {self.seconds} s")

    def __enter__(self):
        import signal

        self.previous = signal.signal(signal.SIGALRM, self._expired)
        signal.alarm(self.seconds)
        return self

    def __exit__(self, *exc):
        import signal

        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)


def search_interrupted_at(monkeypatch, config, generation: int) -> None:
    """``evopot.search(config)`` (overwriting) interrupted by Ctrl-C as it starts
    ``generation``: its checkpoint holds the generations before."""
    import evopot
    from evopot.search.engines.gp import GPEngine

    real_step = GPEngine.step

    def step_then_interrupt(self):
        if self.generation == generation:
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(GPEngine, "step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        evopot.search(config, overwrite=True, progress=False)
    monkeypatch.setattr(GPEngine, "step", real_step)
