"""The whole search: reproducible from the seed, resumable, and it rediscovers known
potentials from their forces alone."""

import json

import pytest
import sympy
from conftest import search_interrupted_at

import evopot
from evopot.search.engines.gp import GPEngine, GPSettings
from evopot.testing.rediscovery import PROBLEMS, recovered, run, write_problem

SMALL = {"population": 24, "generations": 4}


@pytest.fixture(scope="module")
def lj_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("lj")


def front_of(run_directory):
    return (run_directory / "front.csv").read_text()


def test_same_seed_same_front_and_other_seed_other_search(lj_folder):
    problem = PROBLEMS["lennard-jones"]()
    config = write_problem(problem, lj_folder, seed=5, engine=SMALL)
    first = evopot.search(config, overwrite=True, progress=False)
    text = front_of(first.run_directory)
    again = evopot.search(config, overwrite=True, progress=False)
    assert front_of(again.run_directory) == text
    history = json.loads((first.run_directory / "checkpoint.json").read_text())["history"]
    other = write_problem(problem, lj_folder, seed=6, engine=SMALL)
    other_history = json.loads(
        (evopot.search(other, overwrite=True, progress=False).run_directory / "checkpoint.json").read_text()
    )["history"]
    assert history != other_history


@pytest.mark.parametrize(
    "name, engine",
    [
        # restarts: the resumed run must know when the last one was
        ("lennard-jones", {"population": 24, "generations": 6, "restart": 2}),
        # three slots; pruning leaves embedding terms without bases in the archive
        ("sutton-chen", {"population": 24, "generations": 8}),
        # three islands, each with its own generator, and a migration just before the interruption
        ("lennard-jones", {"population": 12, "generations": 6, "islands": 3, "migration": {"every": 2, "count": 2}}),
    ],
)
def test_an_interrupted_search_resumes_to_the_same_result(tmp_path, monkeypatch, name, engine):
    config = write_problem(PROBLEMS[name](), tmp_path, seed=7, engine=engine)
    run_directory = tmp_path / "run_seed7"
    uninterrupted = front_of(evopot.search(config, overwrite=True, progress=False).run_directory)
    uninterrupted_history = (run_directory / "history.csv").read_text()
    if engine.get("restart"):
        assert ",True," in uninterrupted_history.split("\n", 4)[-1]  # restarted after generation 3

    search_interrupted_at(monkeypatch, config, 4)
    assert not (run_directory / "front.csv").exists()
    checkpoint = json.loads((run_directory / "checkpoint.json").read_text())
    assert checkpoint["generation"] == 4
    assert len(checkpoint.get("islands", [None])) == engine.get("islands", 1)
    resumed = evopot.search(config, resume=True, progress=False)
    assert front_of(resumed.run_directory) == uninterrupted

    # the same path generation by generation, the running count of fitted candidates included
    assert (run_directory / "history.csv").read_text() == uninterrupted_history
    # the wall time is the run's total: the first session's and the resumed one's
    assert resumed.wall_time > checkpoint["totals"]["wall_time_s"] > 0
    assert json.loads((run_directory / "summary.json").read_text())["wall_time_s"] == resumed.wall_time
    assert "resumed at generation 4" in (run_directory / "log.txt").read_text()


def test_resume_refuses_a_changed_config(lj_folder, capsys):
    from evopot.cli import main

    problem = PROBLEMS["lennard-jones"]()
    config = write_problem(problem, lj_folder, seed=8, engine=SMALL)
    evopot.search(config, overwrite=True, progress=False)
    config.write_text(config.read_text().replace("seed: 8", "seed: 9"))
    assert main(["search", str(config), "--resume", "--quiet"]) == 2
    assert "differs from the one this run was started with" in capsys.readouterr().err


