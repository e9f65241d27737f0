"""Neural-guided symbolic regression: the separable network, distillation, PySR's
optional hand-off, and a guided search."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy
import torch

from evopot.data.geometry import build_geometry
from evopot.errors import EvopotError
from evopot.search.candidate import TermShape
from evopot.search.engines.distill import CurveProblem, regress_curve, rename_variable
from evopot.search.engines.expression import build_primitive_set, tree_from_string, tree_to_sympy
from evopot.search.engines.neural import NeuralData, SeparableNetwork, fit_network
from evopot.search.engines.pysr_backend import available, equations_to_trees, sympy_to_tree
from evopot.search.engines.space import load_search_space, resolve_search_space_path
from evopot.testing.equivalence import equivalent
from evopot.testing.rediscovery import lennard_jones

R = sympy.Symbol("r")
PAIR = load_search_space(resolve_search_space_path("pair"))


@pytest.fixture(scope="module")
def lj():
    problem = lennard_jones()
    frames = problem.frames(0)
    c = problem.cutoff
    from evopot.model.cutoff import Cutoff

    cutoff = Cutoff(c["radius"], c["onset"], c["function"])
    geometry = build_geometry(frames, cutoff.radius)
    return (
        problem,
        cutoff,
        NeuralData(geometry, frames.energies, np.concatenate(frames.forces)),
    )


def _fitted(lj, epochs, polish):
    problem, cutoff, data = lj
    torch.manual_seed(0)
    network = SeparableNetwork([TermShape("pair")], cutoff, data.geometry.species)
    fit_network(network, data, epochs=epochs, polish=polish)
    r = np.quantile(data.geometry.pair_distances, np.linspace(0.05, 0.95, 60))
    with torch.no_grad():
        learned = network.slot(0, "V", torch.as_tensor(r)).numpy()
    deviation = learned - sympy.lambdify(R, problem.truth["pair"])(r)
    # V is fixed by the forces only up to a constant that the reference energy absorbs
    return (deviation.max() - deviation.min()) / 2 / np.abs(sympy.lambdify(R, problem.truth["pair"])(r)).max()


@pytest.mark.slow
def test_separable_network_learns_the_pair_potential_roughly(lj):
    assert _fitted(lj, epochs=300, polish=200) < 0.1


@pytest.mark.slow
def test_separable_network_reproduces_the_pair_potential_within_one_percent(lj):
    assert _fitted(lj, epochs=1000, polish=500) < 0.01


def test_the_polish_stops_once_it_stops_paying(lj):
    """L-BFGS runs in chunks of POLISH_CHUNK iterations and stops after one that gains
    less than POLISH_GAIN: on labels with noise the loss floors and it stops within two
    chunks; on exact labels it goes on until the loss is orders of magnitude lower."""
    from evopot.search.engines.neural import POLISH_CHUNK

    problem, cutoff, _ = lj
    frames = problem.frames(0)
    frames = frames.subset(range(3))
    geometry = build_geometry(frames, cutoff.radius)
    forces = np.concatenate(frames.forces)
    results = {}
    for name, noise in (("exact", 0.0), ("noisy", 0.5)):
        labels = NeuralData(
            geometry,
            frames.energies,
            forces + noise * forces.std() * np.random.default_rng(0).normal(size=forces.shape),
        )
        for polish in (0, 6 * POLISH_CHUNK):
            torch.manual_seed(0)
            network = SeparableNetwork([TermShape("pair")], cutoff, geometry.species, hidden=(16, 16))
            results[name, polish] = fit_network(network, labels, epochs=100, polish=polish)
    noisy, exact = results["noisy", 6 * POLISH_CHUNK], results["exact", 6 * POLISH_CHUNK]
    assert noisy["polish"] <= 2 * POLISH_CHUNK and noisy["loss"] < results["noisy", 0]["loss"]
    assert exact["polish"] > noisy["polish"] and exact["loss"] < 1e-4 * results["exact", 0]["loss"]


def test_an_enveloped_slot_vanishes_at_the_cutoff_with_a_learned_stiffness(lj):
    """With the search space's ``envelope: vanish`` the slot is its MLP times
    exp(s/(r − rc)), s trained with the weights: the learned V is zero at rc, as every
    formula the search can return is, so it cannot hide a constant offset there."""
    problem, cutoff, data = lj
    torch.manual_seed(0)
    network = SeparableNetwork([TermShape("pair")], cutoff, data.geometry.species, enveloped=(True,))
    slot = network.slots["0_V"]
    assert slot.stiffness == pytest.approx(cutoff.radius / 2)
    r = torch.tensor([3.5, 6.0, cutoff.radius - 1e-3, cutoff.radius], dtype=torch.float64)
    with torch.no_grad():
        value, multiplier = slot(r), slot.multiplier(r)
    envelope = torch.exp(cutoff.radius / 2 / (r[:3] - cutoff.radius))
    assert torch.allclose(value[:3], multiplier[:3] * envelope) and value[3] == 0
    fit_network(network, data, epochs=20, polish=0)
    assert slot.stiffness != pytest.approx(cutoff.radius / 2)  # learned with the weights


def test_a_cos_theta_slot_is_a_cubic_hermite_table_of_its_mlp():
    """g(cos θ) is evaluated through a table of its MLP (values and slopes on
    TABLE_NODES nodes): it follows the MLP to 1e-9 in value and 1e-6 in slope, and the
    loss's gradient reaches the MLP's weights through it as through the MLP itself."""
    from evopot.search.engines.neural import SlotNetwork

    torch.manual_seed(3)
    slot = SlotNetwork(("costheta",), (16, 16)).double()
    slot.scale.fill_(2.5)
    x = torch.linspace(-1.0, 1.0, 5001, dtype=torch.float64).requires_grad_(True)
    table, mlp = slot(x), slot.multiplier(x)
    assert not torch.equal(table, mlp)  # the table is not the MLP evaluated directly
    assert torch.allclose(table, mlp, rtol=0, atol=1e-9 * float(mlp.detach().abs().max()))
    (table_slope,) = torch.autograd.grad(table.sum(), x, create_graph=True)
    (mlp_slope,) = torch.autograd.grad(mlp.sum(), x, create_graph=True)
    assert torch.allclose(table_slope, mlp_slope, rtol=0, atol=1e-6 * float(mlp_slope.detach().abs().max()))
    weight = slot.mlp[0].weight
    by_table, by_mlp = (
        torch.autograd.grad(slope.pow(2).mean(), weight, retain_graph=True)[0] for slope in (table_slope, mlp_slope)
    )
    assert torch.allclose(by_table, by_mlp, rtol=1e-5, atol=1e-9)


def test_the_simplest_formula_within_the_networks_error_is_the_one_seeded():
    """A learned Stillinger–Weber h(r) = exp(γσ/(r − aσ)), off by 0.5 % as a network's
    curve is: a longer tree follows the wiggles more closely, but the constant (times
    the envelope, SW's own h) is within the network's error and must be among the seeds."""
    from evopot.testing.known import SW_SILICON as c

    space = load_search_space(resolve_search_space_path("stillinger_weber"))
    radius = c["a"] * c["sig"]
    x = np.linspace(2.1, 3.6, 150)
    wiggle = 1 + 0.005 * np.sin(7 * x)
    y = 0.8 * np.exp(c["gam"] * c["sig"] / (x - radius)) * wiggle
    trees, _ = regress_curve(x, y, space.terms[1].operators["h"], space, radius, 60, 6, seed=0, envelope="vanish")
    pset = build_primitive_set(space.terms[1].operators["h"], ("r",), -5, 5, radius=radius)
    shapes = [tree_to_sympy(tree_from_string(t, pset))[0] for t, _ in trees]
    assert any(not shape.has(R) for shape in shapes), trees
    assert min(error for _, error in trees) < 0.005  # the best trees still follow the curve


def test_seeds_pair_one_slots_best_tree_with_anothers_simplest():
    """The distilled V may only be right in its most accurate tree while g and h are
    right in their simplest (SW's own): the seeds must hold that combination early."""
    from evopot.search.engines.distill import Distilled

    distilled = Distilled(
        [
            {"trees": [("V_best", 1e-5), ("V_simple", 0.01)]},
            {"trees": [("g_best", 0.003), ("g_simple", 0.004)]},
            {"trees": [("h_best", 1e-5), ("h_simple", 2e-4), ("h_third", 3e-4)]},
        ]
    )
    seeds = distilled.seeds(7)
    assert seeds[0] == ["V_best", "g_best", "h_best"] and ["V_best", "g_simple", "h_simple"] in seeds
    assert len({tuple(s) for s in seeds}) == 7
    assert len(distilled.seeds(100)) == 2 * 2 * 3


def test_symbolic_regression_of_the_exact_curve_recovers_lennard_jones():
    truth = 4 * 0.0104 * ((3.4 / R) ** 12 - (3.4 / R) ** 6)
    x = np.linspace(3.1, 8.0, 200)
    trees, front = regress_curve(x, sympy.lambdify(R, truth)(x), PAIR.operators, PAIR, 8.5, 100, 15, seed=0)
    found = [sum(t.numeric() for t in s.candidate.terms(s.fit.linear, s.fit.nonlinear)) for s in front]
    assert any(equivalent(f, truth, 1e-3, ("r",)) for f in found)
    pset = build_primitive_set(PAIR.operators, ("r",), -3, 3, radius=8.5)
    assert all(str(tree_from_string(t, pset)) == t for t, _ in trees)  # seeds parse back


def test_curve_problem_offset_is_free_only_when_asked():
    """A constant offset costs nothing when the slot's constant is not the network's to
    know (the fitter's 'reference energy' column takes it); for g, h, f or an enveloped
    V it is part of the learned shape, so a formula must carry it itself."""
    from evopot.search.candidate import decompose
    from evopot.search.fitting import fit_constants

    x = np.linspace(1, 3, 50)
    candidate = decompose([[sympy.exp(-R)]], [TermShape("pair")], {})
    fit = fit_constants(CurveProblem(x, 2 * np.exp(-x) + 5), candidate)
    assert fit.loss < 1e-10 and fit.linear[0] == pytest.approx(2) and fit.reference_energies[0] == pytest.approx(5)
    fixed = fit_constants(CurveProblem(x, 2 * np.exp(-x) + 5, offset=False), candidate)
    assert fixed.ok and fixed.loss > 0.1 and len(fixed.reference_energies) == 0


def test_pysr_missing_gives_install_instructions():
    try:
        import pysr  # noqa: F401
    except ImportError:
        with pytest.raises(EvopotError, match="Julia"):
            available()
    else:  # pragma: no cover - machines with PySR
        pytest.skip("PySR is installed here")


class _StubPySR:
    """What evopot reads of a fitted PySRRegressor: its equations_ table."""

    equations_ = [
        {"sympy_format": "x0**2*exp(-x0) + cos(x0)", "loss": 1e-3},  # cos not allowed: skipped
        {"sympy_format": "2.5*exp(-1.5*x0) - 0.5/x0**6", "loss": 1e-4},
        {"sympy_format": "x0 + 1", "loss": 0.1},
    ]


def test_pysr_equations_become_seed_trees():
    operators = ["add", "sub", "mul", "div", "pow", "exp", "inv", "square"]
    trees = equations_to_trees(_StubPySR(), "r", operators, keep=3)
    assert [loss for _, loss in trees] == [1e-4, 0.1]
    pset = build_primitive_set(operators, ("r",), -3, 3)
    expr, values = tree_to_sympy(tree_from_string(trees[0][0], pset))
    assert equivalent(expr.subs(values), 2.5 * sympy.exp(-1.5 * R) - 0.5 / R**6, 1e-9, ("r",))
    assert sympy_to_tree(sympy.cos(R), set(operators)) is None
    assert rename_variable("add(r, rc)", "costheta") == "add(costheta, rc)"


def test_guided_search_seeds_the_population_and_records_it(tmp_path):
    from evopot.config.schema import load_config
    from evopot.search.run import search
    from evopot.testing.rediscovery import write_problem

    engine = {
        "name": "guided",
        "population": 12,
        "generations": 1,
        "guided": {"epochs": 30, "polish": 10, "distill_population": 12, "distill_generations": 2, "seeds": 4},
    }
    config = load_config(write_problem(lennard_jones(), tmp_path, 0, engine))
    result = search(config, progress=False)
    record = json.loads((result.run_directory / "distilled.json").read_text())
    assert (
        record["slots"][0]["slot"] == "V"
        and record["seeds"]
        and record["network_seconds"] > 0
        and record["envelope_stiffness"] == {}
    )
    log = (result.run_directory / "log.txt").read_text()
    assert "guided: separable network fitted" in log and "distilled individuals fitted" in log
    assert all(m.potential.metadata["engine"] == "guided" for m in result.front)
    assert {m.potential.metadata["origin"] for m in result.front} <= {"distilled", "search"}


def test_guided_settings_are_validated(tmp_path):
    from test_config_cli import GOOD, write

    from evopot.config.schema import load_config

    path = write(tmp_path, dict(GOOD, engine={"name": "guided", "guided": {"distill_population": 10}}))
    with pytest.raises(EvopotError, match="distill_population.*multiple of 4"):
        load_config(path)
    path = write(tmp_path, dict(GOOD, engine={"name": "guided", "guided": {"distill_with": "eureqa"}}))
    with pytest.raises(EvopotError, match="distill_with"):
        load_config(path)


def test_pysr_distiller_is_refused_for_an_enveloped_search_space_before_any_work(tmp_path):
    """PySR would fit SW's vanishing into the seed trees, which the envelope multiplies
    in again: refused up front, naming the field and the fix, the old run untouched."""
    from test_config_cli import GOOD, write

    from evopot.search.run import search

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("earlier work")
    path = write(
        tmp_path,
        dict(GOOD, search_space="stillinger_weber", engine={"name": "guided", "guided": {"distill_with": "pysr"}}),
    )
    with pytest.raises(
        EvopotError,
        match=r"config.yaml: engine.guided.distill_with: pysr .*term 1 \(pair\), 2 \(threebody\).*distill_with: deap",
    ):
        search(path, overwrite=True, progress=False)
    assert (tmp_path / "run" / "keep.txt").read_text() == "earlier work"


def test_pysr_missing_stops_a_search_before_it_replaces_the_old_run(tmp_path):
    """Without Julia, --overwrite must not have deleted the old run by the time it says so."""
    from test_config_cli import GOOD, write

    from evopot.search.run import search

    try:
        import pysr  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - machines with PySR
        pytest.skip("PySR is installed here")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("earlier work")
    path = write(tmp_path, dict(GOOD, engine={"name": "guided", "guided": {"distill_with": "pysr"}}))
    with pytest.raises(EvopotError, match="Julia"):
        search(path, overwrite=True, progress=False)
    assert (tmp_path / "run" / "keep.txt").read_text() == "earlier work"
