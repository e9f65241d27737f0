"""Hybrid potentials: a formula plus a residual network (Behler–Parrinello, or an
interaction network on the neighbour graph)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase.build import bulk
from conftest import GENERAL_THREEBODY, SI_TEST, TWO_SPECIES_PAIRS, cluster, copper_cell, pair_potential, periodic_cell

from evopot.config.schema import CorrectionConfig
from evopot.data.dataset import read_frames, split_by_fraction, unlabelled
from evopot.data.geometry import build_geometry
from evopot.data.neighbors import VerletList
from evopot.errors import EvopotError
from evopot.md.calculator import EvopotCalculator
from evopot.md.forcefield import ForceField
from evopot.model.evaluate import evaluate
from evopot.model.potential import Potential
from evopot.neural.correct import descriptor_for, errors, residual_for, train_hybrid
from evopot.neural.descriptors import SymmetryFunctions
from evopot.neural.formula_inputs import FormulaInputs
from evopot.neural.hybrid import Hybrid, formula_only, load_model, predict, save_hybrid
from evopot.neural.network import Correction
from evopot.neural.residual import _loss, network_prediction, residual_data
from evopot.testing.known import stillinger_weber, sutton_chen

LJ = pair_potential("4*e*((s/r)**12 - (s/r)**6)", {"e": 0.1, "s": 2.1})


INTERACTION = {"width": 12, "rounds": 2, "radial": 5, "channels": 4}


def random_hybrid(
    potential: Potential,
    size: int = 2,
    seed: int = 0,
    formula_inputs: bool = False,
    moments: int = 0,
    interaction: dict | None = None,
) -> Hybrid:
    """A hybrid with untrained (random, non-trivial) networks: enough for the physics
    tests; with ``formula_inputs`` the networks also read the formula's term energies,
    with ``moments`` channels the moment-tensor invariants; with ``interaction`` (its
    shape) they are interaction networks."""
    descriptor = SymmetryFunctions.default(
        potential.species, max(4.5, potential.reach), 3.5, radial_count=6, moment_count=moments
    )
    if formula_inputs:
        descriptor = FormulaInputs(descriptor, potential)
    correction = Correction.new(descriptor, size, (16, 16), "tanh", seed, interaction)
    for net in correction.networks:
        net.energy_scale.fill_(0.5)
        net.feature_std.fill_(3.0)
        if formula_inputs:  # the term columns weigh like the rest (eV per atom, not 3 of them)
            net.feature_std[-len(potential.terms) :] = 1.0
    return Hybrid(potential, correction)


@pytest.fixture(
    params=[
        "periodic",
        "cluster",
        "two species",
        "periodic, formula inputs",
        "two species, formula inputs",
        "three-body, formula inputs",
        "embedding, formula inputs",
        "periodic, moments",
        "two species, moments",
        "periodic, interaction",
        "two species, formula inputs, interaction",
        "three-body, formula inputs, interaction",
    ]
)
def case(request):
    if request.param.endswith(", interaction"):
        two, three = request.param.startswith("two species"), request.param.startswith("three-body")
        potential = TWO_SPECIES_PAIRS if two else GENERAL_THREEBODY if three else LJ
        atoms = periodic_cell(2, ("Si", "Ge")) if two else periodic_cell(3 if three else 1)
        return random_hybrid(
            potential, formula_inputs="formula inputs" in request.param, interaction=INTERACTION
        ), atoms
    inputs = request.param.endswith("formula inputs")
    if request.param.endswith("moments"):
        two = request.param.startswith("two species")
        return random_hybrid(TWO_SPECIES_PAIRS if two else LJ, moments=2), periodic_cell(
            2, ("Si", "Ge") if two else ("Si",)
        )
    if request.param.startswith("two species"):
        return random_hybrid(TWO_SPECIES_PAIRS, formula_inputs=inputs), periodic_cell(2, ("Si", "Ge"))
    if request.param.startswith("three-body"):
        return random_hybrid(GENERAL_THREEBODY, formula_inputs=True), periodic_cell(3)
    if request.param.startswith("embedding"):
        return random_hybrid(sutton_chen(), formula_inputs=True), copper_cell(1)[:40]
    return random_hybrid(LJ, formula_inputs=inputs), (
        periodic_cell(1) if request.param.startswith("periodic") else cluster(1)
    )


@pytest.mark.parametrize(
    "potential, atoms",
    [
        (TWO_SPECIES_PAIRS, periodic_cell(2, ("Si", "Ge"))),
        (GENERAL_THREEBODY, periodic_cell(3)),
        (stillinger_weber(), periodic_cell(4)),
        (sutton_chen(), copper_cell(2)),
    ],
    ids=["species pairs", "general three-body", "stillinger-weber", "embedding"],
)
def test_formula_inputs_are_each_atoms_share_of_the_formulas_energy(potential, atoms):
    """The term columns of all atoms add up to the formula's energy (the independent
    evaluator's, reference energies aside), term by term."""
    from evopot.model.evaluate import term_prediction

    inputs = FormulaInputs(
        SymmetryFunctions.default(potential.species, max(5.0, potential.reach), radial_count=4), potential
    )
    frames = unlabelled([atoms])
    data = residual_data(frames, inputs, np.zeros(1), np.zeros((len(atoms), 3)))
    columns = data.features[:, -inputs.n_terms :].numpy()
    geometry = build_geometry(frames, potential.reach, potential.species)
    for k, term in enumerate(potential.terms):
        expected = term_prediction(term, potential.cutoff_of(term), geometry).energies[0]
        assert columns[:, k].sum() == pytest.approx(expected, rel=1e-10, abs=1e-10) and abs(expected) > 1e-3
    assert len(np.unique(np.round(columns[:, 0], 8))) > 1  # per atom, not one value spread evenly