def test_a_time_limit_stops_the_search_after_the_generation_that_passes_it_and_may_change_on_resume(lj_folder):
    problem = PROBLEMS["lennard-jones"]()
    config = write_problem(problem, lj_folder, seed=10, engine={**SMALL, "time_limit": 1e-6})
    result = evopot.search(config, overwrite=True, progress=False)
    assert result.generations == 0 and result.front  # the initial population only, still a front
    assert "time limit of 1e-06 s reached after generation 0" in (result.run_directory / "log.txt").read_text()
    config.write_text(config.read_text().replace("time_limit: 1.0e-06", "time_limit: 600"))
    assert evopot.search(config, resume=True, progress=False).generations == SMALL["generations"]


def test_lennard_jones_is_rediscovered_from_forces(tmp_path):
    outcome = run(PROBLEMS["lennard-jones"](), tmp_path, seed=1)
    assert outcome.success, outcome.found


def test_morse_is_rediscovered_from_forces(tmp_path):
    outcome = run(PROBLEMS["morse"](), tmp_path, seed=0)
    assert outcome.success, outcome.found


def test_a_wrong_formula_is_not_called_a_rediscovery(lj_folder):
    import sympy

    problem = PROBLEMS["lennard-jones"]()
    config = write_problem(problem, lj_folder, seed=1, engine={"population": 8, "generations": 0})
    result = evopot.search(config, overwrite=True, progress=False)
    wrong = {"pair": 4 * 0.0104 * ((3.4 / sympy.Symbol("r")) ** 12 - (3.4 / sympy.Symbol("r")) ** 7)}
    assert recovered(result, wrong) is None


