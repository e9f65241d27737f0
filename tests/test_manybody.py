"""Three-body and embedding terms: exact forces, symmetries, and agreement with an
independent implementation (matscipy's Stillinger–Weber)."""

import numpy as np
import pytest
from ase.build import bulk
from conftest import cluster, finite_difference_forces, periodic_cell, unlabelled
from scipy.spatial.transform import Rotation

from evopot.data.geometry import build_geometry
from evopot.model.cutoff import Cutoff
from evopot.model.evaluate import evaluate
from evopot.model.evaluate_torch import evaluate_torch
from evopot.model.formula import parse_formula
from evopot.model.potential import Potential, Term
from evopot.testing.known import stillinger_weber, sutton_chen

NAMES = ["r", "rij", "rik", "costheta", "rho", "A", "b", "c", "d"]


def threebody(expression, species=("Si",), term_species=None, cutoff=Cutoff(3.6, 2.8)):
    constants = {"A": 1.3, "b": 0.8, "c": 0.3, "d": 2.2}
    used = {k: v for k, v in constants.items() if k in expression}
    pair = Term("pair", parse_formula("A*exp(-b*r)", NAMES), {"A": 40.0, "b": 2.0})
    angle = Term("threebody", parse_formula(expression, NAMES), used, term_species)
    return Potential((pair, angle), cutoff, tuple(species), {s: -1.0 for s in species})


def embedding(species=("Si",)):
    pair = Term("pair", parse_formula("A*exp(-b*r)", NAMES), {"A": 60.0, "b": 2.1})
    embed = Term(
        "embedding",
        parse_formula("-A*sqrt(rho) + c*rho**2", NAMES),
        {"A": 1.1, "c": 0.01, "b": 1.5},
        density=parse_formula("exp(-b*r)*r", NAMES),
    )
    return Potential((pair, embed), Cutoff(5.0, 4.0), tuple(species), {})


def bond_order(species=("Si",), tersoff=True):
    """Tersoff's Si (LAMMPS's Si.tersoff parameters), or a bond-order term of another form."""
    from evopot.model.terms.bondorder import tersoff_term

    if tersoff:
        values = {"A": 3264.7, "B": 95.373, "lambda1": 3.2394, "lambda2": 1.3258, "lambda3": 1.3258}
        values |= {"beta": 0.33675, "n": 22.956, "gamma": 1.0, "c": 4.8381, "d": 2.0417, "h": 0.0}
        return Potential((tersoff_term(values),), Cutoff(3.2, 2.8, "cosine"), tuple(species), {})
    term = Term(
        "bondorder",
        parse_formula("A*exp(-2*r) - c*exp(-r)/sqrt(1 + b*zeta)", NAMES + ["zeta"]),
        {"A": 900.0, "b": 0.7, "c": 0.6, "d": 0.3},
        density=parse_formula("(costheta + d)**2*exp(c*(rij - rik))", NAMES + ["zeta"]),
    )
    return Potential((term,), Cutoff(3.4, 2.6), tuple(species), {s: -0.5 for s in species})


POTENTIALS = {
    "threebody-separable": lambda sp: threebody("A*(costheta + c)**2*exp(-b*rij)*exp(-b*rik)", sp),
    "threebody-general": lambda sp: threebody("A*(costheta - c*rij)**2*exp(-b*rij*rik) + c*rij/rik", sp),
    "threebody-species": lambda sp: threebody(
        "A*(costheta + c)**2*exp(-b*(rij + rik))", sp, term_species=(sp[0], sp[-1], sp[0])
    ),
    "embedding": embedding,
    "bondorder-tersoff": bond_order,
    "bondorder-general": lambda sp: bond_order(sp, tersoff=False),
}


def energy_and_forces(potential, atoms):
    p = evaluate(potential, build_geometry(unlabelled([atoms]), potential.cutoff.radius, potential.species))
    return p.energies[0], p.forces


@pytest.mark.parametrize("name", list(POTENTIALS))
@pytest.mark.parametrize("species", [("Si",), ("Ge", "Si")])
@pytest.mark.parametrize("structure", [periodic_cell, cluster])
def test_manybody_forces_are_minus_the_finite_difference_gradient(name, species, structure):
    potential = POTENTIALS[name](species)
    atoms = structure(seed=4, species=species)
    _, forces = energy_and_forces(potential, atoms)
    numeric = finite_difference_forces(lambda a: energy_and_forces(potential, a)[0], atoms)
    assert np.abs(forces).max() > 1e-3
    assert np.abs(forces - numeric).max() <= 1e-6 * np.abs(forces).max()


@pytest.mark.parametrize("name", list(POTENTIALS))
def test_manybody_symbolic_forces_agree_with_autograd(name):
    species = ("Ge", "Si")
    potential = POTENTIALS[name](species)
    frames = unlabelled([periodic_cell(s, species) for s in range(2)] + [cluster(3, species)])
    geometry = build_geometry(frames, potential.cutoff.radius, species)
    a, b = evaluate(potential, geometry), evaluate_torch(potential, geometry)
    np.testing.assert_allclose(a.energies, b.energies, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(a.forces, b.forces, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", list(POTENTIALS))
@pytest.mark.parametrize("structure", [periodic_cell, cluster])
def test_manybody_energy_is_invariant_under_rotation_translation_and_permutation(name, structure):
    species = ("Ge", "Si")
    potential = POTENTIALS[name](species)
    atoms = structure(seed=6, species=species)
    energy, forces = energy_and_forces(potential, atoms)
    rotation = Rotation.random(random_state=3).as_matrix()
    moved = atoms.copy()
    moved.positions = atoms.positions @ rotation.T + np.array([0.3, 2.1, -1.7])
    if atoms.pbc.any():
        moved.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    e, f = energy_and_forces(potential, moved)
    assert e == pytest.approx(energy, rel=1e-12)
    np.testing.assert_allclose(f, forces @ rotation.T, atol=1e-10)
    order = np.random.default_rng(1).permutation(len(atoms))
    e, f = energy_and_forces(potential, atoms[order])
    assert e == pytest.approx(energy, rel=1e-12)
    np.testing.assert_allclose(f, forces[order], atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stillinger_weber_matches_matscipy(seed):
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms import StillingerWeber
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import Stillinger_Weber_PRB_31_5262_Si

    atoms = bulk("Si", "diamond", 5.431, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=seed)
    reference = atoms.copy()
    reference.calc = Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))
    potential = stillinger_weber()
    energy, forces = energy_and_forces(potential, atoms)
    assert len(atoms) == 64
    assert energy == pytest.approx(reference.get_potential_energy(), abs=1e-8)
    assert np.abs(forces - reference.get_forces()).max() <= 1e-8
    assert np.abs(forces).max() > 0.1


def test_sutton_chen_copper_binds_fcc_near_its_published_lattice_constant():
    potential = sutton_chen()
    energies = {
        a: energy_and_forces(potential, bulk("Cu", "fcc", a, cubic=True))[0] / 4 for a in np.arange(3.45, 3.75, 0.01)
    }
    best = min(energies, key=energies.get)
    assert abs(best - 3.61) < 0.03
    assert -3.8 < energies[best] < -3.0
