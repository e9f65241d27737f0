"""Forces are exact gradients, and energies respect the symmetries of physics."""

import numpy as np
import pytest
from conftest import PAIR_FORMULAS, cluster, finite_difference_forces, pair_potential, periodic_cell, unlabelled
from scipy.spatial.transform import Rotation

from evopot.data.geometry import build_geometry
from evopot.model.cutoff import Cutoff
from evopot.model.evaluate import evaluate
from evopot.model.evaluate_torch import evaluate_torch
from evopot.model.formula import parse_formula
from evopot.model.potential import Potential, Term


def energy_of(potential, atoms):
    return evaluate(
        potential, build_geometry(unlabelled([atoms]), potential.cutoff.radius, potential.species)
    ).energies[0]


def forces_of(potential, atoms):
    return evaluate(potential, build_geometry(unlabelled([atoms]), potential.cutoff.radius, potential.species)).forces


STRUCTURES = {"periodic": periodic_cell, "cluster": cluster}


@pytest.mark.parametrize("formula,constants", PAIR_FORMULAS)
@pytest.mark.parametrize("kind", ["periodic", "cluster"])
@pytest.mark.parametrize("cutoff_kind", ["quintic", "xplor", "cosine"])
def test_forces_are_minus_the_finite_difference_gradient(formula, constants, kind, cutoff_kind):
    potential = pair_potential(formula, constants, cutoff=Cutoff(5.0, 3.5, cutoff_kind))
    atoms = STRUCTURES[kind](seed=3)
    forces = forces_of(potential, atoms)
    numeric = finite_difference_forces(lambda a: energy_of(potential, a), atoms)
    scale = np.abs(forces).max()
    assert scale > 1e-3
    assert np.abs(forces - numeric).max() <= 1e-6 * scale


@pytest.mark.parametrize("formula,constants", PAIR_FORMULAS)
@pytest.mark.parametrize("kind", ["periodic", "cluster"])
def test_symbolic_forces_agree_with_torch_autograd(formula, constants, kind):
    potential = pair_potential(formula, constants, species=("Si", "Ge"))
    frames = unlabelled([STRUCTURES[kind](seed=s, species=("Si", "Ge")) for s in range(3)])
    geometry = build_geometry(frames, 5.0, ("Ge", "Si"))
    symbolic, autograd = evaluate(potential, geometry), evaluate_torch(potential, geometry)
    np.testing.assert_allclose(symbolic.energies, autograd.energies, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(symbolic.forces, autograd.forces, rtol=1e-10, atol=1e-10)


def test_species_pair_terms_act_only_on_their_pairs():
    r = parse_formula("A/r**6", ["r", "A"])
    cutoff = Cutoff(5.0, 4.0)
    only_sige = Potential((Term("pair", r, {"A": 50.0}, ("Ge", "Si")),), cutoff, ("Ge", "Si"))
    all_pairs = Potential((Term("pair", r, {"A": 50.0}),), cutoff, ("Ge", "Si"))
    atoms = periodic_cell(seed=1, species=("Si", "Ge"))
    geometry = build_geometry(unlabelled([atoms]), 5.0, ("Ge", "Si"))
    mixed = geometry.pair_species[:, 0] != geometry.pair_species[:, 1]
    expected = (50.0 / geometry.pair_distances**6 * cutoff.value(geometry.pair_distances))[mixed].sum()
    assert evaluate(only_sige, geometry).energies[0] == pytest.approx(expected, rel=1e-12)
    assert evaluate(all_pairs, geometry).energies[0] > expected
    np.testing.assert_allclose(
        evaluate(only_sige, geometry).forces, evaluate_torch(only_sige, geometry).forces, atol=1e-10
    )


@pytest.mark.parametrize("kind", ["periodic", "cluster"])
def test_energy_is_invariant_under_rotation_translation_and_permutation(kind):
    potential = pair_potential(*PAIR_FORMULAS[0])
    atoms = STRUCTURES[kind](seed=5)
    energy, forces = energy_of(potential, atoms), forces_of(potential, atoms)
    rotation = Rotation.random(random_state=2).as_matrix()

    moved = atoms.copy()
    moved.positions = atoms.positions @ rotation.T + np.array([1.3, -0.7, 2.9])
    if atoms.pbc.any():
        moved.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    assert energy_of(potential, moved) == pytest.approx(energy, rel=1e-12)
    np.testing.assert_allclose(forces_of(potential, moved), forces @ rotation.T, atol=1e-10)

    order = np.random.default_rng(0).permutation(len(atoms))
    shuffled = atoms[order]
    assert energy_of(potential, shuffled) == pytest.approx(energy, rel=1e-12)
    np.testing.assert_allclose(forces_of(potential, shuffled), forces[order], atol=1e-10)


def test_forces_sum_to_zero_and_vanish_beyond_the_cutoff():
    potential = pair_potential(*PAIR_FORMULAS[1])
    forces = forces_of(potential, periodic_cell(seed=2))
    np.testing.assert_allclose(forces.sum(axis=0), 0, atol=1e-10)
    from ase import Atoms

    for distance, expect_zero in [(4.99, False), (5.0, True), (6.0, True)]:
        dimer = Atoms("Si2", positions=[[0, 0, 0], [distance, 0, 0]])
        f = forces_of(potential, dimer)
        assert (np.abs(f).max() < 1e-14) == expect_zero