def test_a_threebody_search_runs_end_to_end_and_reports_each_term(tmp_path, capsys):
    from evopot.cli import main
    from evopot.model.potential import Potential
    from evopot.testing.rediscovery import stillinger_weber

    problem = stillinger_weber()
    config = write_problem(problem, tmp_path, seed=0, engine={"population": 16, "generations": 2})
    assert main(["search", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "V3(rij, rik, costheta) = " in out and "V(r) = " in out
    members = sorted((tmp_path / "run_seed0" / "potentials").glob("member_*.json"))
    kinds = {t.kind for m in members for t in Potential.load(m).terms}
    assert "threebody" in kinds
    # each member's cost, as evaluated over the training frames: a three-body term costs its angles
    from evopot.config.schema import load_config
    from evopot.data.dataset import dataset_from_config
    from evopot.data.geometry import build_geometry
    from evopot.search.rundir import RunDirectory

    run_directory = RunDirectory(tmp_path / "run_seed0")
    dataset = dataset_from_config(load_config(run_directory.config))
    rows = run_directory.read_front()
    potentials = [Potential.load(run_directory.path / row["potential"]) for row in rows]
    geometry = build_geometry(dataset.train, potentials[0].cutoff.radius, potentials[0].species)
    for row, potential in zip(rows, potentials):
        assert row["operations_per_atom"] == pytest.approx(potential.operations_per_atom(geometry), rel=1e-5)
    assert main(["show", str(run_directory.path)]) == 0
    assert "ops/atom" in capsys.readouterr().out


def test_stillinger_weber_trees_of_its_search_space_fit_back_to_sw_and_pass_the_check(tmp_path):
    """In stillinger_weber.yaml V and h carry SW's vanishing exp(s/(r − aσ)) as an
    envelope, so the SW form is V = r^p + c, g = (cos θ + c)², h = a constant: started
    from wrong constants (and the envelope's stiffness from aσ/2), it fits back to
    matscipy's SW constants within the search's complexity limit, and the rediscovery
    check accepts it; a g of the wrong form is refused."""
    from types import SimpleNamespace

    from evopot.config.schema import load_config
    from evopot.data.dataset import dataset_from_config
    from evopot.model.cutoff import cutoff_from_config
    from evopot.search.engines.space import load_search_space, resolve_search_space_path
    from evopot.search.fitting import FitProblem
    from evopot.search.scoring import Scorer

    problem = PROBLEMS["stillinger-weber"]()
    config = load_config(write_problem(problem, tmp_path, seed=0))
    cutoff = cutoff_from_config(config.cutoff)
    dataset = dataset_from_config(config)
    fit = FitProblem.from_frames(dataset.train, cutoff, tuple(dataset.species))
    space = load_search_space(resolve_search_space_path("stillinger_weber"))
    scorer = Scorer(fit, 60, 2 * space.limits.max_nodes)  # the search's own limit (evopot.search.run)
    members = []
    for g in ["square(add(costheta, 0.834))", "cube(add(costheta, 0.834))"]:
        engine = GPEngine(space, GPSettings(population=1, generations=0), scorer.score_candidate, radius=cutoff.radius)
        engine.initialise([["add(pow(r, -1.967), -0.234)", g, "2.0"]])
        best = engine.archive.front()[-1]
        members.append(SimpleNamespace(complexity=best.complexity, potential=best.to_potential(fit), loss=best.loss))
    assert members[0].loss < 1e-6
    assert recovered(SimpleNamespace(front=members[:1]), problem.truth) is members[0]
    assert recovered(SimpleNamespace(front=members[1:]), problem.truth) is None

    def recovered_from(trees):
        """The simplest SW member of the front a search with pruning keeps for ``trees``."""
        engine = GPEngine(
            space, GPSettings(population=1, generations=0), scorer.score_candidate, scorer.prune, radius=cutoff.radius
        )
        engine.initialise([trees])
        front = [
            SimpleNamespace(complexity=m.complexity, potential=m.to_potential(fit)) for m in engine.archive.front()
        ]
        return recovered(SimpleNamespace(front=front), problem.truth)

    def numbers(member):
        return [abs(float(x)) for term in member.potential.terms for x in term.numeric().atoms(sympy.Float)]

    # near hits of the benchmark: h came back as (r − 2.2e-8)/r (seed 9), and V with a
    # r^(2.3e-8) factor beside it (seed 0); constant rounding in the search's pruning
    # puts the formula without both on the front
    member = recovered_from(
        ["add(pow(r, -1.967), pow(r, 2.3e-08))", "square(add(costheta, 0.834))", "div(sub(r, 2.2e-08), r)"]
    )
    assert member is not None
    assert min(numbers(member)) > 1e-6, member.potential.terms
    # seed 0 of this session: V with r^(2.3e-8) and g with an extra cos θ piece; dropping
    # the piece and rounding the constant are two prunings, one after the other
    member = recovered_from(
        ["add(pow(r, -1.967), pow(r, 2.3e-08))", "add(mul(0.01, costheta), square(add(costheta, 0.834)))", "2.0"]
    )
    assert member is not None
    assert min(numbers(member)) > 1e-6, member.potential.terms
    # seed 3: h came back as (r − 8.1e33)·e, SW's h in disguise; rounded to infinity
    member = recovered_from(["add(pow(r, -1.967), -0.234)", "square(add(costheta, 0.834))", "sub(r, 8.1e+33)"])
    assert member is not None
    assert max(numbers(member)) < 1e6
    # seed 8: V came back as C·(exp(ε·r⁻⁴) − 1)·e with C ≈ 1.2e7, ε ≈ 1.4e-5; rounded to
    # first order in ε
    assert (
        recovered_from(["sub(exp(mul(1.4e-05, pow(r, -3.9))), 1.0)", "square(add(costheta, 0.834))", "2.0"]) is not None
    )


def test_sutton_chen_embedding_form_is_rediscovered(tmp_path):
    """eam.yaml: pair (a/r)^n and F = −εc√ρ with ρ = Σ (a/r)^m come back from the
    forces and energies of Sutton–Chen copper (embedding checked up to the scale of ρ).
    Seed 1: one of the seeds `benchmarks/rediscovery.py --problems sutton-chen` finds
    (35 generations, with the admissibility rules); the rate over seeds is the
    benchmark's to report."""
    outcome = run(PROBLEMS["sutton-chen"](), tmp_path, seed=1)
    assert outcome.success, outcome.found


def test_species_specific_pair_terms_are_searched_on_two_species_data(tmp_path):
    """A search space with one pair term per species pair, on Si–Ge data labelled by a
    potential whose three pair terms differ: each found term keeps its species, and
    the search beats predicting zero force by far."""
    import ase.io
    import yaml
    from conftest import TWO_SPECIES_PAIRS

    from evopot.data.sampling import label, random_dense_cells
    from evopot.md.calculator import EvopotCalculator

    images = random_dense_cells(10, 24, 0.045, 2.1, seed=5)
    rng = __import__("numpy").random.default_rng(5)
    for atoms in images:
        atoms.set_chemical_symbols(rng.choice(["Si", "Ge"], len(atoms)))
    ase.io.write(tmp_path / "data.extxyz", label(images, EvopotCalculator(TWO_SPECIES_PAIRS)).atoms)
    space = {
        "name": "pairs-by-species",
        "operators": ["add", "sub", "mul", "div", "pow", "exp", "nexp", "inv", "square"],
        "terms": [{"kind": "pair", "species": pair} for pair in (["Si", "Si"], ["Si", "Ge"], ["Ge", "Ge"])],
        "limits": {"max_height": 5, "max_nodes": 12, "init_max_height": 3},
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    config = {
        "seed": 2,
        "output": "run",
        "data": {"train": "data.extxyz", "split": {"validation": 0.2}},
        "cutoff": {"radius": 5.0, "onset": 4.0},
        "search_space": "space.yaml",
        "engine": {"population": 40, "generations": 6},
        "fitness": {"max_evaluations": 30},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = evopot.search(tmp_path / "config.yaml", progress=False, config_path=tmp_path / "config.yaml")
    best = result.best("validation")
    assert sorted(tuple(sorted(t.species)) for t in best.potential.terms) == [("Ge", "Ge"), ("Ge", "Si"), ("Si", "Si")]
    summary = json.loads((result.run_directory / "summary.json").read_text())
    baseline = summary["baselines"]["validation"]["force_mae"]
    # 6 generations: 0.18–0.26 of the zero-force error over seeds 1–4 (this code, 2026-11-29)
    assert best.errors["validation"]["force_mae"] < 0.3 * baseline


def test_reference_energies_from_the_config_are_the_potentials_own(lj_folder, capsys):
    from evopot.cli import main

    problem = PROBLEMS["lennard-jones"]()
    config = write_problem(problem, lj_folder, seed=11, engine={"population": 12, "generations": 1})
    text = config.read_text()
    config.write_text(text + "reference_energies: {Ar: -0.0123}\n")
    result = evopot.search(config, overwrite=True, progress=False)
    assert all(m.potential.reference_energies == {"Ar": -0.0123} for m in result.front)
    config.write_text(text + "reference_energies: {Ne: -0.1}\n")
    assert main(["search", str(config), "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "reference_energies: no isolated-atom energy for Ar" in err and err.count("\n") == 1, err
    config.write_text(text + "reference_energies: {Xx: -0.1}\n")
    assert main(["search", str(config), "--overwrite", "--quiet"]) == 2
    assert "reference_energies" in capsys.readouterr().err


def test_a_search_fitted_to_stresses_reports_their_errors(tmp_path, capsys):
    """Lennard-Jones frames carry their stresses (the ASE calculator's): a search that
    fits them too recovers the formula exactly, stress errors included, and show says so."""
    from evopot.cli import main

    problem = PROBLEMS["lennard-jones"]()
    config = write_problem(problem, tmp_path, seed=3, engine={"population": 24, "generations": 4})
    config.write_text(config.read_text().replace("max_evaluations: 40", "max_evaluations: 40\n  stresses: 0.01"))
    result = evopot.search(config, overwrite=True, progress=False)
    member = recovered(result, problem.truth)
    assert member is not None
    assert member.errors["train"]["stress_mae"] < 1e-6 and member.errors["validation"]["stress_mae"] < 1e-6
    assert max(m.errors["train"]["stress_mae"] for m in result.front) > 1e-4  # simpler members miss them
    assert main(["show", str(result.run_directory)]) == 0
    assert "train σ-MAE" in capsys.readouterr().out
