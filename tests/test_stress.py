"""Stresses: the NumPy evaluator's virials of every term kind against finite strains of
the energy and against the generated MD kernel (the ASE calculator's stress); the DFT
stresses read from the data files (ASE's and mlearn's conventions); stresses as fit targets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import GENERAL_THREEBODY, SI_TRAIN, TWO_SPECIES_PAIRS, copper_cell, periodic_cell
from test_bondorder import general_bond_order, tersoff_form_frames

from evopot.data.dataset import read_frames, unlabelled
from evopot.md.calculator import EvopotCalculator
from evopot.model.evaluate import evaluate, potential_geometry
from evopot.testing.known import stillinger_weber, sutton_chen

VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


def _potentials():
    return {
        "two-species pairs": (TWO_SPECIES_PAIRS, lambda: periodic_cell(seed=3, species=("Si", "Ge"))),
        "general three-body": (GENERAL_THREEBODY, lambda: periodic_cell(seed=4)),
        "stillinger-weber (separable)": (stillinger_weber(), lambda: periodic_cell(seed=5)),
        "sutton-chen (embedding)": (sutton_chen(), lambda: copper_cell(seed=1)),
        "general bond order": (general_bond_order(), lambda: periodic_cell(seed=6)),
        "tersoff form": (tersoff_form_frames()[0], lambda: periodic_cell(seed=7)),
    }


def _energy(potential, atoms) -> float:
    return float(evaluate(potential, potential_geometry(potential, unlabelled([atoms]))).energies[0])


@pytest.mark.parametrize("name", list(_potentials()))
def test_virials_are_the_strain_derivative_of_the_energy_and_match_the_kernel(name):
    potential, make = _potentials()[name]
    atoms = make()
    prediction = evaluate(potential, potential_geometry(potential, unlabelled([atoms])))
    virial = prediction.virials[0]
    h = 1e-6
    numeric = np.zeros(6)
    for v, (a, b) in enumerate(VOIGT):
        strain = np.zeros((3, 3))
        strain[a, b] = strain[b, a] = h  # a symmetric strain: ε_ab = ε_ba = h
        energies = []
        for sign in (1, -1):
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + sign * strain), scale_atoms=True)
            energies.append(_energy(potential, strained))
        # dE/dε_ab counts both ε_ab and ε_ba off the diagonal
        numeric[v] = (energies[0] - energies[1]) / (2 * h) / (2 if a != b else 1)
    scale = max(1.0, np.abs(virial).max())
    assert np.abs(numeric - virial).max() <= 2e-5 * scale, (numeric, virial)
    # an independent path: the compiled torch kernel of MD and the ASE calculator
    atoms.calc = EvopotCalculator(potential)
    assert np.allclose(atoms.get_stress() * atoms.get_volume(), virial, rtol=1e-9, atol=1e-9 * scale)
    assert abs(virial).max() > 1e-3  # a strained, rattled cell: a zero virial would hide a mistake


def test_mlearn_stresses_are_read_in_ase_order_units_and_sign():
    frames = read_frames(SI_TRAIN)
    elastic = [k for k, t in enumerate(frames.config_types) if t == "Elastic"]
    ground = next(k for k in elastic if "ground" in frames.atoms[k].info["description"].lower())
    cell0 = frames.atoms[ground].cell.array
    checked = 0
    for k in elastic:
        atoms = frames.atoms[k]
        if len(atoms) != len(frames.atoms[ground]):
            continue
        deformation = (np.linalg.inv(cell0) @ atoms.cell.array).T
        green = 0.5 * (deformation.T @ deformation - np.eye(3))
        if abs(green[0, 1]) > 0.01 and abs(green).max() == abs(green[0, 1]):
            # a shear in xy: ASE's xy slot (5) holds the largest stress, tensile positive for a positive strain
            stress = frames.stresses[k]
            assert np.argmax(np.abs(stress[3:])) == 2
            assert np.sign(stress[5]) == np.sign(green[0, 1])
            checked += 1
    assert checked >= 4
    # the Surface frames carry no stress (examples/data/add_stress.py says why): NaN rows
    surface = np.array([t == "Surface" for t in frames.config_types])
    assert np.all(np.isnan(frames.stresses[surface])) and np.all(np.isfinite(frames.stresses[~surface]))


def test_the_aimd_shear_stresses_agree_with_an_independent_potential_in_the_order_written():
    """LAMMPS's Si.tersoff on the bundled AIMD frames: each shear component of its stress
    follows the DFT component of the same name, not the others (mlearn's raw order of
    these frames differs from its Elastic frames')."""
    from test_bondorder import LAMMPS_SI, SI_TERSOFF

    from evopot.export.lammps_tersoff import read_tersoff

    frames = read_frames(SI_TRAIN)
    aimd = frames.subset([k for k, t in enumerate(frames.config_types) if t == "AIMD-NVT"])
    if LAMMPS_SI.is_file():
        potential = read_tersoff(LAMMPS_SI)
    else:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "Si.tersoff").write_text(SI_TERSOFF)
            potential = read_tersoff(Path(folder) / "Si.tersoff")
    virials = evaluate(potential, potential_geometry(potential, aimd)).virials
    model = virials / np.array([a.get_volume() for a in aimd.atoms])[:, None]
    for v in (3, 4, 5):
        same = np.corrcoef(model[:, v], aimd.stresses[:, v])[0, 1]
        others = [abs(np.corrcoef(model[:, v], aimd.stresses[:, w])[0, 1]) for w in (3, 4, 5) if w != v]
        assert same > 0.6 and max(others) < 0.3, (v, same, others)


