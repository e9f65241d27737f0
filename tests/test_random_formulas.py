"""Random formulas of the shipped search spaces' grammars, built and fitted exactly as
the search builds and fits them, agree in every evaluation path: the NumPy evaluator
with symbolic forces, torch autograd, the generated MD kernel and (pair formulas) the
LAMMPS table LAMMPS runs. Constant subexpressions such as exp(-1) or pi, which GP
trees make all the time, once crashed the kernel."""

from __future__ import annotations

import functools
import random

import numpy as np
import pytest
from conftest import SI_TEST, periodic_cell, unlabelled
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from evopot.data.dataset import read_frames
from evopot.data.geometry import build_geometry
from evopot.md.forcefield import ForceField
from evopot.model.cutoff import Cutoff
from evopot.model.evaluate import evaluate, evaluate_atoms
from evopot.model.evaluate_torch import evaluate_torch
from evopot.search.engines.gp import GPEngine, GPSettings
from evopot.search.engines.space import load_search_space, resolve_search_space_path
from evopot.search.fitting import FitProblem
from evopot.search.scoring import Scorer

CUTOFF = Cutoff(4.5, 3.5)


@functools.cache
def search_parts(space_name: str):
    """The engine (its primitive sets and candidate building) and scorer a search on
    four Si test frames would use."""
    frames = read_frames(SI_TEST).subset(range(4))
    problem = FitProblem.from_frames(frames, CUTOFF, ("Si",))
    scorer = Scorer(problem, max_evaluations=20)
    space = load_search_space(resolve_search_space_path(space_name))
    engine = GPEngine(space, GPSettings(population=4, generations=0), scorer.score_candidate, radius=CUTOFF.radius)
    return engine, scorer, problem


def random_potential(space_name: str, seed: int):
    """A random individual of the space, fitted; None when it cannot be fitted (as the
    search would drop it)."""
    engine, scorer, problem = search_parts(space_name)
    random.seed(seed)  # DEAP's generators draw from the module's random
    try:
        candidate = engine.candidate(engine.new_individual())
    except Exception:  # the engine scores such trees as unfit
        return None
    scored = scorer.score_candidate(candidate)
    return scored.to_potential(problem) if scored.fit.ok else None


def kernel_prediction(potential, atoms):
    forcefield = ForceField(potential, "cpu")
    energy, forces, _ = forcefield(*forcefield.tensors(atoms))
    return float(energy), forces.numpy()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(space=st.sampled_from(["pair", "stillinger_weber", "eam", "tersoff"]), seed=st.integers(0, 2**31))
def test_random_search_space_formulas_agree_in_evaluator_autograd_and_kernel(space, seed):
    potential = random_potential(space, seed)
    assume(potential is not None)
    atoms = periodic_cell(seed=seed % 97)
    geometry = build_geometry(unlabelled([atoms]), potential.reach, potential.species)
    reference = evaluate(potential, geometry)
    assume(np.isfinite(reference.energies).all() and np.isfinite(reference.forces).all())
    assume(np.abs(reference.forces).max() < 1e6)
    autograd = evaluate_torch(potential, geometry)
    energy, forces = kernel_prediction(potential, atoms)
    # relative 1e-6: a formula steep near the cutoff (exp(b/(r - rc)) with b < 0 grows
    # without bound there) loses digits in each path's own rounding; mistakes are O(1)
    scale = max(1.0, np.abs(reference.forces).max())
    formula = potential.formula()
    assert abs(float(autograd.energies[0]) - reference.energies[0]) <= 1e-6 * max(1.0, abs(energy)), formula
    assert abs(energy - reference.energies[0]) <= 1e-6 * max(1.0, abs(energy)), formula
    assert np.abs(autograd.forces - reference.forces).max() <= 1e-6 * scale, formula
    assert np.abs(forces - reference.forces).max() <= 1e-6 * scale, formula


@pytest.mark.parametrize("seed", range(6))
def test_random_pair_formulas_run_in_lammps_as_tables(tmp_path, seed):
    from evopot.export.lammps import export_lammps
    from evopot.export.lammps_run import run_lammps

    potential = next(p for s in range(seed * 1000, seed * 1000 + 200) if (p := random_potential("pair", s)))
    atoms = periodic_cell(seed=seed)
    shortest = build_geometry(unlabelled([atoms]), potential.reach, potential.species).pair_distances.min()
    export_lammps(potential, tmp_path, inner=0.95 * shortest, points=20000)
    result = run_lammps(atoms, tmp_path, potential.species)
    energy, forces = evaluate_atoms(potential, atoms)
    scale = max(1.0, np.abs(forces).max())
    assert np.abs(result.forces - forces).max() <= 1e-4 * scale, potential.formula()
    assert abs(result.energy - energy) / len(atoms) <= 1e-5 * max(1.0, abs(energy) / len(atoms)), potential.formula()