def hybrid_energy(model, atoms) -> float:
    atoms = atoms.copy()
    atoms.calc = EvopotCalculator(model)
    return atoms.get_potential_energy()


def test_hybrid_forces_are_minus_the_gradient_of_its_energy(case):
    model, atoms = case
    atoms.calc = EvopotCalculator(model)
    forces = atoms.get_forces()
    formula = EvopotCalculator(model.potential).get_forces(atoms.copy())
    assert np.abs(forces - formula).max() > 1e-3  # the network contributes
    for i in (0, 7, 13):  # central differences on a few atoms
        for d in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, d] += 1e-5
            minus.positions[i, d] -= 1e-5
            assert forces[i, d] == pytest.approx(
                -(hybrid_energy(model, plus) - hybrid_energy(model, minus)) / 2e-5, abs=1e-6
            )


def test_hybrid_energy_is_invariant_under_rotation_translation_and_permutation(case):
    model, atoms = case
    energy = hybrid_energy(model, atoms)
    moved = atoms.copy()
    moved.rotate(37, (1, 2, 3), rotate_cell=True)
    moved.translate((0.3, -1.2, 2.0))
    order = np.random.default_rng(0).permutation(len(atoms))
    assert hybrid_energy(model, moved[order]) == pytest.approx(energy, abs=1e-9)


def test_symmetry_functions_are_invariant_and_local():
    atoms = periodic_cell(4)
    descriptor = SymmetryFunctions.default(("Si",), 5.0)
    data = residual_data(unlabelled([atoms]), descriptor, np.zeros(1), np.zeros((len(atoms), 3)))
    moved = atoms.copy()
    moved.rotate(50, (0, 1, 1), rotate_cell=True)
    order = np.random.default_rng(1).permutation(len(atoms))
    again = residual_data(unlabelled([moved[order]]), descriptor, np.zeros(1), np.zeros((len(atoms), 3)))
    assert np.allclose(again.features.numpy(), data.features.numpy()[order], atol=1e-10)
    assert data.features.shape == (64, descriptor.n_features) and float(data.features[:, 12:].abs().min()) > 0


