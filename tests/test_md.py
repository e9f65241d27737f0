"""Compiled kernels, the ASE calculator and the MD engine.

The generated kernels give the reference evaluator's energies and forces (and
autograd's) to 1e-10 in float64; stress is the finite-difference strain derivative;
evopot's MD and ASE's VelocityVerlet with EvopotCalculator follow the same trajectory;
NVE conserves energy.
"""

from __future__ import annotations

import ase.io
import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk
from ase.md.verlet import VelocityVerlet
from conftest import (
    GENERAL_THREEBODY,
    PAIR_FORMULAS,
    TWO_SPECIES_PAIRS,
    cluster,
    pair_potential,
    periodic_cell,
    unlabelled,
)
from test_manybody import POTENTIALS, embedding, threebody

from evopot.cli import main
from evopot.data.geometry import build_geometry
from evopot.errors import EvopotError
from evopot.md.calculator import EvopotCalculator
from evopot.md.dynamics import MolecularDynamics, thermalized
from evopot.md.forcefield import ForceField
from evopot.md.kernels import compile_kernel
from evopot.model.cutoff import Cutoff
from evopot.model.evaluate import evaluate
from evopot.model.evaluate_torch import evaluate_torch
from evopot.model.formula import parse_formula
from evopot.model.potential import Potential, Term
from evopot.testing.known import stillinger_weber, sutton_chen

SPECIES = ("Ge", "Si")


def species_embedding(species):
    base = embedding(species)
    pair, embed = base.terms
    return Potential(
        (pair, Term("embedding", embed.expression, embed.constants, (species[-1],), embed.density)),
        base.cutoff,
        base.species,
    )


KERNEL_CASES = {
    **{
        f"pair-{k}": (lambda k=k: pair_potential(*PAIR_FORMULAS[k], species=SPECIES)) for k in range(len(PAIR_FORMULAS))
    },
    "pair-species": lambda: TWO_SPECIES_PAIRS,
    **{name: (lambda name=name: POTENTIALS[name](SPECIES)) for name in POTENTIALS},
    "embedding-species": lambda: species_embedding(SPECIES),
    "stillinger-weber": lambda: Potential(stillinger_weber().terms, stillinger_weber().cutoff, SPECIES),
    # separable, g not a polynomial in cos θ: the triplet loop
    "threebody-separable-exp": lambda: threebody("A*exp(c*costheta)*exp(-b*rij)*exp(-b*rik)", SPECIES),
}


# constant subexpressions as a search writes them (the recommended member of a short
# silicon_pair search held exp(-1)): torch's functions take no Python numbers
CONSTANT_SUBEXPRESSIONS = [
    "A*exp(-1)*exp(-r)",
    "A*(pi - r)**2 + exp(1)",
    "sqrt(2)*A/r**6 - log(3)*exp(-r)",
    "A*r**(3/2)*exp(-2*r)/7",
]


@pytest.mark.parametrize("formula", CONSTANT_SUBEXPRESSIONS)
def test_constant_subexpressions_compile_in_kernel_and_autograd(formula):
    expression = parse_formula(formula, ["r", "A"])
    potential = Potential((Term("pair", expression, {"A": 0.7}),), Cutoff(4.0, 3.0), SPECIES)
    atoms = periodic_cell(seed=3, species=SPECIES)
    geometry = build_geometry(unlabelled([atoms]), potential.cutoff.radius, potential.species)
    reference, autograd = evaluate(potential, geometry), evaluate_torch(potential, geometry)
    energy, forces, _ = kernel_prediction(potential, atoms)
    scale = max(1.0, np.abs(reference.forces).max())
    assert abs(energy - reference.energies[0]) <= 1e-10 * max(1.0, abs(energy))
    assert np.abs(forces - reference.forces).max() <= 1e-10 * scale
    assert np.abs(autograd.forces - reference.forces).max() <= 1e-10 * scale


def kernel_prediction(potential, atoms, dtype=torch.float64):
    forcefield = ForceField(potential, "cpu", dtype)
    energy, forces, virial = forcefield(*forcefield.tensors(atoms))
    return float(energy), forces.numpy().astype(np.float64), virial.numpy().astype(np.float64)


