"""The whole search: reproducible from the seed, resumable, and it rediscovers known
potentials from their forces alone."""

import json

import pytest

import evopot
from evopot.rediscovery import PROBLEMS, recovered, run, write_problem
from evopot.engines.gp import GPEngine

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
    other_history = json.loads((evopot.search(other, overwrite=True, progress=False).run_directory / "checkpoint.json").read_text())["history"]
    assert history != other_history


def test_an_interrupted_search_resumes_to_the_same_result(lj_folder, monkeypatch):
    problem = PROBLEMS["lennard-jones"]()
    config = write_problem(problem, lj_folder, seed=7, engine={"population": 24, "generations": 5})
    uninterrupted = front_of(evopot.search(config, overwrite=True, progress=False).run_directory)

    real_step = GPEngine.step

    def step_then_interrupt(self):
        if self.generation == 2:
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(GPEngine, "step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        evopot.search(config, overwrite=True, progress=False)
    monkeypatch.setattr(GPEngine, "step", real_step)
    run_directory = lj_folder / "run_seed7"
    assert not (run_directory / "front.csv").exists()
    assert json.loads((run_directory / "checkpoint.json").read_text())["generation"] == 2
    resumed = evopot.search(config, resume=True, progress=False)
    assert front_of(resumed.run_directory) == uninterrupted
    assert "resumed at generation 2" in (run_directory / "log.txt").read_text()


def test_resume_refuses_a_changed_config(lj_folder, capsys):
    from evopot.cli import main

    problem = PROBLEMS["lennard-jones"]()
    config = write_problem(problem, lj_folder, seed=8, engine=SMALL)
    evopot.search(config, overwrite=True, progress=False)
    config.write_text(config.read_text().replace("seed: 8", "seed: 9"))
    assert main(["search", str(config), "--resume", "--quiet"]) == 2
    assert "differs from the one this run was started with" in capsys.readouterr().err


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
    from evopot.potential import Potential
    from evopot.rediscovery import stillinger_weber

    problem = stillinger_weber()
    config = write_problem(problem, tmp_path, seed=0, engine={"population": 16, "generations": 2})
    assert main(["search", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "V3(rij,rik,costheta) = " in out and "V(r) = " in out
    members = sorted((tmp_path / "run_seed0" / "potentials").glob("member_*.json"))
    kinds = {t.kind for m in members for t in Potential.load(m).terms}
    assert "threebody" in kinds


def test_sutton_chen_embedding_form_is_rediscovered(tmp_path):
    """eam.yaml: pair (a/r)^n and F = −εc√ρ with ρ = Σ (a/r)^m come back from the
    forces and energies of Sutton–Chen copper (embedding checked up to the scale of ρ)."""
    outcome = run(PROBLEMS["sutton-chen"](), tmp_path, seed=0)
    assert outcome.success, outcome.found