def test_stresses_are_read_as_ase_writes_them_and_bad_ones_are_named(tmp_path):
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from evopot.errors import EvopotError

    atoms = [bulk("Cu", "fcc", 3.6).repeat(2) for _ in range(2)]
    stress = np.array([0.01, 0.02, 0.03, -0.004, 0.005, -0.006])
    atoms[0].calc = SinglePointCalculator(atoms[0], energy=-1.0, forces=np.zeros((8, 3)), stress=stress)
    atoms[1].calc = SinglePointCalculator(atoms[1], energy=-1.0, forces=np.zeros((8, 3)))
    write(tmp_path / "frames.extxyz", atoms)
    frames = read_frames(tmp_path / "frames.extxyz")
    assert np.allclose(frames.stresses[0], stress) and np.all(np.isnan(frames.stresses[1]))
    assert read_frames(tmp_path / "frames.extxyz", index="1").stresses is None  # no frame has one
    (tmp_path / "bad.extxyz").write_text(
        (tmp_path / "frames.extxyz").read_text().replace('stress="0.01', 'stress="nan', 1)
    )
    with pytest.raises(EvopotError, match=r"bad.extxyz: frame 0: its stress is not finite"):
        read_frames(tmp_path / "bad.extxyz")


def _labelled_with_stress(potential, n=4):
    """Frames labelled by ``potential`` through the ASE calculator (energy, forces, stress)."""
    from evopot.data.sampling import label

    return label([periodic_cell(seed=s) for s in range(n)], EvopotCalculator(potential))


def test_stresses_alone_determine_the_linear_coefficients():
    """With force and energy weights 0 the fit sees only the stress rows: the truth's
    coefficients come back exactly, so their sign, units and volume scaling are right."""
    import sympy
    from test_fitting import pair_candidate

    from evopot.model.cutoff import Cutoff
    from evopot.model.formula import parse_formula
    from evopot.model.potential import Potential, Term
    from evopot.search.fitting import FitProblem, fit_constants

    cutoff = Cutoff(5.0, 4.0)
    truth = Potential((Term("pair", parse_formula("300*exp(-2.6*r) - 8/r**6", ["r"])),), cutoff, ("Si",))
    frames = _labelled_with_stress(truth)
    assert frames.stresses is not None and np.all(np.isfinite(frames.stresses))
    wrong = replace(frames, energies=frames.energies + 50.0, forces=[f + 1.0 for f in frames.forces])
    r = sympy.Symbol("r")
    candidate = pair_candidate([sympy.exp(-2.6 * r), r**-6])
    only = FitProblem.from_frames(wrong, cutoff, ("Si",), force_weight=0.0, energy_weight=0.0, stress_weight=1.0)
    assert len(only.target) == len(frames) + 3 * frames.n_atoms + 6 * len(frames)
    result = fit_constants(only, candidate)
    assert result.ok and result.loss < 1e-9
    np.testing.assert_allclose(result.linear, [300.0, -8.0], rtol=1e-8)
    # stresses weighted 0 add no rows; a stress weight on the right labels leaves the truth exact
    assert len(FitProblem.from_frames(frames, cutoff, ("Si",)).target) == len(frames) + 3 * frames.n_atoms
    both = FitProblem.from_frames(frames, cutoff, ("Si",), stress_weight=0.1)
    result = fit_constants(both, candidate)
    assert result.loss < 1e-9 and np.allclose(result.linear, [300.0, -8.0], rtol=1e-8)


def test_a_stress_weight_without_stresses_in_the_data_is_a_clear_error(tmp_path):
    from ase.io import write

    from evopot.errors import EvopotError
    from evopot.search.run import search

    frames = read_frames(SI_TRAIN).subset(range(8))
    for atoms, energy, forces in zip(frames.atoms, frames.energies, frames.forces):
        atoms.calc = None
        atoms.info["energy"] = energy
        atoms.arrays["forces"] = forces
    write(tmp_path / "nostress.extxyz", frames.atoms)
    config = {
        "data": {"train": str(tmp_path / "nostress.extxyz"), "split": {"validation": 0.25}},
        "search_space": "pair",
        "cutoff": {"radius": 4.0},
        "engine": {"generations": 1, "population": 4},
        "fitness": {"stresses": 1.0},
        "output": str(tmp_path / "run"),
    }
    with pytest.raises(EvopotError, match=r"config: fitness.stresses is 1 but none of the 6 training frames .* has a"):
        search(config, progress=False)
    assert not (tmp_path / "run").exists()