@pytest.mark.parametrize("species", [("Si",), ("Si", "Ge", "C")])
def test_all_columns_at_once_equal_the_columns_one_by_one(species):
    """MD computes the features in one pass (:meth:`SymmetryFunctions.features`), training
    one column at a time (:meth:`SymmetryFunctions.column`, for the Jacobians): the same
    numbers and the same gradients, for several species, moment invariants, sets that are
    not a full (distance × shape) grid, and an atom far from the rest (no angles)."""
    atoms = periodic_cell(3, species)
    atoms.set_cell(atoms.cell.array * [[1], [1], [2]])  # room above the atoms for a lone one, 5.4 Å from all
    atoms += atoms[:1]
    atoms.positions[-1] = atoms.cell.cartesian_positions([0.5, 0.5, 0.75])
    base = SymmetryFunctions.default(species, 4.5, 3.5, radial_count=5, shell_count=2, moment_count=2)
    shells = tuple(s for k, s in enumerate(base.shells) if k % 3)
    descriptor = SymmetryFunctions(species, 4.5, 3.5, base.radial, base.angular[:5], shells, base.moments)
    neighbours = VerletList(descriptor.cutoff, skin=0.0)
    positions = torch.tensor(atoms.positions, requires_grad=True)
    d, center, neighbor = neighbours.bonds(positions, torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc))
    codes = torch.tensor([species.index(s) for s in atoms.get_chemical_symbols()])
    hood = descriptor.neighbourhood(d, center, neighbor, codes, len(atoms))
    one_by_one = torch.stack([descriptor.column(hood, k) for k in range(descriptor.n_features)], dim=1)
    at_once = descriptor(d, center, neighbor, codes, len(atoms))
    assert at_once.shape == one_by_one.shape == (len(atoms), descriptor.n_features)
    assert torch.allclose(at_once, one_by_one, rtol=1e-12, atol=1e-12)
    assert float(at_once[-1].detach().abs().max()) == 0.0 < float(at_once[:-1].detach().abs().sum(1).min())
    weights = torch.rand(descriptor.n_features, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (grad_once,) = torch.autograd.grad((at_once * weights).sum(), positions, retain_graph=True)
    (grad_columns,) = torch.autograd.grad((one_by_one * weights).sum(), positions)
    assert torch.allclose(grad_once, grad_columns, rtol=1e-10, atol=1e-12)


def test_all_columns_at_once_without_any_angle():
    """A dimer has bonds but no angles: the one-pass features are its radial columns and
    zeros, as the per-column path gives."""
    descriptor = SymmetryFunctions.default(("Si",), 4.5, 3.5, radial_count=5, moment_count=2)
    d = torch.tensor([[2.3, 0.0, 0.0], [-2.3, 0.0, 0.0]], dtype=torch.float64)
    center, neighbor, species = torch.tensor([0, 1]), torch.tensor([1, 0]), torch.zeros(2, dtype=torch.long)
    hood = descriptor.neighbourhood(d, center, neighbor, species, 2)
    assert len(hood["cos"]) == 0
    one_by_one = torch.stack([descriptor.column(hood, k) for k in range(descriptor.n_features)], dim=1)
    at_once = descriptor(d, center, neighbor, species, 2)
    assert torch.allclose(at_once, one_by_one, rtol=1e-12, atol=1e-14)
    assert float(at_once[:, :5].min()) > 0 and float(at_once[:, 5 : 5 + len(descriptor.angular)].abs().max()) == 0


def test_moment_invariants_vanish_on_tetrahedral_sites_only():
    """In perfect diamond every site has tetrahedral symmetry, so the moment vectors and
    traceless tensors (and all their invariants) vanish; a rattled crystal's do not."""
    descriptor = SymmetryFunctions.default(("Si",), 5.0, moment_count=3)
    n = descriptor.n_features - len(descriptor.moment_invariants)
    assert len(descriptor.moment_invariants) == 6 + 6 + 18 + 10
    perfect = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    rattled = periodic_cell(4)
    columns = [
        residual_data(unlabelled([a]), descriptor, np.zeros(1), np.zeros((len(a), 3))).features[:, n:]
        for a in (perfect, rattled)
    ]
    assert float(columns[0].abs().max()) < 1e-10
    assert bool((columns[1].abs().max(0).values > 1e-6).all())
    assert SymmetryFunctions.from_dict(descriptor.to_dict()) == descriptor


def test_training_path_forces_equal_the_md_path(case):
    """The precomputed Jacobians of training give the same forces as autograd at run time."""
    model, atoms = case
    data = residual_data(unlabelled([atoms]), model.correction.descriptor, np.zeros(1), np.zeros((len(atoms), 3)))
    energy, forces = network_prediction(model.correction.networks[0], data)
    single = Hybrid(model.potential, Correction(model.correction.descriptor, model.correction.networks[:1]))
    formula = EvopotCalculator(model.potential)
    assert hybrid_energy(single, atoms) - formula.get_potential_energy(atoms.copy()) == pytest.approx(
        float(energy[0]), abs=1e-9
    )
    calc = EvopotCalculator(single)
    assert np.abs(calc.get_forces(atoms.copy()) - formula.get_forces(atoms.copy()) - forces.numpy()).max() < 1e-9


def test_hybrid_stress_is_the_finite_difference_strain_derivative():
    model = random_hybrid(LJ)
    atoms = periodic_cell(5)
    atoms.calc = EvopotCalculator(model)
    stress = atoms.get_stress(voigt=False)
    numeric, h = np.zeros((3, 3)), 1e-6
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[a, b] += sign * h
                strained = atoms.copy()
                strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                energies.append(hybrid_energy(model, strained))
            numeric[a, b] = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
    assert np.abs(stress - 0.5 * (numeric + numeric.T)).max() < 1e-7


@pytest.fixture(scope="module")
def si_splits():
    frames = read_frames(SI_TEST)
    return split_by_fraction(frames, {"validation": 0.2}, 0)


@pytest.mark.parametrize(
    "loss, schedule, ema, moments, model",
    [
        ("mae", "plateau", 0.0, 0, "bpnn"),
        ("mse", "plateau", 0.0, 0, "bpnn"),
        ("mae", "cosine", 0.9, 2, "bpnn"),
        ("mae", "cosine", 0.9, 0, "interaction"),
    ],
    ids=["mae", "mse", "cosine, averaged weights, moments", "interaction network"],
)
def test_the_network_learns_what_the_formula_leaves(si_splits, loss, schedule, ema, moments, model):
    settings = CorrectionConfig(
        ensemble=1,
        epochs=15 if model == "interaction" else 25,
        hidden=[16, 16],
        patience=25,
        radial_functions=8,
        loss=loss,
        schedule=schedule,
        ema=ema,
        moment_channels=moments,
        model=model,
        interaction={"width": 16, "rounds": 2, "radial": 6, "channels": 4},
    )
    descriptor = descriptor_for(LJ, settings)
    correction, log = train_hybrid(LJ, si_splits, settings, descriptor, seed=0, progress=False)
    hybrid = Hybrid(LJ, correction)
    frames = si_splits["validation"]
    before, after = errors(predict(LJ, frames), frames), errors(predict(hybrid, frames), frames)
    assert after["force_mae"] < 0.6 * before["force_mae"]
    assert after["energy_mae"] < 0.5 * before["energy_mae"]
    assert log.networks[0]["best_epoch"] > 1
    if schedule == "cosine":  # runs its whole decay; the kept weights score the recorded validation error
        assert log.networks[0]["epochs"] == settings.epochs
        assert after["force_mae"] == pytest.approx(log.networks[0]["validation_force_mae"], rel=1e-9)


def test_a_hybrid_learns_a_share_of_each_term(si_splits):
    """DFT = 0.7 × Stillinger–Weber: what the formula leaves is −0.3 of each of its two
    terms, which the hybrid, reading the term columns, learns to a tenth of the
    formula's error."""
    from evopot.data.sampling import label
    from evopot.testing.known import SW_SILICON

    formula = stillinger_weber()
    scaled = EvopotCalculator(stillinger_weber(constants={**SW_SILICON, "eps": 0.7 * SW_SILICON["eps"]}))
    labelled = {name: label(frames.atoms, scaled) for name, frames in si_splits.items()}
    settings = CorrectionConfig(
        ensemble=1,
        epochs=40,
        hidden=[8],
        learning_rate=1e-2,
        radial_functions=4,
        angular_shells=0,
        moment_channels=0,
        ema=0,
    )
    correction, _ = train_hybrid(formula, labelled, settings, descriptor_for(formula, settings), seed=0, progress=False)
    frames = labelled["validation"]
    assert (
        errors(predict(Hybrid(formula, correction), frames), frames)["force_mae"]
        < 0.1 * errors(predict(formula, frames), frames)["force_mae"]
    )


@pytest.mark.parametrize("loss", ["mae", "mse"])
def test_config_type_weights_weigh_each_frame_in_the_loss(si_splits, loss):
    """A frame of weight 0 drops out of the loss, so weights (1, 0, …, 0) give the first
    frame's loss alone; equal weights give the unweighted loss; a config type weighted
    3 counts as its frames three times over."""
    from dataclasses import replace

    from evopot.neural.correct import training_settings

    settings = CorrectionConfig(
        ensemble=1, hidden=[8], radial_functions=4, angular_shells=0, moment_channels=0, loss=loss
    )
    descriptor = descriptor_for(LJ, settings)
    frames = si_splits["validation"]
    data = residual_for(LJ, frames, descriptor)
    network = Correction.new(descriptor, 1, (8,), "silu", seed=3).networks[0]
    train = training_settings(settings, 0)

    def loss_of(weights):
        return float(
            _loss(
                network,
                replace(data, frame_weights=None if weights is None else torch.as_tensor(weights, dtype=torch.float64)),
                train,
                False,
            )[0]
        )

    first = np.eye(len(frames))[0]
    assert loss_of(first) == pytest.approx(float(_loss(network, data.batch([0]), train, False)[0]), rel=1e-12)
    assert loss_of(np.full(len(frames), 2.5)) == pytest.approx(loss_of(None), rel=1e-12)
    assert loss_of(first) != pytest.approx(loss_of(None), rel=1e-3)

    kind = frames.config_types[0]
    energies, forces = (t.numpy() for t in network_prediction(network, data))
    measure = np.abs if loss == "mae" else np.square
    w = np.array([3.0 if t == kind else 1.0 for t in frames.config_types])
    atoms = np.repeat(w, data.atoms_per_frame.numpy())
    expected = (
        np.sum(measure(forces - data.forces.numpy()).sum(1) * atoms) / (3 * atoms.sum())
        + settings.energy_weight
        * np.sum(measure((energies - data.energies.numpy()) / data.atoms_per_frame.numpy()) * w)
        / w.sum()
    )
    weighted = residual_for(LJ, frames, descriptor, weights={kind: 3.0})
    assert float(_loss(network, weighted, train, False)[0]) == pytest.approx(expected, rel=1e-12)
    assert len(set(frames.config_types)) > 1 and expected != pytest.approx(loss_of(None), rel=1e-4)


def test_config_type_weights_with_mistakes_give_clear_errors(si_splits):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="weights must be ≥ 0"):
        CorrectionConfig(config_type_weights={"Surface": -1})
    types = sorted(set(si_splits["train"].config_types))
    for weights, message in (
        ({"Surfce": 2}, r"names \['Surfce'\], which no training frame has; the training frames' config types are"),
        ({t: 0 for t in types}, "gives every training frame weight 0"),
    ):
        settings = CorrectionConfig(ensemble=1, epochs=1, config_type_weights=weights)
        with pytest.raises(EvopotError, match=message):
            train_hybrid(LJ, si_splits, settings, descriptor_for(LJ, settings), seed=0, progress=False)