@pytest.mark.parametrize("name", list(KERNEL_CASES))
@pytest.mark.parametrize("structure", [periodic_cell, cluster])
def test_generated_kernel_agrees_with_the_evaluator_and_with_autograd(name, structure):
    potential = KERNEL_CASES[name]()
    atoms = structure(seed=6, species=SPECIES)
    geometry = build_geometry(unlabelled([atoms]), potential.cutoff.radius, potential.species)
    reference, autograd = evaluate(potential, geometry), evaluate_torch(potential, geometry)
    energy, forces, _ = kernel_prediction(potential, atoms)
    scale = max(1.0, np.abs(reference.forces).max())
    assert abs(energy - reference.energies[0]) <= 1e-10 * max(1.0, abs(energy))
    assert np.abs(forces - reference.forces).max() <= 1e-10 * scale
    assert np.abs(forces - autograd.forces).max() <= 1e-10 * scale


@pytest.mark.parametrize(
    "potential", [stillinger_weber(), POTENTIALS["threebody-separable"](SPECIES)], ids=["sw", "separable"]
)
@pytest.mark.parametrize("structure", [periodic_cell, cluster])
def test_angular_moments_equal_the_triplet_loop(potential, structure):
    atoms = structure(seed=3, species=SPECIES)
    potential = Potential(potential.terms, potential.cutoff, SPECIES)
    results = []
    for moments in (True, False):
        forcefield = ForceField(potential, "cpu")
        if not moments:  # the force field's own kernel uses the moments
            forcefield.kernel = compile_kernel(potential, moments=False)
        results.append([t.numpy() for t in forcefield(*forcefield.tensors(atoms))])
    (e1, f1, w1), (e2, f2, w2) = results
    assert np.abs(f1).max() > 1e-2
    assert (
        abs(e1 - e2) <= 1e-10 * max(1.0, abs(e2))
        and np.abs(f1 - f2).max() <= 1e-10 * np.abs(f2).max()
        and np.abs(w1 - w2).max() <= 1e-10 * np.abs(w2).max()
    )


def test_float32_kernel_is_close_to_float64():
    potential = stillinger_weber()
    atoms = periodic_cell(2)
    e64, f64, _ = kernel_prediction(potential, atoms)
    e32, f32, _ = kernel_prediction(potential, atoms, torch.float32)
    assert abs(e32 - e64) < 1e-5 * abs(e64) and np.abs(f32 - f64).max() < 1e-4 * np.abs(f64).max()


def test_generated_source_is_readable_python_with_shared_subexpressions():
    source = compile_kernel(stillinger_weber()).source
    compile(source, "kernel", "exec")
    assert "def pair_0(r):" in source and "def compute(" in source
    # SW's three-body term is separable, found by sympy: h per bond; g a polynomial in
    # cos θ, so angular moments per atom and no triplets; otherwise g per angle
    assert "def radial_1(r):" in source and "moments" in source and "angle_pairs(" not in source.split("def compute")[1]
    triplets = compile_kernel(stillinger_weber(), moments=False).source
    assert "def angular_1(costheta):" in triplets and "angle_pairs(center" in triplets
    general = compile_kernel(POTENTIALS["threebody-general"](("Si",))).source
    assert "def angle_1(rij, rik, costheta):" in general and "radial_1" not in general
    assert "t0 = " in source and "torch.exp(" in source and "autograd" not in source
    assert "Stillinger" not in source and "2.0951" in source  # constants inlined


@pytest.mark.parametrize(
    "potential",
    [stillinger_weber(), sutton_chen(), pair_potential(*PAIR_FORMULAS[0])],
    ids=["sw", "sutton-chen", "pair"],
)
def test_stress_is_the_finite_difference_strain_derivative(potential):
    atoms = bulk(
        potential.species[0],
        "diamond" if potential.species[0] == "Si" else "fcc",
        5.43 if potential.species[0] == "Si" else 3.61,
        cubic=True,
    ).repeat(2)
    atoms.set_cell(
        atoms.cell.array @ (np.eye(3) + np.random.default_rng(0).uniform(-0.03, 0.03, (3, 3))), scale_atoms=True
    )
    atoms.rattle(0.05, seed=1)
    atoms.calc = EvopotCalculator(potential)
    stress = atoms.get_stress(voigt=False)
    numeric = np.zeros((3, 3))
    h = 1e-6
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                strained = atoms.copy()
                strain = np.eye(3)
                strain[a, b] += sign * h
                strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                strained.calc = EvopotCalculator(potential)
                energies.append(strained.get_potential_energy())
            numeric[a, b] = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
    numeric = 0.5 * (numeric + numeric.T)
    assert np.abs(stress).max() > 1e-3
    assert np.abs(stress - numeric).max() < 1e-7