def test_saved_hybrid_loads_with_the_same_predictions(tmp_path, case):
    model, atoms = case
    path = save_hybrid(model.potential, model.correction, tmp_path / "h.json")
    assert (tmp_path / "h.pt").is_file()
    loaded = load_model(path)
    assert isinstance(loaded, Hybrid)
    assert hybrid_energy(loaded, atoms) == pytest.approx(hybrid_energy(model, atoms), abs=1e-12)
    # weights_only loading: the file holds tensors and plain containers only
    torch.load(tmp_path / "h.pt", weights_only=True)
    frames = unlabelled([atoms])
    a, b = predict(model, frames), predict(loaded, frames)
    assert np.allclose(a.forces, b.forces, atol=1e-12) and a.uncertainty.max() > 0


def test_interaction_relation_is_the_mlp_of_the_concatenated_bond_inputs():
    """The relation function's first layer is applied per atom and gathered per bond
    (:func:`interaction._relation`): the same numbers as the MLP on (h_i, h_j, basis)."""
    from evopot.neural.interaction import InteractionNetwork, _relation

    network = InteractionNetwork(2, 7, 4.5, width=6, rounds=1, radial=5, channels=3, hidden=(9, 8)).double()
    generator = torch.Generator().manual_seed(3)
    h, basis = torch.randn(10, 6, generator=generator).double(), torch.rand(40, 5, generator=generator).double()
    center, neighbor = torch.randint(0, 10, (2, 40), generator=generator)
    relation = network.relations[0]
    expected = relation(torch.cat([h[center], h[neighbor], basis], dim=1))
    assert torch.allclose(_relation(relation, h, basis, center, neighbor), expected, rtol=1e-12, atol=1e-14)


def test_interaction_network_files_with_mistakes_give_clear_errors(tmp_path):
    model = random_hybrid(LJ, interaction=INTERACTION)
    path = save_hybrid(model.potential, model.correction, tmp_path / "h.json")
    spec = json.loads(path.read_text())
    assert (
        spec["metadata"]["correction"]["kind"] == "interaction-network"
        and spec["metadata"]["correction"]["interaction"] == INTERACTION
    )
    spec["metadata"]["correction"]["interaction"]["width"] = 20  # the weights are 12 wide
    (tmp_path / "wide.json").write_text(json.dumps(spec))
    with pytest.raises(EvopotError, match="network 0 does not fit the architecture"):
        load_model(tmp_path / "wide.json")
    spec["metadata"]["correction"]["kind"] = "graph-transformer"
    (tmp_path / "kind.json").write_text(json.dumps(spec))
    with pytest.raises(EvopotError, match="kind 'graph-transformer' unknown"):
        load_model(tmp_path / "kind.json")
    (tmp_path / "h.pt").write_bytes(b"not a torch file")
    with pytest.raises(EvopotError, match="cannot read the network weights"):
        load_model(path)


def test_hybrid_files_with_mistakes_give_clear_errors(tmp_path):
    model = random_hybrid(LJ)
    path = save_hybrid(model.potential, model.correction, tmp_path / "h.json")
    (tmp_path / "h.pt").write_bytes(b"not a torch file")
    with pytest.raises(EvopotError, match="damaged"):
        load_model(path)
    other = random_hybrid(pair_potential("A/r**6", {"A": 1.0}, species=("Ge",)))
    path = save_hybrid(model.potential, other.correction, tmp_path / "g.json")
    with pytest.raises(EvopotError, match="species"):
        load_model(path)
    (tmp_path / "g.pt").unlink()
    with pytest.raises(EvopotError, match="weights file .* is missing"):
        load_model(path)
    # the weights are the potential's own file: a path out of its folder is refused, not followed
    (tmp_path / "outside").mkdir()
    torch.save({"x": torch.zeros(1)}, tmp_path / "outside" / "w.pt")
    for elsewhere in ("../outside/w.pt", str(tmp_path / "outside" / "w.pt"), "sub/w.pt", ".."):
        data = json.loads(path.read_text())
        data["metadata"]["correction"]["weights"] = elsewhere
        (tmp_path / "w.json").write_text(json.dumps(data))
        with pytest.raises(EvopotError, match="must name a file in the potential's own folder"):
            load_model(tmp_path / "w.json")
    with pytest.raises(EvopotError, match="load it with evopot.neural.hybrid.load_model"):
        ForceField(Potential.load(path))
    assert ForceField(formula_only(Potential.load(path))).correction is None
    # a network that reads the formula's terms belongs to that formula
    reading = random_hybrid(GENERAL_THREEBODY, formula_inputs=True)
    path = save_hybrid(LJ, reading.correction, tmp_path / "t.json")
    with pytest.raises(EvopotError, match="reads 2 formula term"):
        load_model(path)
    path = save_hybrid(GENERAL_THREEBODY, reading.correction, tmp_path / "t.json")
    text = path.read_text().replace('"B": 5.0', '"B": 6.0')
    assert text != path.read_text()
    path.write_text(text)
    with pytest.raises(EvopotError, match="trained reading the terms of"):
        load_model(path)
    with pytest.raises(
        EvopotError,
        match="beyond the network's cutoff 3.0 Å; raise correction.cutoff, or set correction.formula_inputs: false",
    ):
        descriptor_for(stillinger_weber(), CorrectionConfig(cutoff=3.0))
    with pytest.raises(EvopotError, match="terms of another formula"):
        Hybrid(
            LJ,
            random_hybrid(
                pair_potential("4*e*((s/r)**12 - (s/r)**6)", {"e": 0.2, "s": 2.1}), formula_inputs=True
            ).correction,
        )