def test_calculator_matches_the_evaluator_and_refuses_unknown_species():
    atoms = periodic_cell(3)
    atoms.calc = EvopotCalculator(stillinger_weber())
    energy, forces, _ = kernel_prediction(stillinger_weber(), atoms)
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-10)
    atoms.set_chemical_symbols(["C"] * len(atoms))
    with pytest.raises(EvopotError, match=r"species \['C'\]"):
        atoms.get_potential_energy()


def thermalized_silicon(repeat, temperature, seed=1):
    atoms = bulk("Si", "diamond", 5.431, cubic=True).repeat(repeat)
    return thermalized(atoms, temperature, seed)


def test_evopot_md_and_ase_velocity_verlet_follow_the_same_trajectory():
    start = thermalized_silicon(2, 1500)
    ours = MolecularDynamics(start, ForceField(stillinger_weber()), 1.0).run(100)
    theirs = start.copy()
    theirs.calc = EvopotCalculator(stillinger_weber())
    VelocityVerlet(theirs, 1.0 * units.fs).run(100)
    assert np.abs(ours.atoms.positions - start.positions).max() > 0.05  # atoms really moved
    assert np.abs(ours.atoms.positions - theirs.positions).max() < 1e-8
    assert np.abs(ours.atoms.get_velocities() - theirs.get_velocities()).max() < 1e-8


def test_verlet_list_is_rebuilt_only_when_an_atom_moved_half_the_skin():
    atoms = periodic_cell(1)
    forcefield = ForceField(stillinger_weber(), skin=0.6)
    positions, cell, pbc, species = forcefield.tensors(atoms)
    forcefield(positions, cell, pbc, species)
    moved = positions.clone()
    moved[7, 0] += 0.29
    forcefield(moved, cell, pbc, species)
    assert forcefield.neighbors.builds == 1
    moved[7, 0] += 0.02
    forcefield(moved, cell, pbc, species)
    assert forcefield.neighbors.builds == 2


def test_forces_with_a_kept_verlet_list_equal_those_of_a_fresh_list():
    start = thermalized_silicon(2, 2000)
    forcefield = ForceField(stillinger_weber(), skin=0.4)
    fresh = ForceField(stillinger_weber(), skin=0.0)  # any motion rebuilds it
    dynamics = MolecularDynamics(start, forcefield, 1.0)
    for _ in range(150):
        dynamics.step()
        _, forces, _ = fresh(dynamics.positions, dynamics.cell, dynamics.pbc, dynamics.species)
        assert torch.allclose(forces, dynamics.forces, atol=1e-12)
    assert 1 < forcefield.neighbors.builds < 100 and fresh.neighbors.builds == 150


def nve_drift(repeat, steps, temperature=1000):
    atoms = thermalized_silicon(repeat, temperature)
    result = MolecularDynamics(atoms, ForceField(stillinger_weber()), 1.0).run(steps, thermo_every=100)
    return abs(result.thermo[-1].total - result.thermo[0].total) / len(atoms)


def test_nve_conserves_energy_for_one_picosecond():
    assert nve_drift(4, 1000) < 1e-3  # eV/atom, 512 atoms at 1000 K


@pytest.mark.slow
def test_nve_conserves_energy_for_ten_picoseconds():
    assert nve_drift(4, 10000) < 1e-3  # eV/atom, 512 atoms at 1000 K, 1 fs