def test_md_runs_with_a_hybrid():
    from evopot.md.dynamics import MolecularDynamics, thermalized

    model = random_hybrid(LJ)
    atoms = thermalized(bulk("Si", "diamond", 5.43, cubic=True), 300, 0)
    result = MolecularDynamics(atoms, ForceField(model), 1.0).run(20, thermo_every=10)
    assert abs(result.thermo[-1].total - result.thermo[0].total) < 5e-3 * len(atoms)


def test_evaluator_path_matches_the_formula_evaluator(si_splits):
    model = random_hybrid(LJ, size=1)
    frames = si_splits["validation"]
    prediction = predict(model, frames)
    formula = evaluate(LJ, build_geometry(frames, LJ.cutoff.radius, LJ.species))
    assert np.allclose(prediction.formula.forces, formula.forces)
    assert np.abs(prediction.uncertainty).max() == 0  # one network: no spread


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from test_config_cli import GOOD, write

    from evopot.cli import main

    folder = tmp_path_factory.mktemp("hybrid")
    config = dict(GOOD, correction={"epochs": 4, "hidden": [8], "ensemble": 2, "radial_functions": 4})
    assert main(["search", str(write(folder, config)), "--quiet", "--generations", "1"]) == 0
    return folder / "run"


def test_evopot_correct_show_export_and_flag(run_dir, tmp_path, capsys):
    from evopot.cli import main

    capsys.readouterr()
    assert main(["correct", str(run_dir), "--member", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    path = run_dir / "corrections" / "member_000" / "hybrid.json"
    assert f"hybrid of member 0: {path}" in out and "formula F-MAE" in out
    model = load_model(path)
    assert isinstance(model, Hybrid) and len(model.correction.networks) == 2 and model.correction.hidden == (8,)
    assert (
        isinstance(model.correction.descriptor, FormulaInputs)
        and model.correction.descriptor.potential.terms == model.potential.terms
    )
    assert main(["correct", str(run_dir), "--member", "0", "--quiet"]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["correct", str(run_dir), "--member", "42", "--quiet"]) == 2
    assert "no member 42" in capsys.readouterr().err
    assert (
        main(
            [
                "correct",
                str(run_dir),
                "--member",
                "0",
                "--quiet",
                "--no-formula-inputs",
                "--output",
                str(tmp_path / "plain"),
            ]
        )
        == 0
    )
    assert isinstance(load_model(tmp_path / "plain" / "hybrid.json").correction.descriptor, SymmetryFunctions)
    capsys.readouterr()

    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hybrid: formula + neural correction" in out and "term 0: pair" in out
    assert "% of the formula's energy" in out and "2 Behler–Parrinello network(s)" in out
    assert f"and the energy per atom of each of the formula's {len(model.potential.terms)} term(s)" in out
    assert main(["show", str(run_dir)]) == 0
    assert "hybrids (evopot show FILE)" in capsys.readouterr().out

    assert main(["export", "--potential", str(path), "--out", str(tmp_path / "x")]) == 2
    assert "--formula-only" in capsys.readouterr().err
    assert main(["export", "--potential", str(path), "--out", str(tmp_path / "x"), "--formula-only"]) == 0
    assert "(formula only)" in capsys.readouterr().out and (tmp_path / "x" / "in.evopot").is_file()

    assert main(["correct", str(run_dir), "--member", "0", "--flag-uncertain", str(SI_TEST), "--threshold", "0"]) == 0
    out = capsys.readouterr().out
    assert "using the trained hybrid" in out and f"25 of 25 frames of {SI_TEST} exceed 0.0000 eV/Å" in out
    assert main(["correct", str(run_dir), "--flag-uncertain", str(tmp_path / "none.extxyz")]) == 2
    assert "data file not found" in capsys.readouterr().err

    structure = tmp_path / "si.extxyz"
    bulk("Si", "diamond", 5.43, cubic=True).write(structure)
    assert main(["md", str(path), str(structure), "--steps", "5", "--every", "5", "--quiet", "--device", "cpu"]) == 0
    assert "atom-steps/s" in capsys.readouterr().out


def test_correction_settings_are_validated(run_dir, capsys):
    from evopot.cli import main

    assert main(["correct", str(run_dir), "--epochs", "0"]) == 2
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert main(["correct", str(run_dir), "--hidden", "0", "--overwrite"]) == 2
    assert "field 'hidden'" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
@pytest.mark.parametrize("potential", [LJ, GENERAL_THREEBODY], ids=["pair", "three-body"])
@pytest.mark.parametrize("formula_inputs", [False, True], ids=["symmetry functions", "formula inputs"])
@pytest.mark.parametrize("interaction", [None, INTERACTION], ids=["bpnn", "interaction"])
def test_hybrid_on_the_gpu_matches_the_cpu(potential, formula_inputs, interaction):
    model = random_hybrid(potential, formula_inputs=formula_inputs, interaction=interaction)
    atoms = periodic_cell(6)
    cpu = EvopotCalculator(model, device="cpu")
    gpu = EvopotCalculator(model, device="cuda")
    assert np.abs(cpu.get_forces(atoms.copy()) - gpu.get_forces(atoms.copy())).max() < 1e-9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_training_on_the_gpu_gives_the_cpus_network(si_splits, run_dir, tmp_path, capsys):
    """The same epochs on CUDA and on the CPU give the same network (to round-off), and
    a network trained on CUDA predicts, saves and reports through `evopot correct`."""
    from evopot.cli import main

    settings = CorrectionConfig(ensemble=1, epochs=3, hidden=[16, 16], patience=3, radial_functions=8)
    descriptor = descriptor_for(LJ, settings)
    frames = si_splits["validation"]
    predictions = {}
    for device in ("cpu", "cuda"):
        correction, _ = train_hybrid(
            LJ, si_splits, settings.model_copy(update={"device": device}), descriptor, seed=0, progress=False
        )
        assert correction.networks[0].feature_mean.device.type == device
        predictions[device] = predict(Hybrid(LJ, correction), frames)
    assert np.abs(predictions["cuda"].forces - predictions["cpu"].forces).max() < 1e-6
    assert np.abs(predictions["cuda"].energies - predictions["cpu"].energies).max() < 1e-6
    capsys.readouterr()
    assert (
        main(
            ["correct", str(run_dir), "--member", "0", "--device", "cuda", "--quiet", "--output", str(tmp_path / "gpu")]
        )
        == 0
    )
    assert "formula F-MAE" in capsys.readouterr().out and isinstance(
        load_model(tmp_path / "gpu" / "hybrid.json"), Hybrid
    )


def test_a_batch_of_frames_weighted_zero_is_skipped_not_a_nan(si_splits):
    """A config type weighted 0 leaves some batches with nothing to learn (a last batch
    of one such frame): their loss is 0, not 0/0, and training goes on to a finite
    validation loss instead of 'training diverged'."""
    from dataclasses import replace

    from evopot.neural.correct import training_settings

    settings = CorrectionConfig(
        ensemble=1, epochs=3, batch_frames=1, hidden=[8], radial_functions=4, angular_shells=0, moment_channels=0
    )
    train = si_splits["train"]
    weights = {train.config_types[0]: 0.0}
    assert len(set(train.config_types)) > 1
    descriptor = descriptor_for(LJ, settings)
    data = residual_for(LJ, train, descriptor)
    network = Correction.new(descriptor, 1, (8,), "silu", seed=3).networks[0]
    zero = replace(data, frame_weights=torch.zeros(len(train.atoms), dtype=torch.float64))
    assert float(_loss(network, zero, training_settings(settings, 0), False)[0]) == 0.0
    correction, log = train_hybrid(
        LJ, si_splits, settings.model_copy(update={"config_type_weights": weights}), descriptor, seed=0, progress=False
    )
    assert np.isfinite(log.networks[0]["validation_force_mae"])