def test_langevin_holds_the_temperature():
    atoms = thermalized_silicon(3, 100)
    result = MolecularDynamics(
        atoms, ForceField(stillinger_weber()), 2.0, "langevin", 800.0, friction_per_ps=5.0, seed=3
    ).run(1500, thermo_every=10)
    late = np.mean([t.temperature for t in result.thermo[len(result.thermo) // 2 :]])
    assert 700 < late < 900


def test_md_command_writes_thermo_and_a_trajectory(tmp_path, capsys):
    stillinger_weber().save(tmp_path / "sw.json")
    ase.io.write(tmp_path / "si.extxyz", bulk("Si", "diamond", 5.431, cubic=True))
    code = main(
        [
            "md",
            str(tmp_path / "sw.json"),
            str(tmp_path / "si.extxyz"),
            "--repeat",
            "2",
            "2",
            "2",
            "--steps",
            "40",
            "--every",
            "10",
            "--temperature",
            "500",
            "--trajectory",
            str(tmp_path / "md.extxyz"),
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "atom-steps/s" in out and "E_total" in out
    frames = ase.io.read(tmp_path / "md.extxyz", ":")
    assert len(frames) == 5 and len(frames[0]) == 64 and frames[-1].get_velocities() is not None
    assert frames[-1].get_potential_energy() < 0


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--steps", "0"], "--steps must be at least 1"),
        (
            ["--device", "cuda"] if not torch.cuda.is_available() else ["--dt", "-1"],
            "no CUDA GPU" if not torch.cuda.is_available() else "time step must be > 0",
        ),
        (["--member", "1"], "--member picks a member of a run directory"),
    ],
)
def test_md_mistakes_exit_2(tmp_path, capsys, extra, message):
    stillinger_weber().save(tmp_path / "sw.json")
    ase.io.write(tmp_path / "si.extxyz", bulk("Si", "diamond", 5.431, cubic=True))
    assert main(["md", str(tmp_path / "sw.json"), str(tmp_path / "si.extxyz"), "--quiet"] + extra) == 2
    assert message in capsys.readouterr().err


def test_md_with_a_structure_the_potential_does_not_describe(tmp_path, capsys):
    stillinger_weber().save(tmp_path / "sw.json")
    ase.io.write(tmp_path / "cu.extxyz", bulk("Cu", "fcc", 3.61))
    assert main(["md", str(tmp_path / "sw.json"), str(tmp_path / "cu.extxyz"), "--quiet"]) == 2
    assert "species ['Cu']" in capsys.readouterr().err
    assert main(["md", str(tmp_path / "sw.json"), str(tmp_path / "none.extxyz"), "--quiet"]) == 2
    assert "none.extxyz: structure file not found" in capsys.readouterr().err


def test_md_refuses_overlapping_atoms_and_warns_below_the_fitted_range():
    atoms = bulk("Si", "diamond", 5.431, cubic=True)
    atoms.positions[1] = atoms.positions[0]
    with pytest.raises(EvopotError, match="non-finite energy or forces.*atoms 0 and 1 are 0.000 Å apart"):
        MolecularDynamics(atoms, ForceField(stillinger_weber()), 1.0)
    close = bulk("Si", "diamond", 5.431, cubic=True)
    close.positions[1] = close.positions[0] + [1.0, 1.0, 0.0]  # 1.414 Å; GENERAL_THREEBODY was fitted on ≥ 2 Å
    with pytest.warns(
        UserWarning,
        match=r"atoms 0 and 1 are 1.414 Å apart \(the potential was fitted on distances ≥ 2.000 Å\): closer than "
        r"any pair",
    ):
        MolecularDynamics(close, ForceField(GENERAL_THREEBODY), 1.0)


def test_an_exploding_run_stops_naming_the_step_and_keeps_the_trajectory(tmp_path):
    atoms = thermalized(bulk("Si", "diamond", 5.431, cubic=True).repeat(2), 1000, 0)
    dynamics = MolecularDynamics(atoms, ForceField(stillinger_weber()), 20.0)  # far too long a step for Si
    with pytest.raises(
        EvopotError, match=r"exploded to \d+ K at step 5 .*trajectory up to the last frame written is kept"
    ):
        dynamics.run(100, thermo_every=5, trajectory=tmp_path / "run.extxyz", trajectory_every=5)
    frames = ase.io.read(tmp_path / "run.extxyz", ":")
    assert len(frames) == 1 and np.allclose(frames[0].positions, atoms.positions)


@pytest.mark.slow
def test_torch_compile_gives_the_same_forces():
    atoms = periodic_cell(4)
    plain = kernel_prediction(stillinger_weber(), atoms)[1]
    forcefield = ForceField(stillinger_weber(), "cpu", optimize=True)
    _, forces, _ = forcefield(*forcefield.tensors(atoms))
    assert np.abs(forces.numpy() - plain).max() < 1e-10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_kernel_on_the_gpu_agrees_with_the_cpu():
    atoms = periodic_cell(5, SPECIES)
    potential = KERNEL_CASES["stillinger-weber"]()
    cpu = kernel_prediction(potential, atoms)[1]
    forcefield = ForceField(potential, "cuda")
    _, forces, _ = forcefield(*forcefield.tensors(atoms))
    assert np.abs(forces.cpu().numpy() - cpu).max() < 1e-10
